"""The secrets reach the playbooks as AWX credentials of the custom types in awx/config.yml: each type injects, as
extra vars, exactly the variables the roles take for that secret, and each job template carries the credentials
whose secrets the roles its playbook runs read. Injection is proven as AWX does it (awx/main/models/credential.py,
CredentialType.inject_credential: the injectors rendered by a sandboxed Jinja2 environment with the credential's
inputs, written to a YAML file with every string marked !unsafe, passed as `-e @file`)."""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path

import pytest
import yaml
from awx_data import BIN, CONFIG, REPO, awx_inject, plan, run

TYPES = {t["name"]: t for t in CONFIG["awx_credential_types"]}


class _UnsafeLoader(yaml.SafeLoader):
    """The extra vars file AWX writes, read back: its strings are tagged !unsafe."""


_UnsafeLoader.add_constructor("!unsafe", lambda loader, node: loader.construct_scalar(node))
ROLE_REF = re.compile(r"(?:name|role):\s*sesdf\.esus\.([a-z_]+)")
ROLES = {p.name for p in (REPO / "roles").iterdir() if p.is_dir()}


def _specs(role: str) -> dict:
    path = REPO / "roles" / role / "meta" / "argument_specs.yml"
    if not path.exists():
        return {}
    options = {}
    for entry in (yaml.safe_load(path.read_text()).get("argument_specs") or {}).values():
        options.update(entry.get("options") or {})
    return options


def _refs(paths) -> set[str]:
    return {m for p in paths for m in ROLE_REF.findall(p.read_text()) if m in ROLES}


def roles_of(playbook: str, through: frozenset = frozenset(ROLES)) -> set[str]:
    """The collection's roles a playbook runs: included or imported by name, and theirs (of the roles in
    ``through`` only), and its imported playbooks'."""
    path = REPO / playbook
    roles = _refs([path])
    for imported in re.findall(r"import_playbook:\s*(\S+)", path.read_text()):
        roles |= roles_of(str(path.parent.relative_to(REPO) / imported), through)
    todo = [r for r in roles if r in through]
    while todo:
        role = REPO / "roles" / todo.pop()
        files = [*(role / "tasks").rglob("*.yml"), role / "meta" / "main.yml"]
        for found in _refs([f for f in files if f.exists()]) - roles:
            roles.add(found)
            if found in through:
                todo.append(found)
    return roles


# A secret option a role declares that a playbook reaching it only through another role never reads: the role, the
# file that includes it and the line there that keeps the reading task off. The exception holds only while that
# line is there and the playbook reaches the role through no other way.
UNREAD = {
    "cnes_import_api_password": (
        "cnes_import",
        "regime",
        "roles/regime/tasks/steps/weekly.yml",
        "cnes_import_import_enabled: false",
    ),
}


def secrets_of(playbook: str) -> set[str]:
    secrets = {name for role in roles_of(playbook) for name, spec in _specs(role).items() if spec.get("no_log")}
    for name, (role, through, path, line) in UNREAD.items():
        if line in (REPO / path).read_text() and role not in roles_of(playbook, frozenset(ROLES) - {through}):
            secrets.discard(name)
    return secrets


def injected(credential_keys) -> set[str]:
    names = set()
    for key in credential_keys:
        ctype = TYPES.get(CONFIG["awx_credentials"][key]["type"])
        names |= set(ctype["injectors"]["extra_vars"]) if ctype else set()
    return names


@pytest.fixture(scope="module")
def awx_plan(tmp_path_factory):
    proc, result = plan(tmp_path_factory.mktemp("plan"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return result


def _ssh_variables() -> set[str]:
    """The variables the ssh connection plugin takes (its options' ``vars``), as this Ansible documents them."""
    from ansible.config.manager import ConfigManager
    from ansible.plugins.loader import connection_loader

    connection_loader.get("ssh", class_only=True)  # loads its documentation into the configuration
    options = ConfigManager().get_configuration_definitions("connection", "ssh")
    from ansible import constants

    options = options or constants.config.get_configuration_definitions("connection", "ssh")
    return {v["name"] for option in options.values() for v in option.get("vars", [])}


def test_every_injected_variable_is_an_option_of_a_role_or_of_the_ssh_connection_and_every_secret_is_injected():
    options = {name: spec for role in ROLES for name, spec in _specs(role).items()}
    every = injected(CONFIG["awx_credentials"])
    connection = {name for name in every if name.startswith("ansible_")}
    assert connection <= _ssh_variables(), connection - _ssh_variables()
    assert every - connection <= set(options), every - connection - set(options)
    secret_options = {name for name, spec in options.items() if spec.get("no_log")}
    assert secret_options <= every, secret_options - every


@pytest.mark.parametrize("jt", CONFIG["awx_job_templates"], ids=lambda jt: jt["key"])
def test_each_template_carries_the_credentials_its_playbooks_roles_read(jt):
    assert "machine" in jt["credentials"]
    missing = secrets_of(jt["playbook"]) - injected(jt["credentials"])
    assert not missing, f"{jt['playbook']} reads {missing}, which no credential of the template injects"


def test_a_region_template_gets_that_regions_credentials(awx_plan):
    for jt in awx_plan["job_templates"]:
        label = next(r["label"] for r in CONFIG["awx_regions"] if r["name"] == jt["region"])
        assert set(jt["credentials"]) <= set(awx_plan["credentials"])
        for key in next(t for t in CONFIG["awx_job_templates"] if t["key"] == jt["key"])["credentials"]:
            cred = CONFIG["awx_credentials"][key]
            expected = f"{cred['name']} - {label}" if cred["per_region"] else cred["name"]
            assert expected in jt["credentials"]


def test_injected_secrets_reach_the_play_as_typed_even_with_template_characters(tmp_path):
    inputs = {"passphrase": "frase {{ com }} chaves {% e %} #", "username": "leitura", "password": "s3nh@'\"{{x}}"}
    inputs["known_hosts"] = (
        "[ubs-1]:22 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI0000000000000000000000000000000000000000000"
    )
    args, extra = [], {}
    for n, ctype in enumerate(CONFIG["awx_credential_types"]):
        args += awx_inject(ctype, inputs, tmp_path / f"job{n}")[1]
        extra |= yaml.load(Path(args[-1][1:]).read_text(), Loader=_UnsafeLoader)  # noqa: S506 - SafeLoader, one tag
    assert extra["backup_schedule_borg_passphrase"] == inputs["passphrase"]
    (tmp_path / "play.yml").write_text(
        textwrap.dedent(f"""\
        - hosts: localhost
          gather_facts: false
          tasks:
            - ansible.builtin.copy:
                content: "{{{{ {{{", ".join(f"'{k}': {k}" for k in extra)}}} | to_json }}}}"
                dest: "{tmp_path / "seen.json"}"
                mode: "0600"
        """)
    )
    proc = run([str(BIN / "ansible-playbook"), str(tmp_path / "play.yml"), *args])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    seen = json.loads((tmp_path / "seen.json").read_text())
    # a connection option reaches the play as its type (host key checking a boolean), every other value as typed
    assert seen.pop("ansible_ssh_host_key_checking") is True and extra.pop("ansible_ssh_host_key_checking") == "true"
    assert seen == extra
    assert inputs["password"] not in proc.stdout
