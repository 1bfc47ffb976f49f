"""Shared fixtures for the unit tests: a real, throw-away PostgreSQL server (``pg_server``) and, on it, a fresh
database with the PEC test double's 4.2.8 schema and a synthetic UBS (``pec_db``), or the same UBS on the double's
schema of a later version (``pec_double``)."""

from __future__ import annotations

import glob
import json
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid

import pytest

from ansible_collections.sesdf.esus.plugins.module_utils.pec_db import PgClient

SCHEMA = os.path.join(os.path.dirname(__file__), "..", "pec_double", "sql", "baseline-4.2.8.sql")
MIGRATIONS = os.path.join(os.path.dirname(SCHEMA), "migrations")

# Synthetic UBS: 4 professionals (one with two lotações, one with two profiles on a lotação), the installer's
# general administrator, a municipal administrator who also has a lotação, and a break-glass general administrator.
SEED = """
INSERT INTO tb_unidade_saude (nu_cnes, no_unidade_saude, co_ibge_municipio) VALUES ('0010001', 'UBS Teste', '530010'),
  ('0010002', 'UBS Vizinha', '530010');
CREATE FUNCTION pg_temp.prof(cpf text, nome text) RETURNS bigint LANGUAGE sql AS $f$
  WITH u AS (INSERT INTO tb_usuario (ds_login, ds_senha) VALUES (cpf, '!x') RETURNING co_seq_usuario)
  INSERT INTO tb_prof (co_usuario, no_profissional, nu_cpf)
  SELECT co_seq_usuario, nome, cpf FROM u RETURNING co_seq_prof $f$;
CREATE FUNCTION pg_temp.papel(prof bigint, tp text) RETURNS bigint LANGUAGE sql AS $f$
  INSERT INTO tb_ator_papel (co_prof, tp_ator_papel) VALUES (prof, tp) RETURNING co_seq_ator_papel $f$;
CREATE FUNCTION pg_temp.lot(prof bigint, cbo text, cnes text, perfis text[]) RETURNS bigint LANGUAGE plpgsql AS $f$
DECLARE ap bigint := pg_temp.papel(prof, 'LOTACAO');
BEGIN
  INSERT INTO tb_lotacao (co_ator_papel, co_cbo, co_unidade_saude)
  SELECT ap, b.co_cbo, u.co_seq_unidade_saude FROM tb_cbo b, tb_unidade_saude u
  WHERE b.co_cbo_2002 = cbo AND u.nu_cnes = cnes;
  INSERT INTO rl_ator_papel_perfil SELECT ap, co_seq_perfil FROM tb_perfil WHERE no_perfil = ANY (perfis);
  RETURN ap;
END $f$;
SELECT pg_temp.lot(pg_temp.prof('11111111111', 'Médica Sintética'), '225142', '0010001', ARRAY['Médico']);
SELECT pg_temp.lot(pg_temp.prof('22222222222', 'Enfermeiro Sintético'), '223565', '0010001',
                   ARRAY['Enfermeiro', 'Digitador']);
DO $$ DECLARE p bigint := pg_temp.prof('33333333333', 'ACS Sintética'); BEGIN
  PERFORM pg_temp.lot(p, '515105', '0010001', ARRAY['Agente comunitário de saúde']);
  PERFORM pg_temp.lot(p, '515105', '0010002', ARRAY['Agente comunitário de saúde']);
END $$;
SELECT pg_temp.lot(pg_temp.prof('44444444444', 'Recepção Sintética'), '422110', '0010001', ARRAY[]::text[]);
DO $$ DECLARE p bigint := pg_temp.prof('00000000191', 'Administrador da Instalação'); a bigint; BEGIN
  a := pg_temp.papel(p, 'ADMINISTRADOR_GERAL');
  INSERT INTO tb_adm_geral VALUES (a);
  INSERT INTO rl_ator_papel_perfil SELECT a, co_seq_perfil FROM tb_perfil WHERE tp_perfil = 'ADMINISTRADOR_GERAL';
END $$;
DO $$ DECLARE p bigint := pg_temp.prof('55555555555', 'Gerente Sintética'); a bigint; BEGIN
  a := pg_temp.papel(p, 'ADMINISTRADOR_MUNICIPAL');
  INSERT INTO tb_adm_municipal VALUES (a, '530010');
  INSERT INTO rl_ator_papel_perfil SELECT a, co_seq_perfil FROM tb_perfil WHERE tp_perfil = 'ADMINISTRADOR_MUNICIPAL';
  PERFORM pg_temp.lot(p, '131210', '0010001', ARRAY['Coordenador da unidade de saúde']);
END $$;
DO $$ DECLARE p bigint := pg_temp.prof('00000000272', 'Acesso de Emergência NTINF'); a bigint; BEGIN
  a := pg_temp.papel(p, 'ADMINISTRADOR_GERAL');
  INSERT INTO tb_adm_geral VALUES (a);
  INSERT INTO rl_ator_papel_perfil SELECT a, co_seq_perfil FROM tb_perfil WHERE tp_perfil = 'ADMINISTRADOR_GERAL';
  PERFORM pg_temp.lot(p, '225125', '0010001', ARRAY['Médico']);
END $$;
INSERT INTO tb_cidadao (no_cidadao) SELECT 'Paciente Sintético ' || g FROM generate_series(1, 20) g;
"""


