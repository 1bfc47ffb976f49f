# Copyright: (c) 2026, SES-DF NTINF
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Periodic maintenance of a PEC e-SUS APS local server: the ``sesdf-esus-manutencao`` program.

Installed on the server by the sesdf.esus.hardening role (through sesdf.esus.runtime) and run by the
``sesdf-esus-manutencao`` systemd timer, without Ansible. Steps: disk usage alarms, rotation of pec.log,
VACUUM ANALYZE of the PEC database off-hours (the PEC's own psql through ``PgClient``: password in a private
PGPASSFILE), security updates when allowed. The status of the run is written atomically as JSON to the
status file of the config. Exit codes (module_utils/_job.py): 0 ok; 1 a step failed; 2 configuration unreadable or
invalid; 3 alarm (a disk over its threshold), the run itself worked.
Usage: sesdf-esus-manutencao [--config FILE] [--force-vacuum]
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import shutil
import sys
import typing

from ansible_collections.sesdf.esus.plugins.module_utils import _paths
from ansible_collections.sesdf.esus.plugins.module_utils._fsutil import write_json
from ansible_collections.sesdf.esus.plugins.module_utils._job import (
    EXIT_ATTENTION,
    EXIT_FAILED,
    EXIT_OK,
    JobConfig,
    JobLog,
    job_main,
)
from ansible_collections.sesdf.esus.plugins.module_utils._runner import Runner
from ansible_collections.sesdf.esus.plugins.module_utils.pec_common import PecError, pec_argument_spec
from ansible_collections.sesdf.esus.plugins.module_utils.pec_db import PgClient
from ansible_collections.sesdf.esus.plugins.module_utils.pec_install import PecInstall

PROG = "sesdf-esus-manutencao"
DEFAULT_CONFIG = _paths.CONFIG_DIR + "/manutencao.json"
STATUS_MODE = 0o644
VACUUM_TIMEOUT = 3600


def now():
    return datetime.datetime.now().astimezone().isoformat(timespec="seconds")


def run(cmd, env=None, timeout=3600, changes=True):
    """(rc, stdout, stderr); a program that did not end (missing, too slow) is rc None with why in stderr."""
    proc = Runner().run(cmd, env=env, timeout=timeout, changes=changes)
    if proc.rc is None:
        return None, proc.stdout, proc.why()
    return proc.rc, proc.stdout, proc.stderr


def log(priority, message):
    """One line of the job's log (module_utils/_job.py: stderr, which systemd sends to the journal)."""
    JobLog(PROG)(message, priority)


def step_disk(cfg):
    result = {"status": "ok", "paths": []}
    for path in cfg["disk_paths"]:
        if not os.path.exists(path):
            result["paths"].append({"path": path, "status": "ausente"})
            continue
        usage = shutil.disk_usage(path)
        percent = round(100.0 * usage.used / usage.total, 1) if usage.total else 0.0
        status = "ok"
        if percent >= cfg["disk_crit_percent"]:
            status = "critico"
        elif percent >= cfg["disk_warn_percent"]:
            status = "alerta"
        if status != "ok":
            result["status"] = "alarme"
            log("warning", f"disco {path}: {percent}% usado ({status})")
        result["paths"].append({"path": path, "used_percent": percent, "free_bytes": usage.free, "status": status})
    return result


def step_logrotate(cfg):
    if not os.path.exists(cfg["pec_log"]):
        return {"status": "ok", "detail": f"{cfg['pec_log']} ausente: nada a rotacionar"}
    rc, _out, err = run(["logrotate", "-s", cfg["logrotate_state"], cfg["logrotate_config"]], timeout=600)
    if rc != 0:
        return {"status": "erro", "detail": f"logrotate falhou: {err.strip()[:500]}"}
    return {"status": "ok", "detail": "pec.log rotacionado conforme " + cfg["logrotate_config"]}


def pec_install(cfg):
    """The PEC install of the config, read like the modules read it (``PecInstall``)."""
    params = {k: v.get("default") for k, v in pec_argument_spec().items()}
    params["pec_root"] = cfg["pec_root"]
    params["db_name"] = cfg.get("db_name") or None
    install = PecInstall(params)
    if cfg.get("properties"):
        install.properties_path = cfg["properties"]
    return install


def in_vacuum_window(cfg, hour):
    return cfg["vacuum_hour_start"] <= hour < cfg["vacuum_hour_end"]


def step_vacuum(cfg, force, client_factory=PgClient):
    if not cfg["vacuum"]:
        return {"status": "desabilitado"}
    hour = datetime.datetime.now().hour
    if not force and not in_vacuum_window(cfg, hour):
        return {
            "status": "adiado",
            "detail": f"fora da janela {cfg['vacuum_hour_start']}h-{cfg['vacuum_hour_end']}h (agora {hour}h)",
        }
    install = pec_install(cfg)
    try:
        bin_dir = install.pg_bin_dir()
    except PecError:
        return {"status": "erro", "detail": "psql do PEC não encontrado em " + cfg["pec_root"] + "/database"}
    try:
        conn = install.connection()
    except PecError as exc:
        return {"status": "erro", "detail": f"não consegui ler {install.properties_path}: {exc.msg}"}
    started = datetime.datetime.now()
    try:
        with client_factory(bin_dir, conn, timeout=VACUUM_TIMEOUT) as client:
            client.query("VACUUM (ANALYZE)")
    except PecError as exc:
        log("err", "VACUUM ANALYZE falhou: " + exc.msg[:300])
        return {"status": "erro", "detail": "VACUUM ANALYZE falhou: " + exc.msg[:500]}
    seconds = round((datetime.datetime.now() - started).total_seconds(), 1)
    return {"status": "ok", "detail": f"VACUUM ANALYZE do banco {conn['name']} em {seconds}s", "seconds": seconds}


