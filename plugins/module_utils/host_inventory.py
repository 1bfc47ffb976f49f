# Copyright: (c) 2026, SES-DF NTINF
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Inventory of a UBS server (installed packages, enabled/running services, listening sockets) and its
comparison with the allowed-application whitelist kept by IT.

Parsing functions take command output as text so pytest tests them on fixtures without a server;
``collect()`` runs the commands in one pass.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import os
import re

from ansible_collections.sesdf.esus.plugins.module_utils._runner import Runner
from ansible_collections.sesdf.esus.plugins.module_utils.pec_common import PecError

DPKG_FORMAT = "${Package}\\t${Version}\\t${Priority}\\t${db:Status-Abbrev}\\t${Essential}\\n"

# dpkg status letters (second column of db:Status-Abbrev) that mean files of the package are on disk.
_INSTALLED_STATES = set("iHUFWt")

# systemctl unit file states that make a unit start by itself.
ENABLED_STATES = ("enabled", "enabled-runtime", "linked", "linked-runtime")

_SS_USERS_RE = re.compile(r'\("(?P<proc>[^"]*)",pid=(?P<pid>\d+)')
LOOPBACK_WORDS = ("loopback", "localhost")
ANY_WORDS = ("any", "*", "0.0.0.0", "::")  # noqa: S104


# ------------------------------------------------------------------------------------------- parsing


def parse_dpkg(text):
    """`dpkg-query -W -f DPKG_FORMAT` output -> list of installed packages (name, version, priority, essential)."""
    packages = []
    for line in text.splitlines():
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) < 4:
            continue
        name, version, priority, status = fields[0], fields[1], fields[2], fields[3]
        essential = len(fields) > 4 and fields[4].strip() == "yes"
        if len(status) < 2 or status[1] not in _INSTALLED_STATES:
            continue
        packages.append(
            {
                "name": name.split(":")[0],
                "version": version,
                "priority": priority or "unknown",
                "essential": essential,
                "status": status.strip(),
            }
        )
    return packages


def parse_unit_files(text):
    """`systemctl list-unit-files --type=service --no-legend` -> {unit: state}."""
    result = {}
    for line in text.splitlines():
        fields = line.split()
        if len(fields) >= 2 and fields[0].endswith(".service"):
            result[fields[0]] = fields[1]
    return result


def parse_units(text):
    """`systemctl list-units --type=service --all --no-legend --plain` -> {unit: {load, active, sub}}."""
    result = {}
    for line in text.splitlines():
        fields = line.lstrip("● *").split()
        if len(fields) >= 4 and fields[0].endswith(".service"):
            result[fields[0]] = {"load": fields[1], "active": fields[2], "sub": fields[3]}
    return result


def merge_services(unit_files, units):
    """Services that start by themselves (enabled) or are running now."""
    services = []
    for name in sorted(set(unit_files) | set(units)):
        file_state = unit_files.get(name, "")
        unit = units.get(name, {})
        enabled = file_state in ENABLED_STATES
        running = unit.get("sub") == "running" or unit.get("active") in ("activating", "reloading")
        if not (enabled or running):
            continue
        services.append(
            {
                "name": name,
                "enabled": enabled,
                "running": running,
                "unit_file_state": file_state or "unknown",
                "active_state": unit.get("active", "inactive"),
                "sub_state": unit.get("sub", "dead"),
            }
        )
    return services


def split_address(text):
    """ss local address -> (addr, port).

    Handles '0.0.0.0:22', '[::]:22', '*:68', '127.0.0.53%lo:53' and '[::ffff:127.0.0.1]:5433'.
    """
    addr, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"not an address:port: {text!r}")
    addr = addr.strip("[]")
    addr = addr.split("%", 1)[0]
    if addr.startswith("::ffff:") and "." in addr:
        addr = addr[len("::ffff:") :]
    return addr or "*", int(port)


def parse_ss(text):
    """`ss -H -t -u -l -n -p` output -> list of listening sockets (proto, address, port, processes)."""
    sockets = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 5:
            continue
        proto = fields[0].lower()
        if proto not in ("tcp", "udp"):
            continue
        try:
            addr, port = split_address(fields[4])
        except ValueError:
            continue
        rest = " ".join(fields[6:])
        processes = [{"name": m.group("proc"), "pid": int(m.group("pid"))} for m in _SS_USERS_RE.finditer(rest)]
        sockets.append({"proto": proto, "address": addr, "port": port, "processes": processes})
    return sockets


def unit_from_cgroup(text):
    """/proc/PID/cgroup text -> the systemd .service owning the process, or None (a stray process)."""
    for line in text.splitlines():
        path = line.split(":", 2)[-1]
        for part in reversed(path.split("/")):
            if part.endswith(".service"):
                return part
    return None


# ----------------------------------------------------------------------------------------- comparison


def _match(name, patterns):
    return any(fnmatch.fnmatchcase(name, p) for p in patterns or [])


