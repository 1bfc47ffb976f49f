# Copyright: (c) 2026, SES-DF NTINF
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The weekly CNES staging job of a UBS that keeps its local server (installed by sesdf.esus.regime, run by cron
without Ansible): take the newest CNES file the region's distribution directory holds, validate it for this UBS
(module_utils ``cnes``), and stage it in its own directory (never the cnes_import role's), where the weekly
Ansible run or the operator takes it, with a status file for the report.

Config (JSON): source (a directory on the server), patterns, cnes, staging_dir, status_file. Exit 0: a valid file
staged or already staged; 1: nothing valid to stage (see the status file); 2: the config is unreadable.
Standard library only.
"""

from __future__ import annotations

import fnmatch
import os
import sys

from ansible_collections.sesdf.esus.plugins.module_utils import _paths
from ansible_collections.sesdf.esus.plugins.module_utils._fsutil import atomic_write, sha256_file
from ansible_collections.sesdf.esus.plugins.module_utils._job import (
    EXIT_CONFIG,
    EXIT_FAILED,
    EXIT_OK,
    ConfigError,
    JobLog,
    read_config,
    write_status_quiet,
)
from ansible_collections.sesdf.esus.plugins.module_utils._timeutil import iso, utcnow
from ansible_collections.sesdf.esus.plugins.module_utils.cnes_xml import read_cnes_file
from ansible_collections.sesdf.esus.plugins.module_utils.pec_common import PecError

PROG = "sesdf-esus-cnes"
DEFAULT_CONFIG = _paths.CONFIG_DIR + "/cnes-stage.json"
DEFAULT_PATTERNS = ("XmlParaESUS*.zip", "*.xml")


def newest(source, patterns):
    """The newest file of ``source`` matching one of ``patterns``. PecError when the directory or a file is missing."""
    if not os.path.isdir(source):
        raise PecError(f"ponto de distribuição do CNES {source} ausente: verifique se a pasta do NCAIS está montada")
    files = [
        os.path.join(source, name)
        for name in os.listdir(source)
        if any(fnmatch.fnmatch(name, pattern) for pattern in patterns) and os.path.isfile(os.path.join(source, name))
    ]
    if not files:
        raise PecError(f"nenhum arquivo {' ou '.join(patterns)} em {source}")
    return max(files, key=lambda path: (os.path.getmtime(path), path))


def stage(cfg):
    """Validate and stage the newest file. Returns the status document (result ok or erro)."""
    status = {"at": iso(utcnow()), "source": cfg.get("source"), "result": "erro", "staged": None, "message": ""}
    try:
        path = newest(cfg["source"], tuple(cfg.get("patterns") or DEFAULT_PATTERNS))
        read_cnes_file(path, cfg["cnes"])
        os.makedirs(cfg["staging_dir"], mode=0o750, exist_ok=True)
        dest = os.path.join(cfg["staging_dir"], os.path.basename(path))
        digest = sha256_file(path)
        if not (os.path.exists(dest) and sha256_file(dest) == digest):
            with open(path, "rb") as handle:
                atomic_write(dest, handle.read(), mode=0o640)
        status.update(
            result="ok",
            staged=dest,
            sha256=digest,
            message=f"{os.path.basename(path)} validado para o CNES {cfg['cnes']} e preparado",
        )
    except PecError as exc:
        status["message"] = str(exc)
    except KeyError as exc:
        status["message"] = f"configuração sem {exc}; rode o site.yml de novo"
    return status


def cli_main(argv=None):
    """``sesdf-esus-cnes [--config FILE]``."""
    import argparse

    parser = argparse.ArgumentParser(prog=PROG, description="Preparação semanal do XML do CNES")
    parser.add_argument("--config", default=DEFAULT_CONFIG)
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    log = JobLog(PROG)
    try:
        cfg = read_config(args.config)
    except ConfigError as exc:
        log(f"configuração {exc.path} ilegível: {exc.reason}; rode o site.yml de novo", "err")
        return EXIT_CONFIG
    status = stage(cfg)
    write_status_quiet(cfg.get("status_file") or "", status)
    log(status["message"], "info" if status["result"] == "ok" else "err")
    return EXIT_OK if status["result"] == "ok" else EXIT_FAILED
