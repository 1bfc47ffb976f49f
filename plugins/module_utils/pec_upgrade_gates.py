# Copyright: (c) 2026, SES-DF NTINF
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Preflight gates of a PEC upgrade for what real upgrades hit, and the point of no return after it.

Each gate is a function that looks at the host (through paths and a runner the tests replace) and returns one
result ``{"code", "status", "msg", ...}``; ``status`` is ``ok``, ``warn`` (reported, the upgrade goes on),
``unverifiable`` ("não verificável": the real state could not be observed; reported as a warning, never a pass) or
``fail`` (the upgrade is refused, ``msg`` says what to do). Nothing here writes to the host or to the PEC's tables.

The gates (docs/upgrade.md): memory, time zone, logind ``RemoveIPC``, stale ``/tmp/PEC-*`` entries, the
migration lock ``tb_migracao_trava``, free 80/443 for a certmgr (HTTPS) install, the Java that launches the
installer (Java 8 below 5.3, the bundled JRE from 5.3), and the installer's time limit from the database's size.
After the upgrade, the soak (the point of no return as a state): :func:`soak_decision` and :func:`soak_step`.
"""

from __future__ import annotations

import glob
import math
import os
import re
import shutil

from ansible_collections.sesdf.esus.plugins.module_utils._fsutil import read_json
from ansible_collections.sesdf.esus.plugins.module_utils._runner import TimeoutExpired
from ansible_collections.sesdf.esus.plugins.module_utils._timeutil import iso, parse_ts
from ansible_collections.sesdf.esus.plugins.module_utils.pec_common import (
    compare_versions,
    normalize_version,
    version_tuple,
)
from ansible_collections.sesdf.esus.plugins.module_utils.pec_db import sql_literal
from ansible_collections.sesdf.esus.plugins.module_utils.pec_state import state_path, write_state

OK, WARN, UNVERIFIABLE, FAIL = "ok", "warn", "unverifiable", "fail"


def gate(code, status, msg, **details):
    return {"code": code, "status": status, "msg": msg, **details}


# ---- memory
def memory_total_mb(meminfo="/proc/meminfo"):
    """MemTotal in MiB (what the kernel sees: a few % below the installed RAM), or None when unreadable."""
    try:
        with open(meminfo, encoding="ascii", errors="replace") as handle:
            for line in handle:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) // 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def memory_gate(total_mb, min_mb, recommended_mb):
    """Refuse below ``min_mb`` (the installer's migrator and the PEC are killed: "Killed"), warn below
    ``recommended_mb``. ``min_mb`` 0 disables the gate."""
    if not min_mb and not recommended_mb:
        return gate("memory", OK, "memory gate disabled", total_mb=total_mb)
    if total_mb is None:
        return gate(
            "memory", UNVERIFIABLE, "memory not verifiable (/proc/meminfo unreadable): make sure the server has 8 GB"
        )
    if min_mb and total_mb < min_mb:
        return gate(
            "memory",
            FAIL,
            f"the server has {total_mb} MiB of memory, below the minimum of {min_mb} MiB (upgrade_min_memory_mb): "
            "the installer and the PEC would be killed for lack of memory (Killed); add memory (8 GB recommended) "
            "or stop other services, then try again",
            total_mb=total_mb,
        )
    if recommended_mb and total_mb < recommended_mb:
        return gate(
            "memory",
            WARN,
            f"the server has {total_mb} MiB of memory, below the recommended {recommended_mb} MiB "
            "(upgrade_recommended_memory_mb, 8 GB): the upgrade goes on, but plan a memory upgrade",
            total_mb=total_mb,
        )
    return gate("memory", OK, f"{total_mb} MiB of memory", total_mb=total_mb)


# ---- time zone
def current_timezone(
    localtime="/etc/localtime", timezone_file="/etc/timezone", zoneinfo="/usr/share/zoneinfo", candidates=()
):
    """(name, how): the system time zone as systemd sees it (the /etc/localtime link), else a zone among
    ``candidates`` whose file has the same bytes, else /etc/timezone; (None, why) when it cannot be told.
    No /etc/localtime at all means UTC (glibc)."""
    if os.path.islink(localtime):
        target = os.readlink(localtime)
        marker = "zoneinfo/"
        if marker in target:
            return target.split(marker, 1)[1], "link"
        return None, f"{localtime} points to {target}, not into a zoneinfo directory"
    if not os.path.lexists(localtime):
        return "UTC", "absent"
    try:
        with open(localtime, "rb") as handle:
            content = handle.read()
    except OSError as exc:
        return None, f"cannot read {localtime}: {exc}"
    for name in candidates:
        try:
            with open(os.path.join(zoneinfo, name), "rb") as handle:
                if handle.read() == content:
                    return name, "copy"
        except OSError:
            continue
    try:
        with open(timezone_file, encoding="utf-8") as handle:
            named = handle.read().strip()
    except OSError:
        named = ""
    if named:
        # /etc/timezone names a zone but /etc/localtime (what the programs use) is not its file: refuse below
        return named + " (/etc/timezone; /etc/localtime differs)", "mismatch"
    return None, f"{localtime} is a file that matches none of the accepted zones"


def timezone_gate(name, how, allowed):
    """Accept only the zones in ``allowed`` (America/Sao_Paulo and its alias Brazil/East by default); an empty
    list disables the gate. The installer and the PEC fail or record wrong times otherwise."""
    allowed = [str(a) for a in allowed or []]
    if not allowed:
        return gate("timezone", OK, "time zone gate disabled", timezone=name)
    fix = f"timedatectl set-timezone {allowed[0]}"
    if name is None:
        return gate(
            "timezone",
            FAIL,
            f"the time zone of this server cannot be told ({how}); set it with: {fix}, then try again",
            timezone=None,
        )
    if name in allowed and how != "mismatch":
        return gate("timezone", OK, f"time zone {name}", timezone=name)
    return gate(
        "timezone",
        FAIL,
        f"the server's time zone is {name}, not one of {', '.join(allowed)} (upgrade_allowed_timezones): the PEC "
        f"records wrong times and real updates fail on it; fix it with: {fix} (then restart the PEC), then try again",
        timezone=name,
    )


# ---- logind RemoveIPC
LOGIND_MAIN = "/etc/systemd/logind.conf"
LOGIND_DROPIN_DIRS = (
    "/usr/lib/systemd/logind.conf.d",
    "/usr/local/lib/systemd/logind.conf.d",
    "/run/systemd/logind.conf.d",
    "/etc/systemd/logind.conf.d",
)
REMOVE_IPC_DROPIN = "/etc/systemd/logind.conf.d/sesdf-esus-removeipc.conf"
REMOVE_IPC_DROPIN_CONTENT = "[Login]\nRemoveIPC=no\n"
_TRUE = {"1", "yes", "y", "true", "t", "on"}
_FALSE = {"0", "no", "n", "false", "f", "off"}


def _remove_ipc_in(text):
    """The last valid RemoveIPC= of the [Login] section of one logind config text, or None."""
    section, value = None, None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1].strip()
            continue
        if section != "Login" or "=" not in line:
            continue
        key, _eq, val = line.partition("=")
        if key.strip() == "RemoveIPC":
            val = val.strip().lower()
            if val in _TRUE:
                value = True
            elif val in _FALSE:
                value = False
    return value


def logind_config_files(main=LOGIND_MAIN, dropin_dirs=LOGIND_DROPIN_DIRS, extra=None):
    """The files logind reads, in order: the main file, then the drop-ins sorted by name (a name in a later
    directory of ``dropin_dirs`` hides the same name in an earlier one: /etc over /run over /usr). ``extra``
    (path, text) is a drop-in that is not written yet."""
    by_name = {}
    for directory in dropin_dirs:
        for path in glob.glob(os.path.join(directory, "*.conf")):
            by_name[os.path.basename(path)] = (path, None)
    if extra:
        by_name[os.path.basename(extra[0])] = extra
    files = [(main, None)] + [by_name[n] for n in sorted(by_name)]
    return files


def effective_remove_ipc(files):
    """(value, source): logind's RemoveIPC after reading ``files`` in order; its compiled default is yes."""
    value, source = True, "systemd's default (yes)"
    for path, text in files:
        if text is None:
            try:
                with open(path, encoding="utf-8", errors="replace") as handle:
                    text = handle.read()
            except OSError:
                continue
        found = _remove_ipc_in(text)
        if found is not None:
            value, source = found, path
    return value, source


def remove_ipc_gate(main=LOGIND_MAIN, dropin_dirs=LOGIND_DROPIN_DIRS, dropin=REMOVE_IPC_DROPIN, fix=True):
    """RemoveIPC=yes makes logind delete the semaphores of a regular user (the PEC's postgres user has UID 1000)
    when its last session ends, and the PEC's database dies. ``fix``: the role writes ``dropin`` (code
    ``remove_ipc``, fixable); a later drop-in that sets it back to yes cannot be fixed that way
    (``remove_ipc_override``)."""
    value, source = effective_remove_ipc(logind_config_files(main, dropin_dirs))
    details = {"remove_ipc": value, "source": source, "dropin": dropin}
    if value is False:
        return gate("remove_ipc", OK, f"RemoveIPC=no ({source})", fix_needed=False, **details)
    with_ours, after = effective_remove_ipc(
        logind_config_files(main, dropin_dirs, extra=(dropin, REMOVE_IPC_DROPIN_CONTENT))
    )
    if with_ours:
        return gate(
            "remove_ipc_override",
            FAIL,
            f"systemd-logind has RemoveIPC=yes from {after}, read after {dropin}: logind would delete the PEC "
            f"database's semaphores (postgres is a regular user) and stop it; set RemoveIPC=no in {after}, then: "
            "systemctl restart systemd-logind",
            fix_needed=True,
            **details,
        )
    how = (
        f"the role writes {dropin} (upgrade_fix_remove_ipc: true)"
        if fix
        else f"write {dropin} with [Login] RemoveIPC=no and run systemctl restart systemd-logind "
        "(or set upgrade_fix_remove_ipc: true)"
    )
    return gate(
        "remove_ipc",
        FAIL,
        f"systemd-logind has RemoveIPC=yes ({source}): logind deletes the semaphores of the PEC database's user "
        f"(a regular user, UID 1000) when its last session ends, and the database stops; {how}",
        fix_needed=True,
        **details,
    )


# ---- /tmp/PEC-*
def stale_tmp_entries(patterns):
    """Paths matching ``patterns`` (e.g. /tmp/PEC-*), sorted."""
    found = set()
    for pattern in patterns or []:
        found.update(glob.glob(pattern))
    return sorted(found)


def stale_tmp_gate(entries, remove):
    """Entries left by an earlier PEC run block the first start of the new version. With ``remove`` the role
    deletes them once the application is stopped (before the installer and before each start): a warning lists
    them; without it the upgrade is refused with the list."""
    if not entries:
        return gate("stale_tmp", OK, "no stale PEC temporary entries", entries=[])
    shown = ", ".join(entries[:10]) + (f" (+{len(entries) - 10})" if len(entries) > 10 else "")
    if remove:
        return gate(
            "stale_tmp",
            WARN,
            f"{len(entries)} PEC temporary entr{'y' if len(entries) == 1 else 'ies'} ({shown}) will be removed once "
            "the application is stopped (upgrade_remove_stale_tmp: true)",
            entries=entries,
        )
    return gate(
        "stale_tmp",
        FAIL,
        f"PEC temporary entries left by an earlier run ({shown}) block the first start of the new version: stop the "
        "PEC application, remove them, and try again (or set upgrade_remove_stale_tmp: true)",
        entries=entries,
    )


# ---- migration lock
_IDENT_RE = re.compile(r"^[a-z_][a-z0-9_]*$")
_HELD_VALUES = ("true", "t", "1", "s", "y", "yes", "sim")


def _ident(name):
    if not _IDENT_RE.match(name or ""):
        raise ValueError(f"{name!r} is not a plain lower-case SQL identifier")
    return '"' + name + '"'


def migration_lock_state(client, table="tb_migracao_trava", lock_columns=("locked",)):
    """The migration (Liquibase) lock, read-only: its columns from the catalog, then the rows whose lock column
    is true/1. The table's columns are not public: a table without any of ``lock_columns`` is "não verificável"."""
    try:
        tbl = _ident(table)
        wanted = [c.lower() for c in lock_columns]
        for column in wanted:
            _ident(column)
    except ValueError as exc:
        return gate("migration_lock", FAIL, f"upgrade_migration_lock_table/columns: {exc}")
    rows = client.query(
        "SELECT column_name, data_type FROM information_schema.columns"
        f" WHERE table_schema = current_schema() AND table_name = {sql_literal(table)} ORDER BY ordinal_position"
    )
    if not rows:
        return gate(
            "migration_lock",
            UNVERIFIABLE,
            f"migration lock não verificável: the table {table} does not exist on this server (an older or newer "
            "schema); the upgrade goes on. If the installer stops at 'Waiting for changelog lock', see "
            "docs/pt-BR/atualizacao.md",
            table=table,
            columns=[],
        )
    columns = {name.lower(): data_type for name, data_type in rows}
    column = next((c for c in wanted if c in columns), None)
    if column is None:
        return gate(
            "migration_lock",
            UNVERIFIABLE,
            f"migration lock não verificável: {table} has the columns {', '.join(columns)}, none of "
            f"{', '.join(wanted)} (upgrade_migration_lock_columns); the upgrade goes on. Look at the table by hand "
            "if the installer waits for a lock",
            table=table,
            columns=sorted(columns),
        )
    held = client.scalar(
        f"SELECT count(*) FROM {tbl} WHERE lower(CAST({_ident(column)} AS text)) IN ("
        + ", ".join(sql_literal(v) for v in _HELD_VALUES)
        + ")"
    )
    held = int(held or 0)
    details = {"table": table, "columns": sorted(columns), "lock_column": column, "held_rows": held}
    if held:
        return gate(
            "migration_lock",
            FAIL,
            f"the PEC's migration lock is held ({table}: {held} row(s) with {column} set): an earlier update was "
            "interrupted or another installer is running. Nothing was changed. Make sure no installer runs "
            "(ps -ef | grep eSUS-AB-PEC), take a backup, release the lock by hand as docs/pt-BR/atualizacao.md "
            "says, then try again",
            **details,
        )
    return gate("migration_lock", OK, f"migration lock {table} free", **details)


# ---- 80/443 (certmgr)
def tcp_listeners(ports, proc_net=("/proc/net/tcp", "/proc/net/tcp6")):
    """{port: [socket inode, ...]} of the TCP sockets LISTENing on ``ports`` (any address)."""
    wanted = {int(p) for p in ports}
    found = {}
    for path in proc_net:
        try:
            with open(path, encoding="ascii") as handle:
                lines = handle.read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) < 10 or fields[3] != "0A":  # 0A: LISTEN
                continue
            port = int(fields[1].rsplit(":", 1)[1], 16)
            if port in wanted:
                found.setdefault(port, []).append(fields[9])
    return found


