"""A technician's run outside AWX: ansible-navigator.yml at the repository root runs the playbooks in the image
AWX runs them in (awx/config.yml's execution environment) with the EE's own ansible.cfg, as ansible-navigator reads
it; and ARA, the optional recorder of such runs, is switched on only by its environment variable: nothing in the
default configuration (the EE's ansible.cfg, runner's environment, the navigator settings) needs it."""

from __future__ import annotations

import importlib.resources
import json
import os
import re

import jsonschema
import yaml
from awx_data import BIN, CONFIG, REPO, ansible_env, run

NAVIGATOR = REPO / "ansible-navigator.yml"


def _settings() -> dict:
    return yaml.safe_load(NAVIGATOR.read_text(encoding="utf-8"))


def test_the_navigator_settings_are_valid_for_ansible_navigator():
    schema = json.loads(
        importlib.resources.files("ansible_navigator.data").joinpath("ansible-navigator.json").read_text()
    )
    jsonschema.validate(_settings(), schema)


def test_a_technicians_run_uses_awxs_image_and_the_ees_ansible_cfg(tmp_path):
    """As ansible-navigator itself resolves the file (its effective settings, from the repository root)."""
    env = dict(os.environ, HOME=str(tmp_path), PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    proc = run(
        [str(BIN / "ansible-navigator"), "settings", "--effective", "--mode", "stdout", "--ee", "false"], env=env
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    effective = yaml.safe_load(proc.stdout)["ansible-navigator"]
    assert effective["execution-environment"]["image"] == CONFIG["awx_execution_environment"]["image"]
    assert effective["execution-environment"]["pull"]["policy"] == CONFIG["awx_execution_environment"]["pull"]
    assert effective["ansible"]["config"]["path"] == str(REPO / "ee" / "ansible.cfg")
    assert _settings()["ansible-navigator"]["execution-environment"]["enabled"] is True


def test_the_default_configuration_does_not_need_ara(tmp_path):
    """The EE's ansible.cfg with runner's environment, as a run outside AWX has them: no callback path and no
    enabled callback but profile_tasks, and a playbook runs without a word about a callback it could not load."""
    runner_env = {k: str(v) for k, v in yaml.safe_load((REPO / "runner" / "env" / "envvars").read_text()).items()}
    assert not [k for k in runner_env if k.startswith("ARA_") or k == "ANSIBLE_CALLBACK_PLUGINS"]
    assert not re.search(r"\bara(_|\b)", json.dumps(_settings()), re.IGNORECASE)
    env = ansible_env(ANSIBLE_CONFIG=str(REPO / "ee" / "ansible.cfg"), **runner_env)
    for name in [
        k for k in env if k.startswith("ARA_") or k in ("ANSIBLE_CALLBACK_PLUGINS", "ANSIBLE_CALLBACKS_ENABLED")
    ]:
        env.pop(name)
    dump = run([str(BIN / "ansible-config"), "dump", "--only-changed"], env=env)
    assert dump.returncode == 0, dump.stderr
    changed = dict(line.split(" = ", 1) for line in dump.stdout.splitlines() if " = " in line)
    changed = {name.split("(")[0]: value for name, value in changed.items()}
    assert changed["CALLBACKS_ENABLED"] == "['ansible.posix.profile_tasks']"
    assert "DEFAULT_CALLBACK_PLUGIN_PATH" not in changed
    (tmp_path / "play.yml").write_text(
        "- hosts: localhost\n  gather_facts: false\n  tasks:\n    - ansible.builtin.ping:\n"
    )
    proc = run([str(BIN / "ansible-playbook"), str(tmp_path / "play.yml")], env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "callback" not in proc.stderr.lower(), proc.stderr