def pending_security(apt_simulation):
    """Package names that ``apt-get -s dist-upgrade`` would upgrade from a -security suite."""
    return sorted(
        {line.split()[1] for line in apt_simulation.splitlines() if line.startswith("Inst ") and "-security" in line}
    )


def step_updates(cfg):
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive", LC_ALL="C")
    if cfg["security_updates"]:
        rc, _o, err = run(["apt-get", "update", "-qq"], env=env, timeout=1800)
        if rc != 0:
            return {"status": "erro", "detail": "apt-get update falhou: " + err.strip()[:500]}
    rc, out, err = run(
        ["apt-get", "-s", "-o", "Debug::NoLocking=1", "dist-upgrade"], env=env, timeout=600, changes=False
    )
    if rc != 0:
        return {"status": "erro", "detail": "apt-get -s falhou: " + err.strip()[:500]}
    pending = pending_security(out)
    if not cfg["security_updates"]:
        return {
            "status": "desabilitado",
            "pending_security": pending,
            "detail": "atualizações de segurança desabilitadas (hardening_maintenance_security_updates)",
        }
    if not pending:
        return {"status": "ok", "installed": [], "detail": "nenhuma atualização de segurança pendente"}
    rc, _o, err = run(
        ["apt-get", "install", "-y", "-q", "--only-upgrade", "-o", "Dpkg::Options::=--force-confold", *pending],
        env=env,
        timeout=3600,
    )
    if rc != 0:
        return {"status": "erro", "detail": "instalação das atualizações falhou: " + err.strip()[:500]}
    return {"status": "ok", "installed": pending}


def overall_result(steps):
    states = {s["status"] for s in steps.values()}
    return "erro" if "erro" in states else ("alarme" if "alarme" in states else "ok")


def write_status(path, status):
    os.makedirs(os.path.dirname(path), mode=0o750, exist_ok=True)
    write_json(path, status, mode=STATUS_MODE)


def run_steps(cfg, force=False):
    """Run every step (one failing never stops the others) and return the status document."""
    status = {"started_at": now(), "host": os.uname().nodename, "steps": {}}
    steps = [
        ("disk", lambda: step_disk(cfg)),
        ("logrotate", lambda: step_logrotate(cfg)),
        ("vacuum", lambda: step_vacuum(cfg, force)),
        ("updates", lambda: step_updates(cfg)),
    ]
    for name, func in steps:
        try:
            status["steps"][name] = func()
        except Exception as exc:  # one step failing must not stop the others nor the status
            status["steps"][name] = {"status": "erro", "detail": f"{type(exc).__name__}: {exc}"}
    status["result"] = overall_result(status["steps"])
    status["finished_at"] = now()
    return status


@dataclasses.dataclass
class MaintenanceConfig(JobConfig):
    """The maintenance job's configuration (written by sesdf.esus.hardening; docs/jobs.md)."""

    status_file: str
    pec_root: str = "/opt/e-SUS"
    properties: typing.Optional[str] = None
    db_name: typing.Optional[str] = None
    pec_log: str = "/opt/e-SUS/webserver/logs/pec.log"
    disk_paths: typing.List[str] = dataclasses.field(default_factory=lambda: ["/"])
    disk_warn_percent: int = 80
    disk_crit_percent: int = 90
    logrotate_config: str = _paths.CONFIG_DIR + "/logrotate-pec.conf"
    logrotate_state: str = _paths.STATE_DIR + "/logrotate-pec.state"
    vacuum: bool = True
    vacuum_hour_start: int = 0
    vacuum_hour_end: int = 6
    security_updates: bool = False


def _maintenance_arguments(parser):
    parser.add_argument("--force-vacuum", action="store_true", help="VACUUM ANALYZE now, outside the window too")


def _maintenance_job(config, args, log):
    status = run_steps(config.as_dict(), force=args.force_vacuum)
    try:
        write_status(config.status_file, status)
    except (OSError, PecError) as exc:
        log(f"não consegui gravar o status {config.status_file}: {exc}", "err")
        return EXIT_FAILED
    summary = {"result": status["result"], **{k: v["status"] for k, v in status["steps"].items()}}
    sys.stdout.write(json.dumps(summary) + "\n")
    return {"ok": EXIT_OK, "alarme": EXIT_ATTENTION}.get(status["result"], EXIT_FAILED)


def cli_main(argv=None):
    """``sesdf-esus-manutencao [--config FILE] [--force-vacuum]``; exit codes of module_utils/_job.py."""
    return job_main(
        PROG,
        "Manutenção periódica do servidor local do PEC",
        MaintenanceConfig,
        _maintenance_job,
        argv,
        default_config=DEFAULT_CONFIG,
        role="hardening",
        add_arguments=_maintenance_arguments,
        umask=0o022,  # apt-get installs packages: their maintainer scripts must not make private files
    )
