"""The report role on hand-made host facts: what a GSAP/GPMA manager reads, without any server."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap

import pytest

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))

PEC_OK = {
    "installed": True,
    "role": "local_server",
    "version": {"config": "4.5.2", "database": "4.5.2", "http": "4.5.2", "agree": True, "consensus": "4.5.2"},
    "services": {"app": {"active_state": "active"}, "database": {"active_state": "active"}},
    "database": {"reachable": True, "size_bytes": 52428800},
    "backup_status": {
        "last_success": "2026-11-25T03:00:00Z",
        "verified": True,
        "age_hours": 5.2,
        "offhost": {"state": "ok"},
    },
    "backup_dir": {"free_bytes": 123456789},
    "problems": [],
}

CAPABILITIES_STRICT = {
    "create_lotes": {"supported": True, "missing": [], "manual": "Transmissão de dados → Gerar novo lote"},
    "transmission_off": {
        "supported": False,
        "missing": ["key TRANSMISSAO_AUTOMATICA in tb_config_sistema"],
        "manual": "Transmissão de dados → Configurações",
    },
}


def run_report(tmp_path, hostvars, *extra, ok=True, publish=False):
    inventory = {"all": {"children": {"ubs": {"children": {"regiao_norte": {"hosts": {}}}}, "regiao_sul": {}}}}
    for name, variables in hostvars.items():
        inventory["all"]["children"]["ubs"]["children"]["regiao_norte"]["hosts"][name] = variables
    (tmp_path / "inventory.json").write_text(json.dumps(inventory))
    playbook = tmp_path / "report.yml"
    # with report_publish, report_dir is the report role's own variable (as in playbooks/report.yml, where it is
    # the role's default), not one every role sees
    playbook.write_text(
        textwrap.dedent(f"""\
        - hosts: localhost
          gather_facts: false
          tasks:
            - ansible.builtin.include_role:
                name: sesdf.esus.report
              vars:
                report_dir: {tmp_path / "out"}
    """)
        + ("    - ansible.builtin.include_role:\n        name: sesdf.esus.report_publish\n" if publish else "")
    )
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(REPO, "build", "collections"), ANSIBLE_NOCOLOR="1")
    bindir = os.path.dirname(sys.executable)
    proc = subprocess.run(
        [
            os.path.join(bindir, "ansible-playbook"),
            "-i",
            str(tmp_path / "inventory.json"),
            str(playbook),
            *(() if publish else ("-e", f"report_dir={tmp_path / 'out'}")),
            *extra,
        ],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert (proc.returncode == 0) is ok, proc.stdout + proc.stderr
    return proc.stdout


def read_report(tmp_path):
    reports = sorted((tmp_path / "out").glob("relatorio-regiao_norte-*"))
    html = next(p for p in reports if p.suffix == ".html").read_text(encoding="utf-8")
    rows = json.loads(next(p for p in reports if p.suffix == ".json").read_text(encoding="utf-8"))["rows"]
    return html, {r["host"]: r for r in rows}


HOSTVARS = {
    "ubs-ok": {"sesdf_esus_ubs_name": "UBS 1 Teste", "sesdf_esus_cnes": "0010001", "sesdf_esus_pec": PEC_OK},
    "ubs-late": {
        "sesdf_esus_ubs_name": "UBS 2 Teste",
        "sesdf_esus_cnes": "0010002",
        "sesdf_esus_pec": dict(PEC_OK, backup_status=None),
        "hardening_report": {
            "mode": "audit",
            "summary": {"pass": 20, "fail": 1, "fixed": 0, "not_verifiable_here": 0},
            "controls": [
                {"id": "ssh_config", "concern": "access", "status": "pass"},
                {"id": "firewall_rules", "concern": "firewall", "status": "fail"},
            ],
        },
        "lotes_export_deadline": {
            "month": "2026-10",
            "deadline": "2026-11-10",
            "days_left": -15,
            "units": [{"cnes": "0010002", "status": "atrasado", "pending_records": 7}],
        },
        "upgrade_summary": {"result": "rolled_back", "message": "installer failed"},
    },
    "ubs-down": {"sesdf_esus_ubs_name": "UBS 3 Teste", "sesdf_esus_cnes": "0010003"},
    "ubs-strict": {
        "sesdf_esus_ubs_name": "UBS 4 Teste",
        "sesdf_esus_cnes": "0010004",
        "sesdf_esus_pec": dict(PEC_OK, capabilities=CAPABILITIES_STRICT),
    },
}


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    if not os.path.exists(os.path.join(REPO, "build", "collections", "ansible_collections", "sesdf", "esus")):
        pytest.fail("run `make collection` first (the unit target does)")
    tmp_path = tmp_path_factory.mktemp("report")
    out = run_report(tmp_path, HOSTVARS)
    return (*read_report(tmp_path), out, tmp_path)


def test_a_healthy_ubs_has_nothing_pending_but_its_restore_test(report):
    _html, rows, _out, _tmp = report
    assert [p["code"] for p in rows["ubs-ok"]["pendencias"]] == ["teste_restauracao", "sem_estado"]
    assert not rows["ubs-ok"]["due"] and rows["ubs-ok"]["backup"]["last_success"] == "2026-11-25"


def test_every_pending_action_of_a_ubs_is_listed_in_portuguese(report):
    html, rows, _out, tmp = report
    codes = [p["code"] for p in rows["ubs-late"]["pendencias"] if p["code"] not in ("teste_restauracao", "sem_estado")]
    assert codes == ["backup", "hardening", "cds", "upgrade"]
    assert "backup diário do banco ausente ou atrasado" in html
    assert "a última atualização do PEC: falhou e foi revertida (installer failed)" in html
    hardening = next(p["msg"] for p in rows["ubs-late"]["pendencias"] if p["code"] == "hardening")
    assert hardening == (
        "segurança - acesso ao servidor restrito e controlado (NT-inapta-2): 1 controle(s) falhando em modo "
        "auditoria (nada foi alterado no servidor). firewall (1): o modo enforce aplica as regras do firewall "
        "(nftables). Para corrigir: rodar playbooks/harden.yml com hardening_mode=enforce"
    )
    # the control's id only in the security detail on the UBS's own page, which the pendency links to
    (ubs_page,) = (tmp / "out").glob("detalhe-*/ubs-ubs-late.html")
    assert "firewall_rules" not in html and ubs_page.read_text(encoding="utf-8").count("firewall_rules") == 1
    assert re.search(r'href="detalhe-[0-9-]+/ubs-ubs-late\.html#seguranca-ubs-late">detalhe</a>', html)
    assert rows["ubs-late"]["states"]["hardening"]["cell"] == "modo auditoria: 20 ok, 1 falha(s)"
    assert "produção de 2026-10 (CNES 0010002): atrasado, 7 registro(s)" in html


def test_a_capability_refused_on_a_server_is_a_pending_action_with_the_manual_path(report):
    _html, rows, _out, _tmp = report
    compat = [p for p in rows["ubs-strict"]["pendencias"] if p["code"] == "compat"]
    assert [p["msg"] for p in compat] == [
        "a coleção não pode desligar a transmissão automática neste servidor (o banco do PEC não tem: "
        "key TRANSMISSAO_AUTOMATICA in tb_config_sistema); fazer pelo PEC: Transmissão de dados → Configurações"
    ]
    assert compat[0]["due"] and "situacao" in rows["ubs-strict"]["red_fields"]


def test_an_unreachable_ubs_is_reported_not_dropped(report):
    html, rows, _out, _tmp = report
    assert rows["ubs-down"]["reachable"] is False and rows["ubs-down"]["role_label"] == "inacessível"
    assert '<tr data-host="ubs-down">' in html and "o servidor não respondeu ao Ansible" in html


def test_the_printed_summary_counts_what_the_page_lists(report):
    _html, rows, out, _tmp = report
    for host, row in rows.items():
        line = f"{row['ubs']} (CNES {row['cnes']}, sem classificação): "
        assert any(
            line in text and text.endswith(f'pendências: {len(row["pendencias"])}",') for text in out.splitlines()
        ), host
    assert "Região Sul: 0 UBS, 0 pendência(s)" in out, "a region of the inventory with no UBS"


def test_report_has_no_volatile_byte_counts_and_a_second_run_changes_nothing(report):
    _html, rows, _out, tmp_path = report
    text = json.dumps(rows)
    assert "123456789" not in text and "52428800" not in text and "age_hours" not in text
    assert "changed=0" in run_report(tmp_path, HOSTVARS).splitlines()[-2]


def test_each_page_has_its_pdf_beside_it_unless_report_pdf_is_off(report, tmp_path):
    _html, _rows, _out, report_tmp = report
    names = sorted(p.name for p in (report_tmp / "out").iterdir())
    pages = [n for n in names if n.startswith("relatorio-") and n.endswith(".html")]
    assert pages and [n for n in names if n.endswith(".pdf")] == [n.removesuffix(".html") + ".pdf" for n in pages]
    run_report(tmp_path, HOSTVARS, "-e", "report_pdf=false")
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert written == [n for n in names if not n.endswith(".pdf")]


def test_the_history_of_the_day_is_kept_beside_the_pages_or_the_published_ones(report, tmp_path):
    _html, _rows, _out, report_tmp = report
    (kept,) = (report_tmp / "out" / "historico" / "regiao_norte").iterdir()
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}\.json\.gz", kept.name)
    assert not (report_tmp / "out" / "historico" / "regiao_sul").exists(), "a region with no UBS has no history"
    run_report(tmp_path, HOSTVARS, "-e", f"report_publish_dir={tmp_path / 'publicado'}/")
    assert list((tmp_path / "publicado" / "historico" / "regiao_norte").iterdir())
    assert not (tmp_path / "out" / "historico").exists()


def test_the_pages_of_each_ubs_are_published_with_the_region_pages(tmp_path):
    published = tmp_path / "publicado"
    out = run_report(
        tmp_path, HOSTVARS, "-e", f"report_publish_dir={published}", "-e", "report_pdf=false", publish=True
    )
    region = published / "regiao_norte"
    (page,) = region.glob("relatorio-regiao_norte-*.html")
    (folder,) = region.glob("detalhe-*")
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        f"{kind}-{host}.html" for host in HOSTVARS for kind in ("ubs", "equipes")
    )
    assert all((region / link).is_file() for link in re.findall(r'href="(detalhe-[^"#]+)', page.read_text()))
    assert {oct(p.stat().st_mode & 0o777) for p in folder.iterdir()} == {"0o644"}
    assert oct(folder.stat().st_mode & 0o777) == "0o755"
    assert (region / "index.html").is_file() and (published / "historico" / "regiao_norte").is_dir()
    again = run_report(
        tmp_path, HOSTVARS, "-e", f"report_publish_dir={published}", "-e", "report_pdf=false", publish=True
    )
    assert "changed=0" in again.splitlines()[-2], again
    assert "Relatórios publicados em" in out


def test_a_replaced_template_changes_the_wording_and_a_broken_one_fails_saying_where(tmp_path):
    mine = tmp_path / "modelos"
    mine.mkdir()
    (mine / "regiao.html.j2").write_text(
        '{% extends "base.html.j2" %}{% block body %}<h1>Painel da {{ region.label }}</h1>'
        "{% for r in rows %}<p>{{ r.ubs }}</p>{% endfor %}{% endblock %}\n"
    )
    run_report(tmp_path, HOSTVARS, "-e", f"report_templates_dir={mine}", "-e", "report_pdf=false")
    html, _rows = read_report(tmp_path)
    assert "<h1>Painel da Região Norte</h1>" in html and "<p>UBS 1 Teste</p>" in html
    (ubs_page,) = (tmp_path / "out").glob("detalhe-*/ubs-ubs-ok.html")
    assert "Situação por assunto" in ubs_page.read_text(encoding="utf-8"), "the other templates are the role's"
    (mine / "regiao.html.j2").write_text("{% extends 'base.html.j2' %}{% block body %}{{ nao_existe }}{% endblock %}")
    out = run_report(tmp_path, HOSTVARS, "-e", f"report_templates_dir={mine}", "-e", "report_pdf=false", ok=False)
    assert "a report template does not render (regiao.html.j2, line 1)" in out and "'nao_existe' is undefined" in out


def test_check_mode_writes_nothing(tmp_path):
    out = run_report(tmp_path, HOSTVARS, "--check")
    assert "changed=1" in out and not (tmp_path / "out").exists()


def test_report_yml_writes_the_pages_when_reading_every_ubs_fails(tmp_path):
    """playbooks/report.yml over UBS whose reading fails (here pec_info refuses its arguments; on a server, a state
    file it could not read): each row says its state was not read, never "inacessível", and the pages are written
    although every host of the reading play failed."""
    inventory = {
        "all": {
            "children": {
                "ubs": {
                    "children": {"regiao_norte": {"hosts": {"ubs-a": {}, "ubs-b": {"sesdf_esus_ubs_name": "UBS B"}}}},
                    "vars": {
                        "ansible_connection": "local",
                        "ansible_become": False,
                        "ansible_python_interpreter": sys.executable,
                        "sesdf_esus_pec_schema_trust": "qualquer",
                    },
                }
            }
        }
    }
    (tmp_path / "inventory.json").write_text(json.dumps(inventory))
    env = dict(
        os.environ,
        ANSIBLE_COLLECTIONS_PATH=os.path.join(REPO, "build", "collections"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_LOCALHOST_WARNING="0",
    )
    proc = subprocess.run(
        [
            os.path.join(os.path.dirname(sys.executable), "ansible-playbook"),
            "-i",
            str(tmp_path / "inventory.json"),
            os.path.join(REPO, "playbooks", "report.yml"),
            "-e",
            f"report_dir={tmp_path / 'out'}",
        ],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    html, rows = read_report(tmp_path)
    for name in ("ubs-a", "ubs-b"):
        row = rows[name]
        assert row["reachable"] is True and row["role_label"] == "estado não lido"
        assert [p["code"] for p in row["pendencias"]] == ["leitura_falhou"] and row["due"]
        assert "schema_trust" in row["pendencias"][0]["msg"]
        assert f'<tr data-host="{name}">' in html
    assert "o servidor não respondeu ao Ansible" not in html
