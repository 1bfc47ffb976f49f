"""What the AWX tests share: awx/config.yml as Ansible reads it (strings marked !unsafe kept as they are), the plan
playbooks/awx_config.yml computes from it (every object per region, written before AWX is reached), ansible
commands run as a job runs them (this checkout as the collection sesdf.esus), and a credential injected as AWX
injects it."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import tempfile
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


def awx_safe_dump(data) -> str:
    """awx/main/utils/safe_yaml.py safe_dump: every string of the extra vars written as !unsafe."""

    class Dumper(yaml.SafeDumper):
        pass

    Dumper.add_representer(str, lambda dumper, value: dumper.represent_scalar("!unsafe", value))
    return yaml.dump(data, Dumper=Dumper, allow_unicode=True)


def awx_inject(ctype: dict, inputs: dict, private_data_dir: Path) -> tuple[dict, list[str]]:
    """A credential of ``ctype`` injected as AWX injects it (awx/main/models/credential.py,
    CredentialType.inject_credential): the injectors rendered by a sandboxed Jinja2 environment with the inputs and
    the ``tower`` namespace; each file template written to a new file under <private_data_dir>/env (mode 0600) whose
    path is ``tower.filename`` (``tower.filename.<name>`` for ``template.<name>``); an env variable named ANSIBLE_*
    dropped (AWX refuses it); the extra vars written with awx_safe_dump to a file passed as ``-e @file``. AWX names
    the files by their path inside the job's container (/runner/env/...); here the job runs on this machine, so the
    path is the file's own. Returns (env, ansible-playbook arguments)."""
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    class Namespace:
        pass

    sandbox = ImmutableSandboxedEnvironment()
    tower = Namespace()
    namespace = {"tower": tower, **{k: v for k, v in inputs.items() if v != ""}}
    env_dir = private_data_dir / "env"
    env_dir.mkdir(parents=True, exist_ok=True)
    for label, template in ctype["injectors"].get("file", {}).items():
        handle, path = tempfile.mkstemp(dir=env_dir)
        with os.fdopen(handle, "w") as out:
            out.write(sandbox.from_string(template).render(**namespace))
        os.chmod(path, stat.S_IRUSR | stat.S_IWUSR)
        if "." not in label:
            tower.filename = path
        else:
            if not hasattr(tower, "filename"):
                tower.filename = Namespace()
            setattr(tower.filename, label.split(".")[1], path)
    env = {
        name: sandbox.from_string(template).render(**namespace)
        for name, template in ctype["injectors"].get("env", {}).items()
        if not name.startswith("ANSIBLE_")
    }
    args = []
    extra = {k: sandbox.from_string(v).render(**namespace) for k, v in ctype["injectors"].get("extra_vars", {}).items()}
    if extra:
        handle, path = tempfile.mkstemp(dir=env_dir)
        with os.fdopen(handle, "w") as out:
            out.write(awx_safe_dump(extra))
        os.chmod(path, stat.S_IRUSR)
        args += ["-e", f"@{path}"]
    return env, args


def write_config(config: dict, path: Path) -> Path:
    """A changed copy of awx/config.yml (from load_config), every string with a template in it marked !unsafe again."""

    class Dumper(yaml.SafeDumper):
        pass

    def string(dumper, value):
        tag = "!unsafe" if "{{" in value or "{%" in value else "tag:yaml.org,2002:str"
        return dumper.represent_scalar(tag, value)

    Dumper.add_representer(str, string)
    path.write_text(yaml.dump(config, Dumper=Dumper, allow_unicode=True), encoding="utf-8")
    return path
