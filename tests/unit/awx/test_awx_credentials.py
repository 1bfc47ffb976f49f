"""The secrets reach the playbooks as AWX credentials of the custom types in awx/config.yml: each type injects, as
extra vars, exactly the variables the roles take for that secret, and each job template carries the credentials
whose secrets the roles its playbook runs read. Injection is proven as AWX does it (awx/main/models/credential.py,
CredentialType.inject_credential: the injectors rendered by a sandboxed Jinja2 environment with the credential's
inputs, written to a YAML file with every string marked !unsafe, passed as `-e @file`)."""

from __future__ import annotations

import json
import re
import textwrap

import pytest
import yaml
from awx_data import BIN, CONFIG, REPO, plan, run
from jinja2.sandbox import ImmutableSandboxedEnvironment

TYPES = {t["name"]: t for t in CONFIG["awx_credential_types"]}
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


def roles_of(playbook: str) -> set[str]:
    """The collection's roles a playbook runs: included or imported by name, and theirs, and its imported playbooks'."""
    path = REPO / playbook
    roles = _refs([path])
    for imported in re.findall(r"import_playbook:\s*(\S+)", path.read_text()):
        roles |= roles_of(str(path.parent.relative_to(REPO) / imported))
    todo = list(roles)
    while todo:
        role = REPO / "roles" / todo.pop()
        files = [*(role / "tasks").rglob("*.yml"), role / "meta" / "main.yml"]
        for found in _refs([f for f in files if f.exists()]) - roles:
            roles.add(found)
            todo.append(found)
    return roles


def secrets_of(playbook: str) -> set[str]:
    return {name for role in roles_of(playbook) for name, spec in _specs(role).items() if spec.get("no_log")}


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


def test_every_injected_variable_is_an_option_of_a_role_and_every_secret_option_is_injected():
    options = {name: spec for role in ROLES for name, spec in _specs(role).items()}
    every = injected(CONFIG["awx_credentials"])
    assert every <= set(options), every - set(options)
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


def _awx_safe_dump(data) -> str:
    """awx/main/utils/safe_yaml.py safe_dump: every string of the extra vars written as !unsafe."""

    class Dumper(yaml.SafeDumper):
        pass

    Dumper.add_representer(str, lambda dumper, value: dumper.represent_scalar("!unsafe", value))
    return yaml.dump(data, Dumper=Dumper, allow_unicode=True)


def test_injected_secrets_reach_the_play_as_typed_even_with_template_characters(tmp_path):
    inputs = {"passphrase": "frase {{ com }} chaves {% e %} #", "username": "leitura", "password": "s3nh@'\"{{x}}"}
    env = ImmutableSandboxedEnvironment()
    extra = {}
    for ctype in CONFIG["awx_credential_types"]:
        for var, template in ctype["injectors"]["extra_vars"].items():
            extra[var] = env.from_string(template).render(**inputs)
    assert extra["backup_schedule_borg_passphrase"] == inputs["passphrase"]
    (tmp_path / "extra.yml").write_text(_awx_safe_dump(extra))
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
    proc = run([str(BIN / "ansible-playbook"), str(tmp_path / "play.yml"), "-e", f"@{tmp_path / 'extra.yml'}"])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert json.loads((tmp_path / "seen.json").read_text()) == extra
    assert inputs["password"] not in proc.stdout