def socket_owners(inodes, proc="/proc"):
    """{inode: [{pid, comm, cgroup}]} of the processes holding the sockets."""
    wanted = {f"socket:[{i}]" for i in inodes}
    owners = {}
    for pid in os.listdir(proc):
        if not pid.isdigit():
            continue
        fd_dir = os.path.join(proc, pid, "fd")
        try:
            fds = os.listdir(fd_dir)
        except OSError:
            continue
        for fd in fds:
            try:
                link = os.readlink(os.path.join(fd_dir, fd))
            except OSError:
                continue
            if link in wanted:
                info = {
                    "pid": int(pid),
                    "comm": _read(os.path.join(proc, pid, "comm")).strip(),
                    "cgroup": _read(os.path.join(proc, pid, "cgroup")),
                }
                owners.setdefault(link[8:-1], []).append(info)
    return owners


def _read(path):
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read()
    except OSError:
        return ""


def ports_gate(certmgr_config, ports, app_service, listeners=None, owners=None):
    """A certmgr (HTTPS, 5.3+) install serves ``ports`` (80/443) itself: another program listening there makes
    the new version fail to start. ``listeners``/``owners`` are :func:`tcp_listeners`/:func:`socket_owners`
    (the tests give them)."""
    if not ports:
        return gate("ports", OK, "port gate disabled")
    if not certmgr_config or not os.path.isfile(certmgr_config):
        return gate("ports", OK, "no certmgr HTTPS install: ports 80/443 not needed", certmgr=False)
    listeners = tcp_listeners(ports) if listeners is None else listeners
    inodes = [i for found in listeners.values() for i in found]
    owners = socket_owners(inodes) if owners is None else owners
    others = []
    for port in sorted(listeners):
        for inode in listeners[port]:
            procs = owners.get(inode, [])
            if procs and all(app_service in p.get("cgroup", "") for p in procs):
                continue
            who = ", ".join(f"{p['comm']} (pid {p['pid']})" for p in procs) or "an unidentified process"
            others.append(f"{port} by {who}")
    if others:
        return gate(
            "ports",
            FAIL,
            f"this PEC serves HTTPS itself (certmgr, {certmgr_config}) but port(s) {'; '.join(others)} are taken "
            "by another program: the new version would not start; stop or move that program (e.g. a web server "
            "left from another install), then try again",
            certmgr=True,
            taken=others,
        )
    return gate("ports", OK, f"ports {', '.join(map(str, ports))} free or served by the PEC", certmgr=True)


