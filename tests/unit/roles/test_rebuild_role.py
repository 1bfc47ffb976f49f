"""The rebuild role run by ansible-playbook on localhost: a target whose PEC holds data is refused saying what it
found, with nothing changed; check mode says what it would do and changes nothing; the key line it writes on the
backup host is the one backup_schedule writes (its next run keeps it); its argument spec is its defaults."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
import yaml

from ansible_collections.sesdf.esus.plugins.module_utils.pec_db import PgClient

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
ROLE = os.path.join(REPO, "roles", "rebuild")


def _load(*parts):
    with open(os.path.join(REPO, *parts), encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def run_role(tmp_path, extra, check=False):
    """The rebuild role on localhost with ``extra`` as extra vars: (rc, output)."""
    if not os.path.exists(os.path.join(REPO, "build", "collections", "ansible_collections", "sesdf", "esus")):
        pytest.fail("run `make collection` first (the unit target does)")
    (tmp_path / "play").mkdir(exist_ok=True)
    playbook = tmp_path / "play" / "rebuild.yml"
    playbook.write_text(
        textwrap.dedent("""\
        - hosts: localhost
          gather_facts: false
          roles:
            - role: sesdf.esus.rebuild
        """)
    )
    env = dict(
        os.environ,
        ANSIBLE_COLLECTIONS_PATH=os.path.join(REPO, "build", "collections"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_PYTHON_INTERPRETER=sys.executable,
    )
    cmd = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", "localhost,", "-c", "local"]
    proc = subprocess.run(
        [*cmd, *(["--check"] if check else []), str(playbook), "-e", json.dumps(extra)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        cwd=tmp_path,
    )
    return proc.returncode, proc.stdout + proc.stderr


def settings(tmp_path, pec_root, pec_config, **over):
    """What an inventory gives the rebuild of a UBS whose copy is a borg repository on a mounted share."""
    extra = {
        "sesdf_esus_cnes": "0020002",
        "rebuild_source": "borg_mount",
        "rebuild_location": str(tmp_path / "share" / "repo"),
        "rebuild_borg_passphrase": "Passphrase-Canary-55",
        "sesdf_esus_pec_root": str(pec_root),
        "sesdf_esus_pec_config_path": str(pec_config),
        "sesdf_esus_facts_dir": str(tmp_path / "facts"),
        "sesdf_esus_state_dir": str(tmp_path / "state"),
        "sesdf_esus_config_dir": str(tmp_path / "config"),
        "sesdf_esus_backup_dir": str(tmp_path / "backups"),
        "rebuild_installer_dir": "/srv/pec-installers",
    }
    extra.update(over)
    return extra


def pec_with_data(tmp_path, pg_server, conn):
    """A PEC install on disk whose database is ``conn`` (the synthetic UBS: records, lotes, citizens)."""
    root = tmp_path / "opt-e-SUS"
    (root / "webserver" / "config").mkdir(parents=True)
    (root / "database" / "postgresql-9.6.13-1-linux-x64").mkdir(parents=True)
    os.symlink(pg_server["bin_dir"], root / "database" / "postgresql-9.6.13-1-linux-x64" / "bin")
    (root / "webserver" / "config" / "application.properties").write_text(
        f"spring.datasource.url=jdbc:postgresql://{conn['host']}:{conn['port']}/{conn['name']}\n"
        f"spring.datasource.username={conn['user']}\nspring.datasource.password={conn['password']}\n"
    )
    config = tmp_path / "pec.config"
    config.write_text(json.dumps({"version": "4.5.2"}))
    return root, config


def files_under(tmp_path):
    return sorted(
        os.path.relpath(os.path.join(d, f), tmp_path)
        for d, _dirs, names in os.walk(tmp_path)
        for f in names
        if "opt-e-SUS" not in d and "play" not in os.path.relpath(d, tmp_path).split(os.sep)
    )


@pytest.mark.nt("NT-inapta-4")
def test_a_target_whose_pec_holds_data_is_refused_with_what_was_found_and_nothing_changed(tmp_path, pg_server, pec_db):
    with PgClient(pg_server["bin_dir"], pec_db) as client:
        client.query("INSERT INTO tb_cidadao (no_cidadao) VALUES ('Cidadã Sintética')")
        citizens = client.scalar("SELECT count(*) FROM tb_cidadao")
    root, config = pec_with_data(tmp_path, pg_server, pec_db)
    before = files_under(tmp_path)
    rc, out = run_role(tmp_path, settings(tmp_path, root, config))
    assert rc != 0
    assert "já tem um PEC 4.5.2 com banco de" in out and f"tb_cidadao: {citizens}" in out
    assert "Nada foi alterado" in out and "rebuild_replace: true" in out
    assert files_under(tmp_path) == before, "nothing written: no passphrase, no work directory, no record"
    assert "Passphrase-Canary-55" not in out and pec_db["password"] not in out


def test_check_mode_says_what_it_would_do_and_changes_nothing(tmp_path):
    before = files_under(tmp_path)
    rc, out = run_role(tmp_path, settings(tmp_path, tmp_path / "none", tmp_path / "none.config"), check=True)
    assert rc == 0, out
    assert "alvo: nenhum PEC instalado" in out
    assert "buscar a cópia mais nova desta UBS em " + str(tmp_path / "share" / "repo") in out
    assert "restaurar o banco num banco de rascunho, conferir contagens e hashes" in out
    assert "apontar LINKINSTALACAO para localhost" in out
    assert files_under(tmp_path) == before and "Passphrase-Canary-55" not in out


def test_missing_settings_are_refused_in_one_message_naming_each(tmp_path):
    extra = settings(tmp_path, tmp_path / "none", tmp_path / "none.config", sesdf_esus_cnes="12", rebuild_location="")
    extra.update(rebuild_borg_passphrase="", rebuild_archive_date="05/01/2027")
    rc, out = run_role(tmp_path, extra)
    assert rc != 0
    for said in ("sesdf_esus_cnes (7 dígitos)", "backup_schedule_offhost_dest", "rebuild_escrow_file", "AAAA-MM-DD"):
        assert said in out, said
    assert files_under(tmp_path) == []


def test_the_key_line_on_the_backup_host_is_the_one_backup_schedule_writes():
    ours = _load("roles", "rebuild", "vars", "main.yml")
    theirs = _load("roles", "backup_schedule", "vars", "main.yml")
    assert ours["__rebuild_forced"].replace("__rebuild_repo_path", "X") == theirs[
        "__backup_schedule_borg_forced"
    ].replace("__backup_schedule_borg_repo_path", "X")
    assert ours["__rebuild_repo_path"].replace("rebuild_location", "D") == theirs[
        "__backup_schedule_borg_repo_path"
    ].replace("backup_schedule_offhost_dest", "D")
    access = _load("roles", "rebuild", "tasks", "access.yml")
    keygen = next(t for t in access[-1]["block"] if "ansible.builtin.command" in t)["ansible.builtin.command"]["cmd"]
    assert "-C {{ __rebuild_tag }}" in keygen and ours["__rebuild_tag"] == "sesdf-esus-borg-{{ __rebuild_cnes }}"


def test_the_argument_spec_is_the_roles_defaults():
    defaults = _load("roles", "rebuild", "defaults", "main.yml")
    options = _load("roles", "rebuild", "meta", "argument_specs.yml")["argument_specs"]["main"]["options"]
    assert sorted(options) == sorted(defaults)
    assert {k: v for k, v in defaults.items() if options[k].get("default") != v} == {}


def listing(tmp_path, rc, stdout="", stderr="", cnes="0040004"):
    """The role's reading of what the backup host listed (tasks/repository.yml, its set_fact tasks on localhost)."""
    tasks = [t for t in _load("roles", "rebuild", "tasks", "repository.yml") if "ansible.builtin.set_fact" in t]
    out = tmp_path / "listing.json"
    play = [
        {
            "hosts": "localhost",
            "gather_facts": False,
            "vars": {
                "__rebuild_list": {"rc": rc, "stdout": stdout, "stderr": stderr},
                "__rebuild_info": {"skipped": True},
                "__rebuild_cnes": cnes,
                "rebuild_label": "diario",
                "rebuild_location": "ssh://borg@bkp/srv/borg/ubs-0040004",
            },
            "tasks": [
                *tasks,
                {
                    "ansible.builtin.copy": {
                        "dest": str(out),
                        "content": "{{ {'listed': __rebuild_listed, 'problem': __rebuild_repository_problem}"
                        " | to_json }}",
                        "mode": "0600",
                    }
                },
            ],
        }
    ]
    (tmp_path / "play").mkdir(exist_ok=True)
    (tmp_path / "play" / "listing.yml").write_text(yaml.safe_dump(play))
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_PYTHON_INTERPRETER=sys.executable)
    cmd = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", "localhost,", "-c", "local"]
    proc = subprocess.run(
        [*cmd, str(tmp_path / "play" / "listing.yml")], capture_output=True, text=True, env=env, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(out.read_text())


def test_the_backup_hosts_listing_names_the_newest_backup_a_wrong_passphrase_or_another_ubs(tmp_path):
    names = ["esus-0040004-diario-20270101T023000Z", "esus-0040004-diario-20270102T023000Z"]
    ok = listing(tmp_path, 0, json.dumps({"archives": [{"name": n} for n in names]}))
    assert ok == {"listed": names[1] + " (a mais nova de 2 cópias desta UBS)", "problem": ""}
    wrong = listing(tmp_path, 2, stderr="passphrase supplied in BORG_PASSPHRASE_FD is incorrect.")
    assert wrong["problem"].startswith("a senha informada não abre o repositório ssh://borg@bkp/srv/borg/ubs-0040004")
    other = listing(tmp_path, 0, json.dumps({"archives": [{"name": "esus-0050005-diario-20270101T023000Z"}]}))
    assert "não tem nenhuma cópia desta UBS (esus-0040004-diario-*)" in other["problem"]
    assert "outra UBS (esus-0050005-diario-20270101T023000Z)" in other["problem"]
    mixed = listing(tmp_path, 0, json.dumps({"archives": [{"name": names[0]}, {"name": "esus-0050005-diario-x"}]}))
    assert "mistura cópias desta UBS" in mixed["problem"]
