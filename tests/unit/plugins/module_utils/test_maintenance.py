# Copyright: (c) 2026, SES-DF NTINF
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""module_utils maintenance: the sesdf-esus-manutencao program the hardening role installs on the servers."""

from __future__ import annotations

import json
import os
import stat

import pytest

from ansible_collections.sesdf.esus.plugins.module_utils import maintenance


def _pec_root(tmp_path, url, user="postgres", password="s3cr:et#pw", bin_dir=None):  # noqa: S107
    root = tmp_path / "e-SUS"
    config = root / "webserver" / "config"
    config.mkdir(parents=True)
    (config / "application.properties").write_text(
        f"spring.datasource.url={url}\nspring.datasource.username={user}\nspring.datasource.password={password}\n"
    )
    if bin_dir:
        (root / "database" / "postgresql-9.6.13-1-linux-x64").mkdir(parents=True)
        os.symlink(bin_dir, root / "database" / "postgresql-9.6.13-1-linux-x64" / "bin")
    return root


def _cfg(tmp_path, root, **over):
    cfg = {
        "disk_paths": [str(tmp_path), str(tmp_path / "absent")],
        "disk_warn_percent": 101,
        "disk_crit_percent": 102,
        "pec_root": str(root),
        "pec_log": str(root / "webserver" / "logs" / "pec.log"),
        "properties": str(root / "webserver" / "config" / "application.properties"),
        "db_name": "esus",
        "logrotate_config": str(tmp_path / "logrotate.conf"),
        "logrotate_state": str(tmp_path / "logrotate.state"),
        "vacuum": True,
        "vacuum_hour_start": 0,
        "vacuum_hour_end": 24,
        "security_updates": False,
        "status_file": str(tmp_path / "state" / "manutencao-status.json"),
    }
    cfg.update(over)
    return cfg


@pytest.mark.parametrize(
    "url, expected",
    [
        ("jdbc:postgresql://localhost:5433/esus", ("localhost", 5433, "esus")),
        ("jdbc:postgresql://[::1]:5433/esus", ("::1", 5433, "esus")),
        ("jdbc:postgresql://[fe80::1]:5433/esus?ssl=false", ("fe80::1", 5433, "esus")),
    ],
)
def test_connection_read_from_the_install_ipv6_too(tmp_path, url, expected):
    root = _pec_root(tmp_path, url)
    conn = maintenance.pec_install(_cfg(tmp_path, root, db_name="")).connection()
    assert (conn["host"], conn["port"], conn["name"]) == expected
    assert conn["user"] == "postgres" and conn["password"] == "s3cr:et#pw"


def test_db_name_of_the_config_wins_over_the_url(tmp_path):
    root = _pec_root(tmp_path, "jdbc:postgresql://[::1]:5433/other")
    assert maintenance.pec_install(_cfg(tmp_path, root)).connection()["name"] == "esus"


@pytest.mark.nt("NT-inapta-3")
def test_vacuum_runs_with_the_pec_psql_and_a_private_password_file(tmp_path, pg_server):
    url = f"jdbc:postgresql://{pg_server['host']}:{pg_server['port']}/postgres"
    root = _pec_root(tmp_path, url, password=pg_server["password"], bin_dir=pg_server["bin_dir"])
    result = maintenance.step_vacuum(_cfg(tmp_path, root, db_name="postgres"), force=False)
    assert result["status"] == "ok", result
    assert "VACUUM ANALYZE do banco postgres" in result["detail"]


def test_vacuum_wrong_password_is_an_error_without_the_password(tmp_path, pg_server):
    url = f"jdbc:postgresql://{pg_server['host']}:{pg_server['port']}/postgres"
    root = _pec_root(tmp_path, url, password="not-the-password", bin_dir=pg_server["bin_dir"])
    result = maintenance.step_vacuum(_cfg(tmp_path, root, db_name="postgres"), force=False)
    assert result["status"] == "erro" and result["detail"].startswith("VACUUM ANALYZE falhou: ")
    assert "not-the-password" not in result["detail"]


def test_vacuum_outside_the_window_is_postponed_unless_forced(tmp_path):
    root = _pec_root(tmp_path, "jdbc:postgresql://localhost:5433/esus")
    cfg = _cfg(tmp_path, root, vacuum_hour_start=0, vacuum_hour_end=0)
    assert maintenance.step_vacuum(cfg, force=False)["status"] == "adiado"
    # forced: runs, and without the PEC's psql it says where it looked
    result = maintenance.step_vacuum(cfg, force=True)
    assert result == {"status": "erro", "detail": f"psql do PEC não encontrado em {root}/database"}
    assert maintenance.step_vacuum(dict(cfg, vacuum=False), force=True) == {"status": "desabilitado"}


def test_disk_alarm_levels(tmp_path):
    root = _pec_root(tmp_path, "jdbc:postgresql://localhost:5433/esus")
    ok = maintenance.step_disk(_cfg(tmp_path, root))
    assert ok["status"] == "ok"
    assert [p["status"] for p in ok["paths"]] == ["ok", "ausente"]
    crit = maintenance.step_disk(_cfg(tmp_path, root, disk_warn_percent=0, disk_crit_percent=0))
    assert crit["status"] == "alarme" and crit["paths"][0]["status"] == "critico"


def test_pending_security_updates_from_an_apt_simulation():
    out = (
        "Inst libssl3 [3.0.11-1~deb12u1] (3.0.13-1~deb12u1 Debian-Security:12/stable-security [amd64])\n"
        "Inst tzdata [2024a-0+deb12u1] (2024b-0+deb12u1 Debian:12.7/stable [all])\n"
        "Conf libssl3 (3.0.13-1~deb12u1 Debian-Security:12/stable-security [amd64])\n"
    )
    assert maintenance.pending_security(out) == ["libssl3"]


@pytest.mark.parametrize(
    "states, result",
    [(["ok", "desabilitado"], "ok"), (["ok", "alarme"], "alarme"), (["alarme", "erro", "ok"], "erro")],
)
def test_overall_result(states, result):
    assert maintenance.overall_result({str(i): {"status": s} for i, s in enumerate(states)}) == result


def test_cli_writes_the_status_atomically_and_exits_by_result(tmp_path, monkeypatch, capsys):
    root = _pec_root(tmp_path, "jdbc:postgresql://localhost:5433/esus")
    cfg = _cfg(tmp_path, root, vacuum=False)
    config = tmp_path / "manutencao.json"
    config.write_text(json.dumps(cfg))
    monkeypatch.setattr(maintenance, "step_updates", lambda cfg: {"status": "desabilitado"})
    assert maintenance.cli_main(["--config", str(config)]) == 0
    assert json.loads(capsys.readouterr().out) == {
        "result": "ok",
        "disk": "ok",
        "logrotate": "ok",
        "vacuum": "desabilitado",
        "updates": "desabilitado",
    }
    status_file = tmp_path / "state" / "manutencao-status.json"
    status = json.loads(status_file.read_text())
    assert status["result"] == "ok" and status["started_at"] and status["finished_at"]
    assert stat.S_IMODE(os.stat(status_file).st_mode) == 0o644
    assert [p for p in os.listdir(status_file.parent) if p.startswith(".")] == []

    monkeypatch.setattr(maintenance, "step_disk", lambda cfg: {"status": "alarme"})
    assert maintenance.cli_main(["--config", str(config)]) == 3  # an alarm: the run worked, the unit shows failed
    capsys.readouterr()

    monkeypatch.setattr(maintenance, "step_logrotate", lambda cfg: 1 / 0)
    assert maintenance.cli_main(["--config", str(config)]) == 1
    status = json.loads(status_file.read_text())
    assert status["steps"]["logrotate"] == {"status": "erro", "detail": "ZeroDivisionError: division by zero"}
    assert status["steps"]["disk"]["status"] == "alarme"  # one step failing never stops the others


def test_cli_unreadable_config(tmp_path, capsys):
    assert maintenance.cli_main(["--config", str(tmp_path / "missing.json")]) == 2
    assert "rode de novo o papel sesdf.esus.hardening" in capsys.readouterr().err