# ---- java
_JAVA_VERSION_RE = re.compile(r'version "(?P<v>[^"]+)"')


def java_major(text):
    """Major version from ``java -version`` output: '1.8.0_352' -> 8, '17.0.9' -> 17, '21' -> 21; or None."""
    m = _JAVA_VERSION_RE.search(text or "")
    if not m:
        return None
    value = m.group("v")
    parts = re.findall(r"\d+", value)
    if not parts:
        return None
    if parts[0] == "1" and len(parts) > 1:
        return int(parts[1])
    return int(parts[0])


def java_version(java, runner, timeout=60):
    """(major, first line) of ``java -version`` (printed on stderr), or (None, why)."""
    try:
        _rc, out = runner.run_all([java, "-version"], timeout=timeout)
    except (OSError, TimeoutExpired) as exc:
        return None, f"cannot run {java} -version: {exc}"
    first = next((line for line in (out or "").splitlines() if line.strip()), "")
    major = java_major(out)
    return major, first if major else f"{java} -version printed no version ({first or 'nothing'})"


def needs_java8(target, bundled_from):
    """A target below ``bundled_from`` (5.3) is launched by a system Java 8."""
    if version_tuple(target) is None or version_tuple(bundled_from) is None:
        return False
    return compare_versions(target, bundled_from) < 0