def address_is_loopback(addr):
    try:
        return ipaddress.ip_address(addr).is_loopback
    except ValueError:
        return addr in LOOPBACK_WORDS


def address_is_any(addr):
    return addr in ANY_WORDS


def _address_allowed(addr, allowed):
    """allowed: list of 'loopback', 'any', an address or a network (CIDR)."""
    for item in allowed:
        item = str(item).strip()
        if item in ANY_WORDS:
            return True
        if item in LOOPBACK_WORDS:
            if address_is_loopback(addr):
                return True
            continue
        if address_is_any(addr):
            continue
        try:
            if ipaddress.ip_address(addr) in ipaddress.ip_network(item, strict=False):
                return True
        except ValueError:
            if addr == item:
                return True
    return False


def normalize_socket_rules(rules):
    """Check the allowed-socket entries; PecError when one is malformed."""
    result = []
    for index, rule in enumerate(rules or []):
        if not isinstance(rule, dict) or "port" not in rule:
            raise PecError(f"allowed socket #{index + 1} ({rule!r}) needs at least 'port'; fix the whitelist variable")
        try:
            port = int(rule["port"])
        except (TypeError, ValueError) as exc:
            raise PecError(f"allowed socket #{index + 1}: port {rule['port']!r} is not a number") from exc
        proto = str(rule.get("proto", "tcp")).lower()
        if proto not in ("tcp", "udp"):
            raise PecError(f"allowed socket #{index + 1}: proto must be tcp or udp, not {proto!r}")
        addresses = rule.get("addresses", ["any"])
        if isinstance(addresses, str):
            addresses = [addresses]
        units = rule.get("units") or []
        if isinstance(units, str):
            units = [units]
        result.append(
            {
                "port": port,
                "proto": proto,
                "addresses": list(addresses),
                "units": [str(u) for u in units if str(u).strip()],
                "name": rule.get("name", ""),
            }
        )
    return result


def _owner_allowed(owners, rule):
    """A rule with units accepts a socket only when every process holding it belongs to one of them."""
    if not rule["units"]:
        return True
    return bool(owners) and all(owner in rule["units"] for owner in owners)


def _owner_label(proc):
    """'unit: process[pid]' as the report names the owner of a listener."""
    unit = proc.get("unit") or ("systemd (PID 1)" if proc.get("pid") == 1 else "sem serviço")
    return f"{unit}: {proc['name']}[{proc['pid']}]"


def _socket_action(sock, units, never_stop):
    """What an enforcing run does with a listener that is not allowed, whatever the name of its unit.

    A unit in never_stop (the PEC's units, SSH) and systemd PID 1 are only reported; any other owning unit is
    stopped and masked, even one whose name is whitelisted or protected; a process with no unit is killed.
    """
    pids = [p["pid"] for p in sock.get("processes", [])]
    if 1 in pids or any(u in never_stop for u in units):
        return "none"
    if units:
        return "mask"
    return "kill" if pids else "none"


