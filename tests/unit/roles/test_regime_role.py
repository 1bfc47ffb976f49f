"""The regime role run by ansible-playbook: its consultation checks (tasks_from consultation) against a database with
the double's schema (where this PEC has no key for a setting the check reports "não verificável", never a pass, and a
manual step confirmed on the server says who confirmed it and when); its route's switches (a due migration or
upgrade waits for CTINF's approval when the run does not do it by itself)."""

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


# ------------------------------------------------------------------------------------------------ the switches
# The route (tasks/main.yml) on two UBS over the local connection, a synthetic calendar at 21:00: with
# regime_migrate_enabled / regime_upgrade_enabled false (AWX's nightly regime) an apt UBS whose CTINF date came and
# an inapt UBS whose upgrade is due are not put in the groups site.yml's migration and upgrade plays run on, and the
# same run's report shows each as a pendency naming where CTINF approves it; with the defaults (the lab, a run by
# hand, the approval workflows' templates) they are.
PEC = {
    "installed": True,
    "role": "local_server",
    "version": {"config": "4.2.8", "database": "4.2.8", "agree": True, "consensus": "4.2.8"},
    "database": {"reachable": True},
    "problems": [],
}
MIGRATE_AT = 'workflow "sesdf.esus Norte - migração aprovada pela CTINF" no AWX'
UPGRADE_AT = 'workflow "sesdf.esus Norte - atualização aprovada pela CTINF" no AWX'


def run_regime(tmp_path, *extra):
    """Route two UBS (apt, date reached; inapt, upgrade due) and write the report: (dynamic groups, report rows)."""
    if not os.path.exists(os.path.join(REPO, "build", "collections", "ansible_collections", "sesdf", "esus")):
        pytest.fail("run `make collection` first (the unit target does)")
    local = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable, "sesdf_esus_pec": PEC}
    hosts = {
        "ubs-apta": dict(local, sesdf_esus_data_migracao="2026-12-01"),
        "ubs-inapta": dict(local, sesdf_esus_versao_alvo="4.5.2", sesdf_esus_prazo_atualizacao="2026-12-31"),
    }
    inventory = {
        "all": {
            "children": {
                "ubs": {"hosts": {name: {} for name in hosts}},
                "regiao_norte": {"hosts": {name: {} for name in hosts}},
                "ubs_aptas": {"hosts": {"ubs-apta": hosts["ubs-apta"]}},
                "ubs_inaptas": {"hosts": {"ubs-inapta": hosts["ubs-inapta"]}},
            }
        }
    }
    (tmp_path / "inventory.json").write_text(json.dumps(inventory))
    groups = tmp_path / "groups.json"
    playbook = tmp_path / "route.yml"
    playbook.write_text(
        textwrap.dedent(f"""\
        - hosts: ubs
          gather_facts: false
          tasks:
            - ansible.builtin.include_role:
                name: sesdf.esus.regime
        - hosts: localhost
          gather_facts: false
          tasks:
            - ansible.builtin.copy:
                content: "{{{{ groups | to_json }}}}"
                dest: {groups}
                mode: "0600"
            - ansible.builtin.include_role:
                name: sesdf.esus.report
        """)
    )
    env = dict(
        os.environ,
        ANSIBLE_COLLECTIONS_PATH=os.path.join(REPO, "build", "collections"),
        ANSIBLE_NOCOLOR="1",
    )
    calendar = {"regime_today": "2026-12-01", "regime_now": "2026-12-01T21:00", "report_pdf": False}
    calendar["report_dir"] = str(tmp_path / "out")
    proc = subprocess.run(
        [
            os.path.join(os.path.dirname(sys.executable), "ansible-playbook"),
            "-i",
            str(tmp_path / "inventory.json"),
            str(playbook),
            "-e",
            json.dumps(calendar),
            *extra,
        ],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = next((tmp_path / "out").glob("relatorio-regiao_norte-*.json"))
    rows = {r["host"]: r for r in json.loads(report.read_text(encoding="utf-8"))["rows"]}
    return json.loads(groups.read_text()), rows, proc.stdout


def approvals(row):
    return [p for p in row["pendencias"] if p["code"] == "aguardando_aprovacao"]


@pytest.mark.nt("NT-geral-2")
def test_switched_off_the_nightly_regime_migrates_and_upgrades_nothing_and_says_what_waits(tmp_path):
    switches = {"regime_migrate_enabled": False, "regime_upgrade_enabled": False}
    switches.update(regime_migrate_approval=MIGRATE_AT, regime_upgrade_approval=UPGRADE_AT)
    groups, rows, out = run_regime(tmp_path, "-e", json.dumps(switches))
    assert "regime_migracao" not in groups and "regime_atualizacao" not in groups
    assert groups["regime_aguardando_aprovacao"] == ["ubs-apta"] and groups["regime_local"] == ["ubs-inapta"]
    (migration,) = approvals(rows["ubs-apta"])
    assert migration["due"] and migration["field"] == "situacao" and MIGRATE_AT in migration["msg"]
    assert "data de migração 2026-12-01 alcançada" in migration["msg"]
    (upgrade,) = approvals(rows["ubs-inapta"])
    assert upgrade["field"] == "versao" and upgrade["nt"] == "NT-inapta-5" and UPGRADE_AT in upgrade["msg"]
    assert "de 4.2.8 para 4.5.2" in upgrade["msg"]
    assert "aguardando_aprovacao: apta, data de migração 2026-12-01 alcançada: aguarda a aprovação da CTINF" in out


def test_with_the_defaults_the_regime_migrates_and_upgrades_what_is_due(tmp_path):
    groups, rows, _out = run_regime(tmp_path)
    assert groups["regime_migracao"] == ["ubs-apta"] and groups["regime_atualizacao"] == ["ubs-inapta"]
    assert "regime_aguardando_aprovacao" not in groups
    assert not approvals(rows["ubs-apta"]) and not approvals(rows["ubs-inapta"])
