# Copyright: (c) 2026, SES-DF NTINF
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Upgrade of a PEC e-SUS install: the plan (upgrade, current, refuse), preflight gates and the installer run.

Pure decisions live in functions that take plain values, so pytest tests them without a server.
"""

from __future__ import annotations

import glob
import locale as _locale
import os
import re
import shutil

from ansible_collections.sesdf.esus.plugins.module_utils import pec_upgrade_gates as gates_mod
from ansible_collections.sesdf.esus.plugins.module_utils._fsutil import sha256_file
from ansible_collections.sesdf.esus.plugins.module_utils._redact import redact, redact_lines
from ansible_collections.sesdf.esus.plugins.module_utils._runner import STDOUT, Runner, TimeoutExpired, executable
from ansible_collections.sesdf.esus.plugins.module_utils.pec_common import (
    PecError,
    compare_versions,
    normalize_version,
    version_tuple,
)
from ansible_collections.sesdf.esus.plugins.module_utils.pec_db import PgClient, version_and_size
from ansible_collections.sesdf.esus.plugins.module_utils.pec_host import existing_parent

DECISION_UPGRADE = "upgrade"
DECISION_CURRENT = "current"
DECISION_REFUSE = "refuse"

_SHA256_RE = re.compile(r"^[0-9a-fA-F]{64}$")
_SECRET_FLAG_RE = re.compile(r"^-{1,2}(password|senha|pass)\b", re.IGNORECASE)


def plan(installed, target):
    """What to do to go from the installed version to the target: (decision, message)."""
    if installed is None:
        return DECISION_REFUSE, "no PEC e-SUS install found on this host: nothing to upgrade (install the PEC first)"
    if version_tuple(target) is None:
        raise PecError(f"target version {target!r} is not a version number (e.g. 4.5.2)")
    if version_tuple(installed) is None:
        return DECISION_REFUSE, (
            f"installed PEC version {installed!r} is not a version number: check /etc/pec.config and the database "
            "(an interrupted install?) before upgrading"
        )
    cmp = compare_versions(installed, target)
    if cmp == 0:
        return DECISION_CURRENT, f"PEC already at {normalize_version(target)}: nothing to do"
    if cmp > 0:
        return DECISION_REFUSE, (
            f"installed PEC {normalize_version(installed)} is newer than the target {normalize_version(target)}: "
            "a downgrade is never done; raise upgrade_target_version or leave this server alone"
        )
    return DECISION_UPGRADE, f"PEC {normalize_version(installed)} will be upgraded to {normalize_version(target)}"


def installed_version(config_version, db_version):
    """The installed version as the installer config and the database see it.

    Both must agree when both are known: when they differ, an earlier update was interrupted and an upgrade
    on top of it is refused (the returned message says so)."""
    cfg, db = normalize_version(config_version), normalize_version(db_version)
    if cfg and db and cfg != db:
        return None, (
            f"/etc/pec.config says {cfg} but the database says {db}: an earlier update was probably interrupted; "
            "fix or restore this server by hand before upgrading"
        )
    return cfg or db, None


def check_flags(flags):
    """Installer flags: a list of strings without any secret. Raises PecError otherwise."""
    for flag in flags:
        if _SECRET_FLAG_RE.match(str(flag)) or "password=" in str(flag).lower():
            raise PecError(
                "upgrade_installer_flags must not carry a password: it would be visible in the process list and logs. "
                "The installer reads the database credentials from the existing install in update mode"
            )
    return [str(f) for f in flags]


def check_sha256(expected):
    if not expected or not _SHA256_RE.match(str(expected).strip()):
        raise PecError(
            "a SHA-256 checksum of the installer is required (upgrade_installer_sha256, 64 hex digits): "
            "take it from the SHA256SUMS published with the installer in the CTINF shared folder"
        )
    return str(expected).strip().lower()


def installer_status(path, expected_sha256):
    """Installer jar on the server: exists, size, sha256 and whether it matches. Never raises for a bad file."""
    result = {
        "path": path,
        "exists": False,
        "size_bytes": None,
        "sha256": None,
        "expected_sha256": expected_sha256,
        "matches": False,
    }
    if not path or not os.path.isfile(path):
        return result
    result["exists"] = True
    result["size_bytes"] = os.path.getsize(path)
    try:
        result["sha256"] = sha256_file(path)
    except OSError as exc:
        result["error"] = f"cannot read {path}: {exc}"
        return result
    result["matches"] = result["sha256"] == expected_sha256
    return result


def tree_size(root, exclude_dirs=()):
    """Bytes under root, not following symlinks, skipping the excluded directories (absolute paths)."""
    excluded = {os.path.realpath(d) for d in exclude_dirs}
    total = 0
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [
            d
            for d in dirnames
            if os.path.realpath(os.path.join(dirpath, d)) not in excluded
            and not os.path.islink(os.path.join(dirpath, d))
        ]
        for name in filenames:
            try:
                st = os.lstat(os.path.join(dirpath, name))
            except OSError:
                continue
            total += st.st_size
    return total


def disk_needs(needs, margin_bytes, statvfs=os.statvfs, stat=os.stat):
    """needs: list of (purpose, path, bytes). Adds them up per file system and compares with its free space.

    Returns (filesystems, problems): one entry per file system with what it must hold and what it has."""
    by_dev = {}
    for purpose, path, size in needs:
        probe = existing_parent(path)
        dev = stat(probe).st_dev
        entry = by_dev.get(dev)
        if entry is None:
            st = statvfs(probe)
            entry = {
                "measured_at": probe,
                "free_bytes": st.f_bavail * st.f_frsize,
                "required_bytes": margin_bytes,
                "needs": [],
            }
            by_dev[dev] = entry
        entry["required_bytes"] += int(size or 0)
        entry["needs"].append({"purpose": purpose, "path": path, "bytes": int(size or 0)})
    problems = []
    for entry in by_dev.values():
        if entry["free_bytes"] < entry["required_bytes"]:
            what = ", ".join(f"{n['purpose']} {human(n['bytes'])} at {n['path']}" for n in entry["needs"])
            problems.append(
                f"not enough free disk on the file system of {entry['measured_at']}: "
                f"{human(entry['free_bytes'])} free, "
                f"{human(entry['required_bytes'])} needed ({what}, plus a margin of {human(margin_bytes)}); "
                "free space (old logs, old backups copied off-host) or point the backup/staging directories elsewhere"
            )
    return list(by_dev.values()), problems


def human(size):
    size = float(size or 0)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"


class HostRunner:
    """The one seam between the upgrade gates and the host (like community.general's CmdRunner).

    ``run(argv, timeout)`` -> (rc, stdout) or raises OSError/TimeoutExpired; ``run_all`` the same with stderr too;
    ``which(name)``; ``executable(path)``. Tests pass a fake with the same methods. Commands go through
    ``_runner.Runner``; this class keeps the (rc, text) shape the gates read.
    """

    runner = None

    def _result(self, argv, timeout):
        proc = (self.runner or Runner()).run(argv, timeout=timeout)
        if proc.missing:
            raise FileNotFoundError(proc.why())
        if proc.timed_out:
            raise TimeoutExpired(proc.argv, timeout)
        if proc.rc is None:
            raise OSError(proc.why())
        return proc

    def run(self, argv, timeout=30):
        proc = self._result(argv, timeout)
        return proc.rc, proc.stdout

    def run_all(self, argv, timeout=30):
        """Like run, with stderr after stdout (``java -version`` prints on stderr)."""
        proc = self._result(argv, timeout)
        return proc.rc, proc.output

    def which(self, name):
        return shutil.which(name)

    def executable(self, path):
        return executable(path)


def locale_available(name, runner=None):
    """Whether a locale (e.g. pt_BR.UTF-8) is installed (``locale -a``), compared the way glibc normalizes names."""

    def norm(value):
        lang, _dot, charset = value.partition(".")
        return lang + "." + charset.lower().replace("-", "") if charset else lang

    runner = runner or HostRunner()
    try:
        _rc, out = runner.run(["locale", "-a"], timeout=30)
        available = out.split()
    except (OSError, TimeoutExpired):
        try:
            _locale.setlocale(_locale.LC_ALL, name)
            return True
        except _locale.Error:
            return False
    return norm(name) in {norm(a) for a in available}


def find_java(java_bin=None, jre_directory=None, runner=None):
    """The java executable that will launch the installer: the configured one, the system one, the PEC's JRE."""
    runner = runner or HostRunner()
    candidates = []
    if java_bin:
        candidates.append(java_bin)
    found = runner.which("java")
    if found:
        candidates.append(found)
    if jre_directory:
        candidates.append(os.path.join(jre_directory, "bin", "java"))
    for candidate in candidates:
        if runner.executable(candidate):
            return candidate
    return None


def tail(text, lines=40):
    parts = (text or "").rstrip().splitlines()
    return parts[-lines:]


_FLAG_RE = re.compile(r"(?<![\w-])-(?P<name>[a-zA-Z][\w-]*)")


def supported_flags(java, installer, runner=None, timeout=120):
    """The flags the installer's own ``-help`` lists (``{"-console", "-continue", ...}``), or None when it lists none
    (then the configured flags are passed as they are). Never raises: a failing ``-help`` is None."""
    runner = runner or HostRunner()
    try:
        _rc, out = runner.run([java, "-jar", installer, "-help"], timeout=timeout)
    except (OSError, TimeoutExpired):
        return None
    found = {"-" + m.group("name") for m in _FLAG_RE.finditer(out or "")}
    found.discard("-jar")
    return found or None


def adapt_flags(flags, supported):
    """(flags to pass, flags dropped because the installer's -help does not list them)."""
    if not supported:
        return list(flags), []
    keep, dropped = [], []
    for flag in flags:
        (keep if str(flag).split("=", 1)[0] in supported else dropped).append(flag)
    return keep, dropped


# Failure modes users of real servers report (docs/pec-facts.md): code -> markers in the output, what to do.
FAILURE_MARKERS = {
    "version_mismatch": ("versões diferentes", "não estão na mesma versão", "difere da versão da aplicação"),
    "out_of_memory": ("killed", "outofmemoryerror", "java heap space"),
    "locale": ("pt_br.utf-8", "locale", "setlocale"),
    "time_zone": ("america/sao_paulo", "timezone", "fuso horário"),
    "old_files": ("já existe", "already exists", "arquivos antigos"),
}
FAILURE_HINTS = {
    "version_mismatch": "the application and the database are not on the same version (the update stopped half-way): "
    "the role rolls back to the backup of this run; restore it by hand otherwise, then try again",
    "out_of_memory": "the installer or the application ran out of memory (Killed): free memory (8 GB) and retry",
    "locale": "the locale pt_BR.UTF-8 is missing: localedef -i pt_BR -f UTF-8 pt_BR.UTF-8, then retry",
    "time_zone": "the time zone is wrong: timedatectl set-timezone America/Sao_Paulo, then retry",
    "old_files": "files of an earlier version are left in the install directory: move them aside and retry",
}


def diagnose(text):
    """[{code, hint}] for every known failure mode found in installer or application output."""
    low = (text or "").lower()
    return [
        {"code": code, "hint": FAILURE_HINTS[code]}
        for code, markers in FAILURE_MARKERS.items()
        if any(m in low for m in markers)
    ]


def run_installer(java, installer, flags, cwd, timeout, secrets=()):
    """Run the installer in update mode with no stdin (it must not wait for a prompt). Returns (rc, output, cmd).

    The output can hold credentials (a real installer's is not documented): it is returned, and put in a timeout's
    message, only through ``redact`` with ``secrets`` (the install's passwords) masked."""
    cmd = [java, "-jar", installer, *check_flags(flags)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.setdefault("LANG", "pt_BR.UTF-8")
    proc = Runner().run(cmd, stderr=STDOUT, cwd=cwd, env=env, timeout=timeout, changes=True)
    if proc.timed_out:
        out = redact(proc.stdout, secrets)
        raise PecError(
            f"the installer did not finish within {timeout}s (it may be waiting for a prompt: check "
            "upgrade_installer_flags); last output: " + " | ".join(tail(out, 10)),
            rc=None,
            cmd=redact_lines(cmd, secrets),
            stdout_lines=tail(out),
        )
    if proc.rc is None:
        raise PecError(f"cannot run {java}: {proc.why()}; install a Java runtime (upgrade_jre_package)")
    return proc.rc, redact(proc.stdout, secrets), redact_lines(cmd, secrets)


def installer_log_tail(path, secrets=(), lines=20):
    """The last lines of the installer's own log, redacted; [] when there is none or it cannot be read."""
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return redact_lines(tail(handle.read(), lines), secrets)
    except OSError:
        return []


def _read_database(install, version_key):
    """(database version, database size, executed queries) through the PEC's own psql."""
    with PgClient(install.pg_bin_dir(), install.connection(), timeout=60) as client:
        version, size = version_and_size(client, version_key)
        return version, size, client.executed_queries


def read_versions(params, install, with_db=True, read_database=_read_database):
    """Installed version per source; (versions, db_size, problems, executed, jre_directory)."""
    versions = {"config": None, "database": None, "version": None}
    problems, executed, db_size, jre = [], [], None, None
    if not install.present:
        return versions, db_size, problems, executed, jre
    try:
        config = install.config()
        versions["config"] = config.get("version")
        jre = config.get("jreDirectory")
    except PecError as exc:
        problems.append({"code": "inconsistent", "msg": exc.msg})
    if with_db:
        try:
            versions["database"], db_size, executed = read_database(install, params["version_key"])
        except PecError as exc:
            problems.append(
                {"code": "database", "msg": exc.msg + " (the upgrade needs the database up for the backup)"}
            )
    version, conflict = installed_version(versions["config"], versions["database"])
    versions["version"] = version
    if conflict:
        problems.append({"code": "inconsistent", "msg": conflict})
    return versions, db_size, problems, executed, jre


def preflight(p, install, runner=None, read_database=_read_database, read_lock=None, paths=None):
    """The decision and every gate (version, installer, disk, locale and the host gates of :func:`host_gates`);
    problems in ``blockers``, what is reported but does not stop the upgrade in ``gate_warnings``.

    ``runner`` (a HostRunner) is the one seam to the host's commands: the locale and java probes go through it;
    ``read_lock`` reads the migration lock (the database), ``paths`` the host files the gates read (tests).
    """
    runner = runner or HostRunner()
    read_lock = read_lock or _read_migration_lock
    target = normalize_version(p["target_version"])
    versions, db_size, problems, executed, jre = read_versions(p, install, read_database=read_database)
    result = {"installed": versions, "target_version": target, "executed_queries": executed}
    if not install.present:
        decision, msg = plan(None, target)
        result.update(decision=decision, msg=msg, blockers=[{"code": "missing", "msg": msg}])
        return result
    inconsistent = [pr for pr in problems if pr["code"] == "inconsistent"]
    if inconsistent or versions["version"] is None:
        msg = "; ".join(pr["msg"] for pr in problems) or "installed PEC version unknown"
        result.update(decision="refuse", msg=msg, blockers=problems or [{"code": "inconsistent", "msg": msg}])
        return result
    decision, msg = plan(versions["version"], target)
    blockers = list(problems)
    if decision == "refuse":
        blockers.insert(0, {"code": "newer", "msg": msg})
    result.update(decision=decision, msg=msg)
    if decision != DECISION_UPGRADE:
        result["blockers"] = blockers
        return result

    checks = p["checks"]
    if "installer" in checks:
        if not p["installer"]:
            raise PecError("installer is required for the installer check")
        try:
            expected = check_sha256(p["installer_sha256"])
        except PecError as exc:
            blockers.append({"code": "installer", "msg": exc.msg})
            expected = None
        status = installer_status(p["installer"], expected)
        result["installer"] = status
        if not status["exists"]:
            blockers.append(
                {
                    "code": "installer",
                    "msg": f"installer {p['installer']} not found on the server: check upgrade_installer_src",
                }
            )
        elif expected and not status["matches"]:
            blockers.append(
                {
                    "code": "installer",
                    "msg": (
                        f"installer {p['installer']} has SHA-256 {status['sha256']}, expected {expected}: "
                        "the file is corrupt, "
                        "incomplete or another build; copy it again from the CTINF shared folder and check the checksum"
                    ),
                }
            )
    if "disk" in checks:
        result["database_size_bytes"] = db_size
        result["disk"], disk_problems = disk_needs(upgrade_disk_needs(p, install, result, db_size), p["margin_bytes"])
        blockers.extend({"code": "disk", "msg": m} for m in disk_problems)
    if "locale" in checks:
        present = locale_available(p["locale"], runner=runner)
        result["locale"] = {"name": p["locale"], "present": present}
        if not present:
            blockers.append(
                {
                    "code": "locale",
                    "msg": (
                        f"locale {p['locale']} is not installed (the PEC needs it); set upgrade_generate_locale: true "
                        f"or run: localedef -i {p['locale'].split('.')[0]} -f UTF-8 {p['locale']}"
                    ),
                }
            )
    gates, queries = host_gates(p, install, runner, jre, read_lock=read_lock, paths=paths)
    result["executed_queries"] = list(executed) + queries
    result["installer_timeout"] = gates_mod.installer_timeout(
        p.get("installer_timeout", 3600), p.get("installer_timeout_per_gb", 0), db_size
    )
    if "java" in gates:
        result["java"] = gates["java"].get("path")
        result["java_version"] = {k: gates["java"].get(k) for k in ("major", "source", "expected", "candidates")}
    result["gates"] = gates
    result["gate_warnings"] = [
        g["msg"] for g in gates.values() if g["status"] in (gates_mod.WARN, gates_mod.UNVERIFIABLE)
    ]
    blockers.extend({"code": g["code"], "msg": g["msg"]} for g in gates.values() if g["status"] == gates_mod.FAIL)
    result["blockers"] = blockers
    return result


# Host files the gates read; tests point them elsewhere through ``preflight(paths=...)``.
HOST_PATHS = {
    "meminfo": "/proc/meminfo",
    "localtime": "/etc/localtime",
    "timezone_file": "/etc/timezone",
    "zoneinfo": "/usr/share/zoneinfo",
    "logind_main": gates_mod.LOGIND_MAIN,
    "logind_dropin_dirs": gates_mod.LOGIND_DROPIN_DIRS,
    "remove_ipc_dropin": gates_mod.REMOVE_IPC_DROPIN,
}


def _read_migration_lock(install, table, columns):
    """The migration lock gate and the queries it ran, through the PEC's own psql (read-only)."""
    with PgClient(install.pg_bin_dir(), install.connection(), timeout=60) as client:
        return gates_mod.migration_lock_state(client, table, columns), client.executed_queries


def upgrade_disk_needs(p, install, result, db_size):
    """What the upgrade writes, per place: the pre-upgrade backup, the previous tree kept aside, the new install
    files, the installer when not staged yet, and on the database's file system a second copy of the database twice
    over: the scratch database of the backup's restore verification and the database the rollback restores
    beside the current one (pec_restore creates it before the swap)."""
    data_dirs = glob.glob(os.path.join(install.root, "database", "*", "data"))
    tree = tree_size(install.root, exclude_dirs=data_dirs) if os.path.isdir(install.root) else 0
    installer_bytes = (result.get("installer") or {}).get("size_bytes") or p["installer_size_bytes"] or 0
    staged = bool((result.get("installer") or {}).get("exists"))
    db = int(db_size or 0)
    database_fs = data_dirs[0] if data_dirs else os.path.join(install.root, "database")
    needs = [
        ("backup", p["backup_dir"], int(db * p["backup_size_factor"])),
        ("previous install kept aside", p["keep_aside_dir"], tree),
        ("new install files", install.root, installer_bytes),
    ]
    if not staged:
        needs.append(("installer", p["staging_dir"], installer_bytes))
    if p.get("backup_verify_level", "restore") == "restore":
        needs.append(("scratch database of the backup's restore check", database_fs, db))
    needs.append(("database restored by a rollback", database_fs, db))
    return needs


def host_gates(p, install, runner, jre_directory, read_lock=_read_migration_lock, paths=None):
    """The gates for what real upgrades hit, each ``{code, status, msg, ...}`` by name (pec_upgrade_gates), for the
    checks named in ``p["checks"]``, and the SQL they ran.

    Read-only: the role applies the fixes it is allowed to after every gate ran."""
    host = {**HOST_PATHS, **(paths or {})}
    checks = p["checks"]
    gates, executed = {}, []
    if "memory" in checks:
        gates["memory"] = gates_mod.memory_gate(
            gates_mod.memory_total_mb(host["meminfo"]), p.get("min_memory_mb", 0), p.get("recommended_memory_mb", 0)
        )
    if "timezone" in checks:
        allowed = p.get("allowed_timezones") or []
        name, how = gates_mod.current_timezone(host["localtime"], host["timezone_file"], host["zoneinfo"], allowed)
        gates["timezone"] = gates_mod.timezone_gate(name, how, allowed)
    if "remove_ipc" in checks:
        gates["remove_ipc"] = gates_mod.remove_ipc_gate(
            host["logind_main"],
            host["logind_dropin_dirs"],
            p.get("remove_ipc_dropin") or host["remove_ipc_dropin"],
            fix=p.get("fix_remove_ipc"),
        )
    if "stale_tmp" in checks:
        gates["stale_tmp"] = gates_mod.stale_tmp_gate(
            gates_mod.stale_tmp_entries(p.get("stale_tmp_patterns") or []), p.get("remove_stale_tmp")
        )
    if "ports" in checks:
        gates["ports"] = gates_mod.ports_gate(p.get("certmgr_config"), p.get("certmgr_ports") or [], p["app_service"])
    if "migration_lock" in checks:
        table = p.get("migration_lock_table")
        if not table:
            gates["migration_lock"] = gates_mod.gate("migration_lock", gates_mod.OK, "migration lock gate disabled")
        else:
            try:
                gates["migration_lock"], queries = read_lock(install, table, p.get("migration_lock_columns") or [])
                executed.extend(queries)
            except PecError as exc:
                gates["migration_lock"] = gates_mod.gate(
                    "migration_lock",
                    gates_mod.UNVERIFIABLE,
                    f"migration lock não verificável: the database could not be read ({exc.msg})",
                )
    if "java" in checks:
        gates["java"] = gates_mod.select_java(
            p["target_version"],
            runner,
            java_bin=p.get("java_bin"),
            java8_bin=p.get("java8_bin"),
            bundled_java=p.get("bundled_java"),
            jre_directory=jre_directory,
            bundled_from=p.get("bundled_jre_from") or "5.3",
            min_major=p.get("java_min_major") or 17,
        )
    return gates, executed
