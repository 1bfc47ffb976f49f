# Copyright: (c) 2026, SES-DF NTINF
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The weekly CNES staging job of a UBS that keeps its local server (installed by sesdf.esus.cnes_import, run by its
timer without Ansible): take the newest CNES file the region's distribution directory holds, validate it for this UBS
(module_utils ``cnes``), and stage it in its own directory (never the cnes_import role's), where the weekly
Ansible run or the operator takes it, with a status file for the report.

Config: ``CnesStageConfig``. Exit codes (module_utils/_job.py): 0 a valid file staged or already staged; 1 nothing
valid to stage (see the status file); 2 the config is unreadable or invalid.
Standard library only.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import os
import typing

from ansible_collections.sesdf.esus.plugins.module_utils import _paths
from ansible_collections.sesdf.esus.plugins.module_utils._fsutil import atomic_write, sha256_file
from ansible_collections.sesdf.esus.plugins.module_utils._job import (
    EXIT_FAILED,
    EXIT_OK,
    JobConfig,
    job_main,
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
    return status


@dataclasses.dataclass
class CnesStageConfig(JobConfig):
    """The weekly CNES staging job's configuration (written by sesdf.esus.cnes_import; docs/jobs.md)."""

    source: str
    cnes: str
    staging_dir: str = _paths.STATE_DIR + "/cnes/semanal"
    status_file: str = _paths.STATE_DIR + "/cnes/semanal-status.json"
    patterns: typing.List[str] = dataclasses.field(default_factory=lambda: list(DEFAULT_PATTERNS))


def _stage_job(config, args, log):
    status = stage(config.as_dict())
    write_status_quiet(config.status_file, status)
    log(status["message"], "info" if status["result"] == "ok" else "err")
    return EXIT_OK if status["result"] == "ok" else EXIT_FAILED


def cli_main(argv=None):
    """``sesdf-esus-cnes [--config FILE]``."""
    return job_main(
        PROG, "Preparação semanal do XML do CNES", CnesStageConfig, _stage_job, argv, DEFAULT_CONFIG, "cnes_import"
    )