def _pg_bin():
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    return found[0] if found else None


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def pg_server():
    """A PostgreSQL cluster on 127.0.0.1 with password (scram) auth, run as the postgres system user.

    Yields a dict: bin_dir, host, port, user, password, name, superuser connection for the tests.
    """
    bin_dir = _pg_bin()
    if bin_dir is None:
        pytest.fail("PostgreSQL server binaries not found under /usr/lib/postgresql: run `make deps`")
    try:
        pg_user = pwd.getpwnam("postgres")
    except KeyError:
        pytest.fail("system user postgres missing: run `make deps` (installs postgresql-15)")
    base = tempfile.mkdtemp(prefix="sesdf-esus-pgtest-")
    os.chmod(base, 0o755)
    data = os.path.join(base, "data")
    pwfile = os.path.join(base, "pw")
    password = "unit-test-superuser-pw"
    with open(pwfile, "w") as handle:
        handle.write(password + "\n")
    os.chown(base, pg_user.pw_uid, pg_user.pw_gid)
    os.chown(pwfile, pg_user.pw_uid, pg_user.pw_gid)
    as_pg = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    subprocess.run(
        [
            *as_pg,
            f"{bin_dir}/initdb",
            "-D",
            data,
            "-U",
            "postgres",
            "--auth=scram-sha-256",
            f"--pwfile={pwfile}",
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
        ],
        check=True,
        capture_output=True,
    )
    os.unlink(pwfile)
    port = _free_port()
    log = os.path.join(base, "server.log")
    subprocess.run(
        [
            *as_pg,
            f"{bin_dir}/pg_ctl",
            "-D",
            data,
            "-l",
            log,
            "-w",
            "-o",
            f"-p {port} -c listen_addresses=127.0.0.1 -k {base}",
            "start",
        ],
        check=True,
        capture_output=True,
    )
    server = {
        "bin_dir": bin_dir,
        "host": "127.0.0.1",
        "port": port,
        "user": "postgres",
        "password": password,
        "name": "postgres",
        "data": data,
        "base": base,
    }
    try:
        deadline = time.time() + 30
        while time.time() < deadline:
            if (
                subprocess.run(
                    [f"{bin_dir}/pg_isready", "-h", "127.0.0.1", "-p", str(port)], capture_output=True, check=False
                ).returncode
                == 0
            ):
                break
            time.sleep(0.2)
        yield server
    finally:
        subprocess.run(
            [*as_pg, f"{bin_dir}/pg_ctl", "-D", data, "-m", "immediate", "stop"], capture_output=True, check=False
        )
        shutil.rmtree(base, ignore_errors=True)


def _conn(server, name):
    return {
        "host": server["host"],
        "port": server["port"],
        "user": server["user"],
        "password": server["password"],
        "name": name,
    }