def select_java(
    target,
    runner,
    java_bin=None,
    java8_bin=None,
    bundled_java=None,
    jre_directory=None,
    bundled_from="5.3",
    min_major=17,
):
    """The java that launches the installer of ``target``, by version:

    - ``java_bin`` given: that one, whatever its version (a warning when it is not the expected one);
    - below ``bundled_from``: the first Java 8 among ``java8_bin``, the system java, the PEC's jreDirectory
      (code ``java8`` when none: Debian 12's packaged JRE is 17 and does not help);
    - from ``bundled_from``: the first java >= ``min_major`` among the PEC's bundled JRE, its jreDirectory, the
      system java (code ``java`` when none: the packaged JRE fixes it).
    """
    want8 = needs_java8(target, bundled_from)
    expected = "Java 8" if want8 else f"Java {min_major} or newer"
    if java_bin:
        if not runner.executable(java_bin):
            return gate(
                "java_bin",
                FAIL,
                f"upgrade_java_bin {java_bin} is not an executable file: fix or unset it",
                path=None,
                major=None,
                source="upgrade_java_bin",
                expected=expected,
                candidates=[],
            )
        major, line = java_version(java_bin, runner)
        ok = major == 8 if want8 else (major or 0) >= min_major
        status = OK if ok else WARN
        msg = f"{java_bin} ({line}) as set in upgrade_java_bin"
        if not ok:
            msg += f"; an installer of {target} expects {expected}: it may fail to start"
        return gate(
            "java", status, msg, path=java_bin, major=major, source="upgrade_java_bin", expected=expected, candidates=[]
        )
    system = runner.which("java")
    jre = os.path.join(jre_directory, "bin", "java") if jre_directory else None
    if want8:
        order = [(java8_bin, "upgrade_java8_bin"), (system, "system java"), (jre, "jreDirectory")]
    else:
        order = [(bundled_java, "bundled JRE"), (jre, "jreDirectory"), (system, "system java")]
    seen, candidates = set(), []
    for path, source in order:
        if not path or path in seen or not runner.executable(path):
            continue
        seen.add(path)
        major, line = java_version(path, runner)
        candidates.append({"path": path, "source": source, "major": major, "version": line})
        if (major == 8) if want8 else ((major or 0) >= min_major):
            return gate(
                "java",
                OK,
                f"{path} ({line}, {source})",
                path=path,
                major=major,
                source=source,
                expected=expected,
                candidates=candidates,
            )
    found = "; ".join(f"{c['path']}: {c['version']}" for c in candidates) or "no java found"
    if want8:
        return gate(
            "java8",
            FAIL,
            f"the installer of {target} (below {bundled_from}) needs a Java 8 and none was found ({found}); "
            "Debian 12's packaged Java is 17, which does not launch it: install a Java 8 runtime (e.g. the "
            "Temurin 8 or Corretto 8 package from the CTINF shared folder) and set upgrade_java8_bin to its "
            "bin/java, or set upgrade_java_bin to force another java",
            path=None,
            major=None,
            source=None,
            expected=expected,
            candidates=candidates,
        )
    return gate(
        "java",
        FAIL,
        f"no {expected} to launch the installer of {target} ({found}); set upgrade_install_jre: true "
        "(installs upgrade_jre_package) or set upgrade_java_bin",
        path=None,
        major=None,
        source=None,
        expected=expected,
        candidates=candidates,
    )


