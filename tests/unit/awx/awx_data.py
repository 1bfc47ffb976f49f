"""What the AWX tests share: awx/config.yml as Ansible reads it (strings marked !unsafe kept as they are), the plan
playbooks/awx_config.yml computes from it (every object per region, written before AWX is reached), and ansible
commands run as a job runs them (this checkout as the collection sesdf.esus)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[3]
BIN = Path(sys.executable).parent


class _Loader(yaml.SafeLoader):
    """YAML as Ansible reads it: `!unsafe` marks a string Ansible must not template (AWX renders it)."""


_Loader.add_constructor("!unsafe", lambda loader, node: loader.construct_scalar(node))


def load_config(path: Path = REPO / "awx" / "config.yml") -> dict:
    return yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)  # noqa: S506 - a SafeLoader with one tag


CONFIG = load_config()


def ansible_env(**extra) -> dict:
    """The environment of an ansible command: this checkout as sesdf.esus, plain output."""
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(REPO / "build" / "collections"), ANSIBLE_NOCOLOR="1")
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env.update(extra)
    return env


def run(args: list[str], **kwargs) -> subprocess.CompletedProcess:
    kwargs.setdefault("env", ansible_env())
    return subprocess.run(args, capture_output=True, text=True, check=False, cwd=REPO, timeout=600, **kwargs)


def plan(tmp_path: Path, config: Path | None = None) -> tuple[subprocess.CompletedProcess, dict | None]:
    """playbooks/awx_config.yml with awx_config_plan_file: the objects it would create, AWX never reached."""
    out = tmp_path / "plan.json"
    args = [str(BIN / "ansible-playbook"), "playbooks/awx_config.yml", "-e", f"awx_config_plan_file={out}"]
    if config is not None:
        args += ["-e", f"awx_config_file={config}"]
    proc = run(args)
    return proc, (json.loads(out.read_text()) if out.exists() else None)
