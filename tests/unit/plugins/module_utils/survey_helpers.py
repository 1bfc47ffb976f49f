"""Shared by the survey and capability tests: a PEC's tree on disk around a test database, the survey's options, a
PEC-like HTTP answer, and the real servers' transmission shape (docs/pec-facts.md, third review) over the double's
schema."""

from __future__ import annotations

import json
import os

from ansible_collections.sesdf.esus.plugins.module_utils.pec_survey import argument_spec

CANARY = "Canary-Survey-9d41c7e2"
PG_DIR = os.path.join("database", "postgresql-9.6.13-1-linux-x64", "bin")

# The strict double's tb_config_sistema (real columns, no invented key) and the per-node transmission of real
# servers: no tb_situacao_lote_transp; tb_nodo, tb_lote_transp_nodo, tb_situacao_lote_transp_nodo and the others.
STRICT_SHAPE = """
ALTER TABLE tb_config_sistema ADD COLUMN ds_config_sistema varchar(255), ADD COLUMN ds_inteiro integer;
DELETE FROM tb_config_sistema WHERE co_config_sistema IN
  ('TRANSMISSAO_AUTOMATICA', 'HORARIO_TRANSMISSAO', 'ATUALIZAR_PERFIS_IMPORTACAO_CNES');
UPDATE tb_config_sistema SET ds_texto = 'PRONTUARIO' WHERE co_config_sistema = 'TIPOINSTALACAO';
UPDATE tb_config_sistema SET ds_inteiro = 0, ds_texto = NULL WHERE co_config_sistema = 'TREINAMENTO';
INSERT INTO tb_config_sistema (co_config_sistema, ds_texto) VALUES
  ('LINKINSTALACAO', 'http://localhost:8080'), ('NOMEINSTALACAO', 'Instalação de teste');
UPDATE tb_config_sistema SET ds_texto = '4.5.2' WHERE co_config_sistema = 'VERSAOBANCODADOS';
DROP TABLE tb_situacao_lote_transp CASCADE;
CREATE TABLE tb_nodo (
  co_seq_nodo bigserial PRIMARY KEY, no_nodo varchar(255) NOT NULL, co_tipo_nodo integer NOT NULL,
  ds_url varchar(255), ds_token varchar(255), st_ativo integer NOT NULL DEFAULT 1);
CREATE TABLE tb_situacao_lote_transp_nodo (co_situacao_lote_transp_nodo integer PRIMARY KEY, no_situacao varchar(60));
CREATE TABLE tb_lote_transp_nodo (
  co_seq_lote_transp_nodo bigserial PRIMARY KEY,
  co_lote_transp bigint NOT NULL REFERENCES tb_lote_transp (co_seq_lote_transp),
  co_nodo bigint NOT NULL REFERENCES tb_nodo (co_seq_nodo),
  co_situacao_lote_transp_nodo integer REFERENCES tb_situacao_lote_transp_nodo (co_situacao_lote_transp_nodo),
  dt_envio timestamp);
CREATE TABLE tb_lote_transp_item (
  co_seq_lote_transp_item bigserial PRIMARY KEY,
  co_lote_transp bigint NOT NULL REFERENCES tb_lote_transp (co_seq_lote_transp),
  co_dado_transp bigint NOT NULL REFERENCES tb_dado_transp (co_seq_dado_transp));
CREATE TABLE tb_lote_transp_item_nodo (
  co_lote_transp_item bigint REFERENCES tb_lote_transp_item (co_seq_lote_transp_item),
  co_nodo bigint REFERENCES tb_nodo (co_seq_nodo), PRIMARY KEY (co_lote_transp_item, co_nodo));
CREATE TABLE tb_lote_transp_historico_exprt (
  co_seq_historico bigserial PRIMARY KEY, co_lote_transp bigint REFERENCES tb_lote_transp (co_seq_lote_transp),
  co_usuario bigint REFERENCES tb_usuario (co_seq_usuario), dt_exportacao timestamp NOT NULL);
CREATE TABLE tb_envio_log (co_seq_envio_log bigserial PRIMARY KEY, dt_envio timestamp, ds_mensagem text);
CREATE TABLE tb_arquivo_temporario (co_seq_arquivo_temporario bigserial PRIMARY KEY, ds_arquivo bytea);
INSERT INTO tb_nodo (no_nodo, co_tipo_nodo, ds_url, ds_token) VALUES
  ('Centralizador Nacional', 1, 'https://centralizador.example', 'token-do-teste'),
  ('Centralizadora Municipal', 2, 'https://municipio.example', 'token-do-teste');
INSERT INTO tb_situacao_lote_transp_nodo VALUES (1, 'PENDENTE'), (2, 'ENVIADO'), (3, 'ERRO');
"""


def make_tree(root, conn, bin_dir, db_password=None, config_password=None, credentials_password=None, version=None):
    """A PEC's tree under ``root`` whose application.properties points at ``conn`` (with ``db_password``, by default
    the working one), its client tools a link to the test server's, and /etc/pec.config at ``root``/pec.config."""
    config = root / "webserver" / "config"
    config.mkdir(parents=True)
    url = f"jdbc:postgresql://{conn['host']}:{conn['port']}/{conn['name']}"
    password = conn["password"] if db_password is None else db_password
    (config / "application.properties").write_text(
        f"spring.datasource.url={url}\nspring.datasource.username={conn['user']}\n"
        f"spring.datasource.password={password}\nserver.port=8080\n"
    )
    secret = credentials_password or "credenciais-pw"
    (config / "credenciais.txt").write_text(
        f"Url de conexão: {url}\nUsuário: {conn['user']}\nSenha: {secret}\nUsuário: esus_leitura\nSenha: {secret}\n"
    )
    pg = root / PG_DIR
    pg.parent.mkdir(parents=True)
    pg.symlink_to(bin_dir)
    pec_config = {"success": True, "version": version or "4.5.2", "jreDirectory": str(root / "jre" / "current")}
    if config_password:
        pec_config.update(databaseUrl=url, databasePassword=config_password)
    (root / "pec.config").write_text(json.dumps(pec_config))
    return root


def survey_params(root, **over):
    """The module's defaults, with the paths of a tree made by :func:`make_tree`."""
    params = {name: spec.get("default") for name, spec in argument_spec().items()}
    params.update(
        pec_root=str(root),
        pec_config_path=str(root / "pec.config"),
        facts_dir=str(root / "facts"),
        http_url="http://127.0.0.1:8080",
        http_timeout=1,
        db_timeout=30,
    )
    params.update(over)
    return params


def pec_http(versao="4.5.2", extra=None):
    """An HTTP probe that answers like a real 5.x PEC: / 200, /esus/ 401, the info endpoint's JSON (with fields
    beside ``versao``), GraphQL 400 to a GET, anything else 404."""
    info = json.dumps({"versao": versao, **(extra or {})}).encode()
    routes = {
        "/": (200, "text/html;charset=UTF-8", b"<html>PEC</html>"),
        "/esus/": (401, None, b""),
        "/api/public/info": (200, "application/json", info),
        "/api/graphql": (400, "application/json", b'{"errors": []}'),
    }

    def get(url, _timeout, read_body=False):
        path = "/" + url.split("/", 3)[3]
        status, content_type, body = routes.get(path, (404, "application/json", b"{}"))
        return status, content_type, body if read_body else b""

    return get