def compare(inventory, whitelist):
    """Compare an inventory with the whitelist. Returns a list of violations, each with a proposed action.

    whitelist keys: packages_allowed (patterns), packages_denied (patterns), packages_protected (patterns),
    priorities_allowed (dpkg priorities treated as the OS), services_allowed (patterns),
    services_protected (patterns), services_never_stop (exact unit names), sockets_allowed (list of
    {port, proto, addresses, units}).

    A name only exempts a service from the service check: a listener is allowed by port, address AND owning
    unit (a rule's ``units``; a rule without units accepts any owner). A listener that is not allowed is
    masked with its unit whatever the unit is called, except the units in services_never_stop and PID 1.
    """
    violations = []
    protected_pkgs = whitelist.get("packages_protected", [])
    priorities = whitelist.get("priorities_allowed", [])
    for pkg in inventory.get("packages", []):
        name = pkg["name"]
        denied = _match(name, whitelist.get("packages_denied", []))
        protected = pkg.get("essential") or pkg.get("priority") == "required" or _match(name, protected_pkgs)
        if denied:
            violations.append(
                {
                    "kind": "package",
                    "name": name,
                    "reason": "denied",
                    "action": "none" if protected else "remove",
                    "detail": (
                        "pacote proibido, mas protegido (essencial ao sistema ou ao PEC): não será removido"
                        if protected
                        else "pacote na lista de proibidos"
                    ),
                }
            )
        elif not (pkg.get("priority") in priorities or _match(name, whitelist.get("packages_allowed", []))):
            violations.append(
                {
                    "kind": "package",
                    "name": name,
                    "reason": "unlisted",
                    "action": "none",
                    "detail": (
                        "pacote fora da lista de aplicações permitidas (só relatado; remova-o ou inclua-o na lista)"
                    ),
                }
            )
    allowed_services = whitelist.get("services_allowed", [])
    protected_services = whitelist.get("services_protected", [])
    for svc in inventory.get("services", []):
        name = svc["name"]
        if _match(name, allowed_services) or _match(name, protected_services):
            continue
        state = ", ".join(s for s, on in (("habilitado", svc["enabled"]), ("em execução", svc["running"])) if on)
        violations.append(
            {
                "kind": "service",
                "name": name,
                "reason": "unlisted",
                "action": "mask",
                "detail": f"serviço fora da lista ({state})",
            }
        )
    rules = normalize_socket_rules(whitelist.get("sockets_allowed", []))
    never_stop = set(whitelist.get("services_never_stop", []) or [])
    for sock in inventory.get("sockets", []):
        procs_list = sock.get("processes", [])
        owners = [p.get("unit") or ("(pid 1)" if p.get("pid") == 1 else "") for p in procs_list]
        same_port = [r for r in rules if r["port"] == sock["port"] and r["proto"] == sock["proto"]]
        right_address = [r for r in same_port if _address_allowed(sock["address"], r["addresses"])]
        if any(_owner_allowed(owners, r) for r in right_address):
            continue
        if right_address:
            reason = "wrong_unit"
        elif same_port:
            reason = "wrong_address"
        else:
            reason = "unlisted"
        units = sorted({p.get("unit") for p in procs_list if p.get("unit")})
        where = f"{sock['proto']}/{sock['port']} em {sock['address']}"
        procs = ", ".join(_owner_label(p) for p in procs_list) or "processo desconhecido"
        if reason == "wrong_unit":
            expected = ", ".join(sorted({u for r in right_address for u in r["units"]}))
            detail = f"{where} é permitido só a {expected}, mas pertence a outro dono ({procs})"
        elif reason == "wrong_address":
            detail = f"{where} escuta num endereço não permitido ({procs})"
        else:
            detail = f"{where} não está na lista de portas permitidas ({procs})"
        action = _socket_action(sock, units, never_stop)
        if action == "none" and (units or procs_list):
            detail += ": dono protegido (PEC, SSH ou systemd), só relatado; corrija a configuração dele"
        violations.append(
            {
                "kind": "socket",
                "name": f"{sock['proto']}/{sock['port']}",
                "address": sock["address"],
                "port": sock["port"],
                "proto": sock["proto"],
                "pids": [p["pid"] for p in procs_list],
                "units": units,
                "owners": [_owner_label(p) for p in procs_list],
                "reason": reason,
                "action": action,
                "detail": detail,
            }
        )
    return violations


def summarize(inventory, violations):
    counts = {"packages": 0, "services": 0, "sockets": 0}
    for v in violations:
        counts[v["kind"] + "s"] += 1
    return {
        "packages_installed": len(inventory.get("packages", [])),
        "services_enabled_or_running": len(inventory.get("services", [])),
        "sockets_listening": len(inventory.get("sockets", [])),
        "violations": counts,
        "denied_packages_installed": sorted(
            v["name"] for v in violations if v["kind"] == "package" and v["reason"] == "denied"
        ),
    }


# -------------------------------------------------------------------------------------------- running


def _run(cmd, what, runner=None):
    proc = (runner or Runner()).run(cmd, timeout=120)
    if proc.missing:
        raise PecError(f"{proc.why()}: cannot list {what}; is this a Debian host with systemd and iproute2?")
    if proc.timed_out:
        raise PecError(f"{' '.join(cmd)} did not finish in 120s while listing {what}")
    if proc.rc is None:
        raise PecError(f"{proc.why()} while listing {what}")
    if proc.rc != 0:
        raise PecError(f"{' '.join(cmd)} failed (rc={proc.rc}) while listing {what}: {proc.stderr.strip()}")
    return proc.stdout


def read_cgroup(pid, proc_root="/proc"):
    try:
        with open(os.path.join(proc_root, str(pid), "cgroup"), encoding="utf-8") as handle:
            return handle.read()
    except OSError:
        return ""


def collect(dpkg_query="dpkg-query", systemctl="systemctl", ss="ss", proc_root="/proc"):
    """Run the three listings and return the inventory dict."""
    packages = parse_dpkg(_run([dpkg_query, "-W", "-f", DPKG_FORMAT], "installed packages"))
    unit_files = parse_unit_files(
        _run([systemctl, "list-unit-files", "--type=service", "--no-legend", "--no-pager"], "service unit files")
    )
    units = parse_units(
        _run([systemctl, "list-units", "--type=service", "--all", "--no-legend", "--no-pager", "--plain"], "services")
    )
    sockets = parse_ss(_run([ss, "-H", "-t", "-u", "-l", "-n", "-p"], "listening sockets"))
    for sock in sockets:
        for proc in sock["processes"]:
            proc["unit"] = unit_from_cgroup(read_cgroup(proc["pid"], proc_root))
    return {"packages": packages, "services": merge_services(unit_files, units), "sockets": sockets}
