"""Shared by the backup tests: the source database's parameters and what a directory publishes."""

from __future__ import annotations

import os

from ansible_collections.sesdf.esus.plugins.module_utils.pec_db import PgClient

DB = "esus_unit"
CANARY = "Canary-Pw-7f3a91"


def params(server, dest, **over):
    p = {
        "pec_root": "/nonexistent",
        "pec_config_path": "/nonexistent/pec.config",
        "pg_bin_dir": server["bin_dir"],
        "db_host": server["host"],
        "db_port": server["port"],
        "db_name": server["name"],
        "db_user": "canary_user",
        "db_password": CANARY,
        "dest_dir": str(dest),
        "label": "unit",
        "verify_level": "full_read",
        "status_path": str(dest) + ".status.json",
    }
    p.update(over)
    return p


def job_config(server, dest, install_dir, **over):
    """The daily job's configuration for ``server``: as on a real server, no credential in it; the job reads them
    from a PEC install tree (``install_dir``) whose application.properties points at the database."""
    config_dir = os.path.join(str(install_dir), "webserver", "config")
    os.makedirs(config_dir, exist_ok=True)
    with open(os.path.join(config_dir, "application.properties"), "w", encoding="utf-8") as handle:
        handle.write(
            f"spring.datasource.url=jdbc:postgresql://{server['host']}:{server['port']}/{server['name']}\n"
            f"spring.datasource.username=canary_user\nspring.datasource.password={CANARY}\n"
        )
    p = {k: v for k, v in params(server, dest).items() if not k.startswith("db_")}
    # the collection's state the job copies beside each backup (collection_state): the test's own directories
    state = str(install_dir) + "-state"
    p.update(pec_root=str(install_dir), keep_daily=0, keep_weekly=0)
    p.update(state_dir=state + "/var-lib", config_dir=state + "/etc", facts_dir=state + "/facts.d")
    p.update(over)
    return p


def table_fingerprint(server, dbname):
    conn = {k: server[k] for k in ("host", "port", "user", "password")}
    with PgClient(server["bin_dir"], dict(conn, name=dbname)) as client:
        out = {}
        for table in ("tb_cidadao", "tb_atend", "tb_config_sistema"):
            out[table] = client.query(
                f"SELECT count(*), md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) FROM {table} t"  # noqa: S608 - fixed table names
            )[0]
        return out


def published(dest):
    return sorted(p for p in os.listdir(dest) if not p.startswith("."))