# ---- installer time limit
def installer_timeout(base_seconds, per_gb_seconds, database_bytes):
    """Seconds the installer may run: a base plus a time per started GiB of database (Liquibase migrations of a
    38 GB base took over an hour)."""
    gib = math.ceil((database_bytes or 0) / 1024**3)
    return int(base_seconds) + int(per_gb_seconds) * gib


# ---- soak (point of no return)
SOAKING, COMMITTED = "soaking", "committed"


def soak_decision(record, now, soak_hours, observed):
    """What a later run does with a soaking upgrade: (action, message).

    ``record``: the recorded soak (``state``, ``version``, ``since``, ``asides``) or None; ``observed``: what the PEC
    shows now (``app_active``, ``http_status``, ``config_version``, ``database_version``). Actions: ``none``
    (nothing soaking), ``wait`` (the soak is not over), ``hold`` (the PEC does not answer on the soaked version: the
    way back is kept and a person must look), ``commit`` (delete the copies aside, record ``committed``).
    """
    if not isinstance(record, dict) or record.get("state") != SOAKING:
        return "none", "no upgrade soaking"
    since = parse_ts(record.get("since"))
    version = normalize_version(record.get("version"))
    asides = ", ".join(record.get("asides") or []) or "none"
    if since is None:
        return "hold", f"the soaking upgrade to {version} has no valid start time: the copy aside ({asides}) is kept"
    hours = max((now - since).total_seconds() / 3600.0, 0.0)
    problems = []
    if not observed.get("app_active"):
        problems.append("the PEC application is not active")
    if observed.get("http_status") is None:
        problems.append("the PEC does not answer over HTTP")
    for key, label in (("config_version", "/etc/pec.config"), ("database_version", "the database")):
        if normalize_version(observed.get(key)) != version:
            problems.append(f"{label} says {observed.get(key)}, not {version}")
    if problems:
        return "hold", (
            f"PEC {version} soaking for {hours:.0f} h, but "
            + "; ".join(problems)
            + f": the previous install kept aside ({asides}) and the pre-upgrade backup are kept; look at the server"
        )
    if hours < float(soak_hours):
        return (
            "wait",
            f"PEC {version} answering for {hours:.0f} h of the {soak_hours:g} h soak: copy aside kept ({asides})",
        )
    return "commit", f"PEC {version} answered for {hours:.0f} h (soak {soak_hours:g} h): copy aside removed ({asides})"