def _create_pec_db(server):
    if not os.path.exists(SCHEMA):
        pytest.fail(f"PEC double schema missing at {SCHEMA}: the test double (tests/pec_double) is required")
    name = "pec_" + uuid.uuid4().hex[:10]
    with PgClient(server["bin_dir"], _conn(server, "postgres")) as admin:
        admin.query(f"CREATE DATABASE {name}")
    with open(SCHEMA, encoding="utf-8") as handle:
        schema = handle.read()
    with PgClient(server["bin_dir"], _conn(server, name)) as client:
        client.query(schema)
        client.query(SEED)
    return _conn(server, name)


def _drop_pec_db(server, conn):
    with PgClient(server["bin_dir"], _conn(server, "postgres")) as admin:
        admin.query(f"DROP DATABASE IF EXISTS {conn['name']} WITH (FORCE)")


@pytest.fixture
def pec_db(pg_server):
    """A fresh database with the double's 4.2.8 schema and the synthetic UBS above."""
    conn = _create_pec_db(pg_server)
    yield conn
    _drop_pec_db(pg_server, conn)


def _version_key(version):
    return tuple(int(part) for part in version.split("."))


class PecDouble:
    """Databases of the double at a given version: the 4.2.8 baseline and the synthetic UBS above, then every
    migration of tests/pec_double/sql/migrations up to that version, each in its own transaction with
    VERSAOBANCODADOS set inside it (as the double's installer updates a server in use)."""

    def __init__(self, server):
        self.server = server
        self.made = []

    def versions(self):
        return sorted((f[: -len(".sql")] for f in os.listdir(MIGRATIONS) if f.endswith(".sql")), key=_version_key)

    def create(self, version="4.2.8"):
        conn = _create_pec_db(self.server)
        self.made.append(conn)
        self.migrate(conn, version)
        return conn

    def migrate(self, conn, version):
        """Apply the migrations newer than the database's VERSAOBANCODADOS, up to ``version``."""
        with PgClient(self.server["bin_dir"], conn) as client:
            current = client.scalar(
                "SELECT ds_texto FROM tb_config_sistema WHERE co_config_sistema = 'VERSAOBANCODADOS'"
            )
            for step in self.versions():
                if _version_key(current) < _version_key(step) <= _version_key(version):
                    with open(os.path.join(MIGRATIONS, f"{step}.sql"), encoding="utf-8") as handle:
                        sql = handle.read()
                    client.query(
                        f"BEGIN;\n{sql}\nUPDATE tb_config_sistema SET ds_texto = '{step}'"
                        " WHERE co_config_sistema = 'VERSAOBANCODADOS';\nCOMMIT;"
                    )


@pytest.fixture
def pec_double(pg_server):
    """``pec_double.create(version)`` -> connection of a fresh database with the synthetic UBS on the double's schema
    of ``version``; ``pec_double.migrate(conn, version)`` updates one. Every database is dropped afterwards."""
    double = PecDouble(pg_server)
    yield double
    for conn in double.made:
        _drop_pec_db(pg_server, conn)


MODULES = os.path.join(os.path.dirname(__file__), "..", "..", "plugins", "modules")


@pytest.fixture
def run_module(tmp_path, pg_server):
    """``run_module(name, conn, check=False, diff=False, **args) -> (proc, out)``: a module as Ansible runs it (an
    arguments file in, JSON out), connected to ``conn`` on the test server."""

    def run(name, conn, check=False, diff=False, **args):
        full = {
            "db_host": conn["host"],
            "db_port": conn["port"],
            "db_name": conn["name"],
            "db_user": conn["user"],
            "db_password": conn["password"],
            "pg_bin_dir": pg_server["bin_dir"],
            "_ansible_check_mode": check,
            "_ansible_diff": diff,
            **args,
        }
        path = tmp_path / f"{name}-args.json"
        path.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": full}))
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
        module = os.path.join(MODULES, f"{name}.py")
        proc = subprocess.run([sys.executable, module, str(path)], capture_output=True, text=True, env=env, check=False)
        return proc, json.loads(proc.stdout)

    return run
