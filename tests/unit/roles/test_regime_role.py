"""The regime's consultation checks (tasks_from consultation) run by ansible-playbook against a database with the
double's schema: where this PEC has no key for a setting the check reports "não verificável", never a pass, and a
manual step confirmed on the server says who confirmed it and when."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from ansible_collections.sesdf.esus.plugins.module_utils import manual_steps
from ansible_collections.sesdf.esus.plugins.module_utils.pec_db import PgClient

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
BREAK_GLASS = "00000000272"  # the synthetic UBS of the pec_db fixture (conftest.py)


def consultation(tmp_path, conn, bin_dir):
    """The consultation checks on localhost, the PEC modules pointed at ``conn``: regime_consultation."""
    if not os.path.exists(os.path.join(REPO, "build", "collections", "ansible_collections", "sesdf", "esus")):
        pytest.fail("run `make collection` first (the unit target does)")
    out = tmp_path / "consultation.json"
    playbook = tmp_path / "consultation.yml"
    pec = {"db_host": conn["host"], "db_port": conn["port"], "db_name": conn["name"], "db_user": conn["user"]}
    pec.update(db_password="{{ lookup('file', pw_file) }}", pg_bin_dir=bin_dir)
    playbook.write_text(
        textwrap.dedent(f"""\
        - hosts: localhost
          gather_facts: false
          vars:
            sesdf_esus_pec_schema_trust: double  # the full double's schema
          module_defaults:
            group/sesdf.esus.pec: {json.dumps(pec)}
          tasks:
            - ansible.builtin.include_role:
                name: sesdf.esus.regime
                tasks_from: consultation
            - ansible.builtin.copy:
                dest: {out}
                content: "{{{{ regime_consultation | to_json }}}}"
                mode: "0600"
        """)
    )
    (tmp_path / "pw").write_text(conn["password"])
    env = dict(
        os.environ,
        ANSIBLE_COLLECTIONS_PATH=os.path.join(REPO, "build", "collections"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_PYTHON_INTERPRETER=sys.executable,
    )
    extra = {
        "decommission_break_glass_login": BREAK_GLASS,
        "decommission_facts_dir": str(tmp_path / "facts"),
        "pw_file": str(tmp_path / "pw"),
    }
    proc = subprocess.run(
        [
            os.path.join(os.path.dirname(sys.executable), "ansible-playbook"),
            "-i",
            "localhost,",
            "-c",
            "local",
            str(playbook),
            "-e",
            json.dumps(extra),
        ],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert conn["password"] not in proc.stdout + proc.stderr
    return json.loads(out.read_text(encoding="utf-8")), proc.stdout


def test_a_setting_this_pec_hides_is_not_verifiable_never_a_pass(tmp_path, pg_server, pec_db):
    """As on a real PEC: no TRANSMISSAO_AUTOMATICA (and the 4.2.8 double has no CNES key either)."""
    with PgClient(pg_server["bin_dir"], pec_db) as client:
        client.query("DELETE FROM tb_config_sistema WHERE co_config_sistema = 'TRANSMISSAO_AUTOMATICA'")
    result, out = consultation(tmp_path, pec_db, pg_server["bin_dir"])
    checks = result["checks"]
    assert checks["transmissao"]["status"] == "não verificável" and checks["cnes_perfis"]["status"] == "não verificável"
    assert "sem passo manual registrado" in checks["transmissao"]["detail"]
    assert "key TRANSMISSAO_AUTOMATICA in tb_config_sistema" in checks["transmissao"]["detail"]
    assert any(f.startswith("transmissão automática desligada: não verificável") for f in result["findings"])
    assert "transmissão automática desligada: não verificável" in out
    # the profiles can be read on the double: observed, so a status of their own (the lab's UBS is not view-only)
    assert checks["perfis"]["status"] == "divergente"


@pytest.mark.nt("NT-apta-1")
def test_a_confirmed_manual_step_says_who_and_when_and_is_no_finding(tmp_path, pg_server, pec_db):
    with PgClient(pg_server["bin_dir"], pec_db) as client:
        client.query("DELETE FROM tb_config_sistema WHERE co_config_sistema = 'TRANSMISSAO_AUTOMATICA'")
    params = {
        "facts_dir": str(tmp_path / "facts"),
        "refused": ["transmission_off"],
        "confirmed": {"NT-apta-transmissao": "Maria Souza"},
    }
    step = manual_steps.run(params)["steps"]["NT-apta-transmissao"]
    result, _out = consultation(tmp_path, pec_db, pg_server["bin_dir"])
    day = "/".join(reversed(step["confirmado_em"][:10].split("-")))
    transmissao = result["checks"]["transmissao"]
    assert transmissao["status"] == "não verificável"
    assert transmissao["detail"] == f"confirmado manualmente por Maria Souza em {day} (não verificável automaticamente)"
    assert not any(f.startswith("transmissão automática desligada") for f in result["findings"])
    # the CNES key is still hidden and nobody confirmed it: still a finding
    assert any(f.startswith("importação do CNES sem redefinir perfis: não verificável") for f in result["findings"])


def test_a_setting_the_pec_has_is_checked_and_a_change_back_is_divergent(tmp_path, pg_server, pec_db):
    result, _out = consultation(tmp_path, pec_db, pg_server["bin_dir"])
    assert result["checks"]["transmissao"]["status"] == "divergente"  # the double's key is 'true'
    with PgClient(pg_server["bin_dir"], pec_db) as client:
        client.query(
            "UPDATE tb_config_sistema SET ds_texto = 'false' WHERE co_config_sistema = 'TRANSMISSAO_AUTOMATICA'"
        )
    result, _out = consultation(tmp_path, pec_db, pg_server["bin_dir"])
    assert result["checks"]["transmissao"] == {
        "label": "transmissão automática desligada",
        "capability": "transmission_off",
        "status": "ok",
        "detail": "ok",
        "finding": "",
    }