def soak_step(facts_dir, now, soak_hours, observed, remove_asides=True, check_mode=False, rmtree=shutil.rmtree):
    """Read the upgrade's recorded state, decide (:func:`soak_decision`) and, on ``commit``, remove the copies
    aside (unless ``remove_asides`` is false) and record ``committed`` in place (the same upgrade, a later
    state: no new history entry). Returns {action, msg, soak, changed, removed}."""
    path = state_path(facts_dir, "upgrade")
    document = read_json(path, "state file of upgrade") or {}
    data = document.get("data") if isinstance(document, dict) else None
    last = (data or {}).get("last") if isinstance(data, dict) else None
    record = (last or {}).get("soak") if isinstance(last, dict) else None
    action, msg = soak_decision(record, now, soak_hours, observed)
    result = {"action": action, "msg": msg, "soak": record, "changed": False, "removed": []}
    if action != "commit":
        return result
    removed = [a for a in record.get("asides") or [] if os.path.lexists(a)] if remove_asides else []
    committed = dict(record, state=COMMITTED, committed_at=iso(now), asides_removed=bool(remove_asides))
    result.update(soak=committed, changed=True, removed=removed)
    if check_mode:
        return result
    for aside in removed:
        rmtree(aside)
    new_data = dict(data, last=dict(last, soak=committed))
    write_state(facts_dir, "upgrade", new_data, now=now)
    return result
