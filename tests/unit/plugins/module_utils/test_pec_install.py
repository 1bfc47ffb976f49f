"""Parsing of a PEC install's files: application.properties, credenciais.txt, /etc/pec.config, JDBC URLs."""

from __future__ import annotations

import json
import os

import pytest

from ansible_collections.sesdf.esus.plugins.module_utils.pec_common import PecError, pec_argument_spec
from ansible_collections.sesdf.esus.plugins.module_utils.pec_install import (
    PecInstall,
    parse_credentials,
    parse_jdbc_url,
    parse_properties,
    read_pec_config,
)

PROPERTIES = r"""
# PEC e-SUS
spring.datasource.url=jdbc:postgresql://localhost:5433/esus
spring.datasource.username = postgres
spring.datasource.password:s3cr\=t\:pa\\ss
! bang comment
server.port 8080
long.value=first \
    second
unicode=S\u00e3o Paulo
"""


def test_properties_separators_escapes_and_continuations():
    props = parse_properties(PROPERTIES)
    assert props["spring.datasource.url"] == "jdbc:postgresql://localhost:5433/esus"
    assert props["spring.datasource.username"] == "postgres"
    assert props["spring.datasource.password"] == "s3cr=t:pa\\ss"
    assert props["server.port"] == "8080"
    assert props["long.value"] == "first second"
    assert props["unicode"] == "São Paulo"
    assert "! bang comment" not in props


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("jdbc:postgresql://localhost:5433/esus", ("localhost", 5433, "esus")),
        ("jdbc:postgresql://10.1.2.3/esus?ssl=false", ("10.1.2.3", 5432, "esus")),
        ("jdbc:postgresql://[::1]:5433/esus", ("::1", 5433, "esus")),
    ],
)
def test_jdbc_url(url, expected):
    parsed = parse_jdbc_url(url)
    assert (parsed["host"], parsed["port"], parsed["name"]) == expected


@pytest.mark.parametrize("url", ["", "postgresql://localhost/esus", "jdbc:mysql://h/db", None])
def test_jdbc_url_rejects_other_urls_with_a_hint(url):
    with pytest.raises(PecError, match="spring.datasource.url"):
        parse_jdbc_url(url)


def test_credentials_blocks_in_order():
    text = (
        "Url de conexão: jdbc:postgresql://localhost:5433/esus\n\n"
        "Usuário com acesso total\nUsuário: postgres\nSenha: abc:def\n\n"
        "Usuário somente leitura\nUsuário: esus_leitura\nSenha: xyz\n"
    )
    creds = parse_credentials(text)
    assert creds["url"] == "jdbc:postgresql://localhost:5433/esus"
    assert creds["users"] == [
        {"user": "postgres", "password": "abc:def"},
        {"user": "esus_leitura", "password": "xyz"},
    ]


def test_pec_config_corrupt_json_says_what_to_do(tmp_path):
    path = tmp_path / "pec.config"
    path.write_text('{"version": "4.2.8"')
    with pytest.raises(PecError, match="not valid JSON.*rerun the installer"):
        read_pec_config(str(path))


def test_pec_config_missing(tmp_path):
    with pytest.raises(PecError, match="not found"):
        read_pec_config(str(tmp_path / "absent"))


def _install(tmp_path, properties=None, credentials=None, config=None):
    root = tmp_path / "opt" / "e-SUS"
    cfg_dir = root / "webserver" / "config"
    cfg_dir.mkdir(parents=True)
    bin_dir = root / "database" / "postgresql-9.6.13-1-linux-x64" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "psql").write_text("")
    if properties is not None:
        (cfg_dir / "application.properties").write_text(properties)
    if credentials is not None:
        (cfg_dir / "credenciais.txt").write_text(credentials)
    config_path = tmp_path / "pec.config"
    if config is not None:
        config_path.write_text(json.dumps(config))
    params = {k: v.get("default") for k, v in pec_argument_spec().items()}
    params.update(pec_root=str(root), pec_config_path=str(config_path))
    return PecInstall(params), str(bin_dir)


def test_install_connection_from_properties(tmp_path):
    install, bin_dir = _install(tmp_path, properties=PROPERTIES, config={"version": "4.2.8"})
    assert install.present
    conn = install.connection()
    assert conn == {"host": "localhost", "port": 5433, "name": "esus", "user": "postgres", "password": "s3cr=t:pa\\ss"}
    assert install.pg_bin_dir() == bin_dir
    assert install.config()["version"] == "4.2.8"


def test_install_connection_falls_back_to_credenciais(tmp_path):
    creds = "Url de conexão: jdbc:postgresql://127.0.0.1:5433/esus\nUsuário: postgres\nSenha: fromcreds\n"
    install, _bin = _install(tmp_path, properties="server.port=8080\n", credentials=creds)
    conn = install.connection()
    assert (conn["host"], conn["port"], conn["user"], conn["password"]) == ("127.0.0.1", 5433, "postgres", "fromcreds")


def test_install_options_override_files(tmp_path):
    install, _bin = _install(tmp_path, properties=PROPERTIES)
    install.params.update(db_port=6543, db_user="other", db_password="given")
    conn = install.connection()
    assert (conn["port"], conn["user"], conn["password"]) == (6543, "other", "given")


def test_install_unreadable_credentials_is_a_clear_error(tmp_path):
    install, _bin = _install(tmp_path)
    with pytest.raises(PecError, match="credentials unreadable.*db_user/db_password"):
        install.connection()


def test_no_install(tmp_path):
    params = {k: v.get("default") for k, v in pec_argument_spec().items()}
    params.update(pec_root=str(tmp_path / "none"), pec_config_path=str(tmp_path / "none.config"))
    assert not PecInstall(params).present


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_permission_denied_hints_become(tmp_path):
    install, _bin = _install(tmp_path, properties=PROPERTIES)
    os.chmod(install.properties_path, 0)
    with pytest.raises(PecError, match="become"):
        install.properties()
