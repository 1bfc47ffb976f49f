"""The regions' inventories import into AWX as AWX imports them: `ansible-inventory --list --export -i <project>/
<source_path> --output ... --playbook-dir <its directory>` (awx/main/tasks/jobs.py, RunInventoryUpdate.build_args),
with no vault password (AWX has none to give an inventory sync). No inventory file holds a secret: the secrets are
the AWX credentials' injected variables, and none of them is defined in an inventory."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from awx_data import BIN, CONFIG, REPO, run

INJECTED = {name for t in CONFIG["awx_credential_types"] for name in t["injectors"]["extra_vars"]}
SHIPPED = sorted(
    {r["source_path"] for r in CONFIG["awx_regions"]} | {"inventories/example", "inventories/lab/hosts.yml"}
)


def awx_import(source_path: str, tmp_path: Path) -> tuple[int, str, dict | None]:
    """The inventory update's command line, exactly (no --vault-id, no --ask-vault-pass: AWX passes none)."""
    source = REPO / source_path
    playbook_dir = source if source.is_dir() else source.parent
    output = tmp_path / "output.json"
    args = [str(BIN / "ansible-inventory"), "--list", "--export", "-i", str(source), "--output", str(output)]
    proc = run([*args, "--playbook-dir", str(playbook_dir)])
    return proc.returncode, proc.stdout + proc.stderr, json.loads(output.read_text()) if output.exists() else None


@pytest.mark.parametrize("source_path", SHIPPED)
def test_ansible_inventory_exports_the_inventory_without_a_vault_password(source_path, tmp_path):
    rc, output, exported = awx_import(source_path, tmp_path)
    assert rc == 0, output
    assert exported["_meta"]["hostvars"], "no host imported"
    for host, hostvars in exported["_meta"]["hostvars"].items():
        assert hostvars.get("sesdf_esus_cnes"), host


@pytest.mark.parametrize("region", CONFIG["awx_regions"], ids=lambda r: r["name"])
def test_each_region_imports_only_its_own_region(region, tmp_path):
    rc, output, exported = awx_import(region["source_path"], tmp_path)
    assert rc == 0, output
    regions = {g for g in exported if g.startswith("regiao_")}
    assert regions == {region["name"]}
    assert exported["ubs"]["children"] == [region["name"]], "another region's group would get an empty page"
    assert set(exported[region["name"]]["hosts"]) == set(exported["_meta"]["hostvars"])


def test_the_control_nodes_plays_do_not_take_the_ubs_sudo(tmp_path):
    """The report and its publication run on localhost, inside AWX's job container, which has no sudo."""
    (tmp_path / "play.yml").write_text(
        "- hosts: localhost\n  gather_facts: false\n  tasks:\n"
        "    - ansible.builtin.debug: {msg: 'become={{ ansible_become | default(false) }}'}\n"
        "- hosts: ubs\n  gather_facts: false\n  tasks:\n"
        "    - ansible.builtin.debug: {msg: 'become={{ ansible_become | default(false) }}'}\n"
    )
    proc = run([str(BIN / "ansible-playbook"), "-i", str(REPO / "inventories/example"), str(tmp_path / "play.yml")])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    localhost, *servers = [line for line in proc.stdout.splitlines() if '"msg": "become=' in line]
    assert "become=False" in localhost and servers and all("become=True" in line for line in servers)


def test_a_vaulted_file_beside_an_inventory_fails_the_import_as_awx_saw_it(tmp_path):
    """Why the inventories hold no secret: one encrypted group_vars file and the sync ends in an error."""
    inventory = tmp_path / "inventario"
    (inventory / "group_vars" / "all").mkdir(parents=True)
    (inventory / "hosts.yml").write_text((REPO / "inventories/example/regiao_norte.yml").read_text())
    vault = inventory / "group_vars" / "all" / "vault.yml"
    vault.write_text("segredo: x\n")
    vaulted = run([str(BIN / "ansible-vault"), "encrypt", "--vault-id", f"cofre@{_secret_file(tmp_path)}", str(vault)])
    assert vaulted.returncode == 0 and vault.read_text().startswith("$ANSIBLE_VAULT"), vaulted.stderr
    rc, output, _exported = awx_import(str(inventory / "hosts.yml"), tmp_path)
    assert rc != 0 and "vault" in output.lower()


def _secret_file(tmp_path: Path) -> Path:
    path = tmp_path / "senha"
    path.write_text("senha-de-teste\n")
    return path


def _files():
    for path in sorted((REPO / "inventories").rglob("*")):
        if path.is_file():
            yield path


def test_no_inventory_file_is_vaulted_or_defines_a_secret_the_credentials_inject():
    for path in _files():
        text = path.read_text(encoding="utf-8")
        assert "$ANSIBLE_VAULT" not in text and "!vault" not in text, path
        if path.suffix in (".yml", ".yaml"):
            keys = set(_keys(yaml.safe_load(text)))
            assert not keys & INJECTED, (path, keys & INJECTED)


def _keys(node):
    if isinstance(node, dict):
        for key, value in node.items():
            yield str(key)
            yield from _keys(value)
    elif isinstance(node, list):
        for value in node:
            yield from _keys(value)
