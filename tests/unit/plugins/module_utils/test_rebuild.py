"""rebuild: a lost server's database and the collection's state brought back on a new one from its off-host copy
alone (a real borg repository on a directory, real PostgreSQL): every table's ordered rows equal to the last
backup's, the ledger where it was, the newest archive passed over when it cannot be read whole, and the bad input
refused before anything changes (a wrong passphrase, another UBS's repository, a target whose PEC holds data)."""

from __future__ import annotations

import datetime
import json
import os
import shutil
import subprocess

import pytest
from backup_helpers import CANARY
from test_borg import PASS, escrow_record

from ansible_collections.sesdf.esus.plugins.module_utils import manual_steps
from ansible_collections.sesdf.esus.plugins.module_utils import pec_backup as pb
from ansible_collections.sesdf.esus.plugins.module_utils import pec_offhost as poff
from ansible_collections.sesdf.esus.plugins.module_utils import rebuild as rb
from ansible_collections.sesdf.esus.plugins.module_utils.pec_common import PecError
from ansible_collections.sesdf.esus.plugins.module_utils.pec_compat import Probe
from ansible_collections.sesdf.esus.plugins.module_utils.pec_db import PgClient
from ansible_collections.sesdf.esus.plugins.module_utils.pec_install import PecInstall

HAVE_BORG = shutil.which("borg") is not None
OLD, NEW = "esusantigo", "esusnovo"  # one word: the daily job names archives <db>_<label>_<UTC>
CNES = "0020002"
TABLES = ("tb_cidadao", "tb_dado_transp", "tb_lote_transp", "tb_config_sistema", '"Tabela Citada"')
LEDGER = {"format": 1, "files": {"ab" * 32: {"file": "RAS_Lote1_01-01-2026--00-00.zip", "confirmed_at": "x"}}}
needs_borg = pytest.mark.skipif(not HAVE_BORG, reason="borg not installed on this machine")


def conn_of(pg_server, name):
    return {
        "host": pg_server["host"],
        "port": pg_server["port"],
        "name": name,
        "user": "postgres",
        "password": pg_server["password"],
    }


def client_of(pg_server, name="postgres"):
    return PgClient(pg_server["bin_dir"], conn_of(pg_server, name))


@pytest.fixture
def old_db(pg_server, source):
    """The lost server's PEC database: production rows of every kind a dump writes (floats, time zones, bytea,
    NULLs, a quoted name), and the installation link of the old host."""
    with client_of(pg_server) as client:
        client.query(f"DROP DATABASE IF EXISTS {OLD}")
        client.query(f"CREATE DATABASE {OLD}")
    with client_of(pg_server, OLD) as client:
        client.query(
            "CREATE TABLE tb_config_sistema (co_config_sistema text PRIMARY KEY, ds_texto text);"
            "INSERT INTO tb_config_sistema VALUES ('VERSAOBANCODADOS', '5.5.28'),"
            " ('LINKINSTALACAO', 'http://10.1.2.3:8080/esus');"
            "CREATE TABLE tb_cidadao (co_seq_cidadao bigserial PRIMARY KEY, no_cidadao text, nu_peso double precision,"
            " dt_cadastro timestamptz, bin bytea, ds_obs text);"
            "CREATE TABLE tb_dado_transp (co_seq_dado_transp bigserial PRIMARY KEY, co_unico_dado_serializado text);"
            "CREATE TABLE tb_lote_transp (co_seq_lote_transp bigserial PRIMARY KEY, dt_criacao timestamp);"
            'CREATE TABLE "Tabela Citada" (id int, "Valor" numeric)'
        )
    add_day(pg_server, 0)
    yield dict(pg_server, name=OLD)
    with client_of(pg_server) as client:
        for name in (OLD, NEW, NEW + "_rebuild"):
            client.query(f"DROP DATABASE IF EXISTS {name}")


def add_day(pg_server, n):
    """One clinic day: new citizens, new records, a lote."""
    with client_of(pg_server, OLD) as client:
        client.query(
            "INSERT INTO tb_cidadao (no_cidadao, nu_peso, dt_cadastro, bin, ds_obs) SELECT 'Cidadão ' || g,"  # noqa: S608
            f" g / 7.0, timestamptz '2026-01-01 10:00-03' + interval '1 day' * {n}, decode(md5(g::text), 'hex'),"
            f" CASE WHEN g % 5 = 0 THEN NULL ELSE E'linha\\\\ com\\ttab' END FROM generate_series({n * 300 + 1},"
            f" {n * 300 + 300}) g;"
            f"INSERT INTO tb_dado_transp (co_unico_dado_serializado) SELECT md5('{n}-' || g)"
            " FROM generate_series(1, 50) g;"
            "INSERT INTO tb_lote_transp (dt_criacao) VALUES (now());"
            f'INSERT INTO "Tabela Citada" VALUES ({n}, {n}.5)'
        )


def fingerprint(pg_server, name):
    with client_of(pg_server, name) as client:
        return {
            t: client.query(
                f"SELECT count(*), md5(coalesce(string_agg(x::text, '|' ORDER BY x::text), '')) FROM {t} x"  # noqa: S608
            )[0]
            for t in TABLES
        }


def old_server(tmp_path):
    """The lost server's state: the ledger, a lote in the inbox, a job configuration, a record."""
    root = tmp_path / "old"
    files = {
        root / "var-lib" / "lotes" / "ledger.json": json.dumps(LEDGER),
        root / "var-lib" / "lotes" / "entrada" / "RAS_Lote2.zip": "lote",
        root / "etc" / "backup.json": "{}",
        root / "facts.d" / "sesdf_esus_upgrade.fact": json.dumps({"concern": "upgrade", "data": {"last": {}}}),
        root / "facts.d" / "sesdf_esus_backup.fact": json.dumps({"path": "/var/backups/esus/gone.pgdump.zst"}),
    }
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return {"state_dir": str(root / "var-lib"), "config_dir": str(root / "etc"), "facts_dir": str(root / "facts.d")}


def day(n):
    return datetime.datetime(2026, 1, 1, 2, 30, tzinfo=datetime.UTC) + datetime.timedelta(days=n)


def daily_job(old_db, tmp_path, **over):
    """The old server's daily job: a borg repository on a 'share', the state copy beside each dump."""
    secret = tmp_path / "old-borg.passphrase"
    if not secret.exists():
        secret.write_text(PASS + "\n")
    p = {
        "pg_bin_dir": old_db["bin_dir"],
        "pec_root": "/nonexistent",
        "pec_config_path": "/nonexistent/pec.config",
        "db_host": old_db["host"],
        "db_port": old_db["port"],
        "db_name": OLD,
        "db_user": "canary_user",
        "db_password": CANARY,
        "dest_dir": str(tmp_path / "old-backups"),
        "label": "diario",
        "status_path": str(tmp_path / "old-status.json"),
        "cnes": CNES,
        "manifest_row_counts": True,
        "offhost_enabled": True,
        "offhost_method": "borg_mount",
        "offhost_dest": str(tmp_path / "share" / "repo"),
        "offhost_require_mount": False,
        "borg_passphrase_file": str(secret),
        "borg_base_dir": str(tmp_path / "old-borgbase"),
        "borg_state_path": os.path.join(old_server(tmp_path)["state_dir"], "borg-repo.json"),
        "borg_key_export": str(tmp_path / "old-borg.key"),
        "borg_escrow_path": escrow_record(tmp_path, secret),
        "borg_drill_every_days": 0,
        "borg_check_every_days": 0,
        "state_copy": True,
        **old_server(tmp_path),
    }
    p.update(over)
    return p


def new_server(tmp_path, **over):
    """What the rebuild knows on the new server: the vault's passphrase in its own file, fresh directories."""
    secret = tmp_path / "new" / "borg.passphrase"
    secret.parent.mkdir(exist_ok=True)
    secret.write_text(PASS + "\n")
    p = {
        "cnes": CNES,
        "label": "diario",
        "work_dir": str(tmp_path / "new" / "work"),
        "zstd": "zstd",
        "offhost_method": "borg_mount",
        "offhost_dest": str(tmp_path / "share" / "repo"),
        "borg_passphrase_file": str(secret),
        "borg_base_dir": str(tmp_path / "new" / "borgbase"),
    }
    p.update(over)
    return p


def fetch(p):
    return rb.fetch_borg(p, poff.borg_repo(p), poff.borg_prefix(p))


def fresh_install_db(pg_server):
    """The new server's PEC database as a fresh install leaves it: the baseline, no production."""
    with client_of(pg_server) as client:
        client.query(f"DROP DATABASE IF EXISTS {NEW}")
        client.query(f"CREATE DATABASE {NEW}")
    with client_of(pg_server, NEW) as client:
        client.query(
            "CREATE TABLE tb_config_sistema (co_config_sistema text PRIMARY KEY, ds_texto text);"
            "INSERT INTO tb_config_sistema VALUES ('VERSAOBANCODADOS', '5.5.28'), ('LINKINSTALACAO', 'http://localhost:8080')"
        )


def three_days(old_db, tmp_path):
    p = daily_job(old_db, tmp_path)
    (tmp_path / "share").mkdir()
    for n in range(3):
        if n:
            add_day(old_db, n)
        result, error = pb.backup_run(p, now=day(n))
        assert error is None and result["offhost"]["state"] == "ok", result["offhost"]
    return p


@pytest.mark.nt("NT-inapta-4")
@needs_borg
def test_a_lost_server_comes_back_from_its_repository_alone_every_table_equal_and_its_state_where_it_was(
    pg_server, old_db, tmp_path
):
    three_days(old_db, tmp_path)
    expected = fingerprint(pg_server, OLD)
    p = new_server(tmp_path)
    got = fetch(p)
    assert got["changed"] and got["archive"] == f"esus-{CNES}-diario-20260103T023000Z" and got["skipped"] == []
    assert got["pec_version"] == "5.5.28" and got["proof_source"] == "manifest" and got["state_files"] == 6
    assert fetch(p)["changed"] is False, "a second fetch reuses the copy already brought"
    fresh_install_db(pg_server)
    conn = conn_of(pg_server, NEW)
    with PgClient(pg_server["bin_dir"], conn) as client:
        done = rb.restore_and_prove(p, client, conn, got, now=day(4))
    proof = done["proof"]
    assert proof["hashes_compared"] and proof["hash_tables"] == 5 and proof["hash_mismatches"] == []
    assert proof["counts_compared"] and proof["count_mismatches"] == {} and done["previous_db"] is None
    assert fingerprint(pg_server, NEW) == expected, "every table's ordered rows are the last backup's"
    with client_of(pg_server) as client:
        assert client.query(f"SELECT 1 FROM pg_database WHERE datname = '{NEW}_rebuild'") == []  # noqa: S608
    # the collection's state where it was on the lost server, the old server's local backups left out
    new = tmp_path / "new"
    where = {"state": str(new / "var-lib"), "config": str(new / "etc"), "facts": str(new / "facts.d")}
    put = rb.put_state_back(got["tree"], where)
    assert json.loads((new / "var-lib" / "lotes" / "ledger.json").read_text()) == LEDGER
    assert (new / "var-lib" / "lotes" / "entrada" / "RAS_Lote2.zip").read_text() == "lote"
    assert json.loads((new / "var-lib" / "borg-repo.json").read_text())["repository_id"]
    assert not (new / "facts.d" / "sesdf_esus_backup.fact").exists()
    assert [os.path.basename(s) for s in put["skipped"]] == ["sesdf_esus_backup.fact"]
    again = rb.put_state_back(got["tree"], where)
    assert again["created"] == [] and again["replaced"] == [], "a second run puts nothing back"


@needs_borg
def test_a_newest_archive_that_cannot_be_read_whole_is_passed_over_for_the_one_before_and_said(
    pg_server, old_db, tmp_path
):
    p_old = three_days(old_db, tmp_path)
    repo = poff.borg_repo(p_old)
    newest, before = (a["name"] for a in reversed(repo.archives()[-2:]))
    # a chunk only the newest archive has is lost on the backup host
    env = repo.env()
    chunks = {}
    for name in (newest, before):
        out = tmp_path / f"{name}.json"
        subprocess.run(["borg", "debug", "dump-archive", repo.archive(name), str(out)], env=env, check=True)
        items = [i for i in json.load(open(out))["_items"] if i["path"] == "esus.pgdump"]
        chunks[name] = {c[0].lstrip("\x7f") for item in items for c in item.get("chunks", [])}
    only_newest = sorted(chunks[newest] - chunks[before])
    assert only_newest, "the newest day has rows of its own"
    subprocess.run(["borg", "debug", "delete-obj", repo.location, only_newest[0]], env=env, check=True)
    got = fetch(new_server(tmp_path))
    assert got["archive"] == before
    assert [s["archive"] for s in got["skipped"]] == [newest]
    assert "não pôde ser lido inteiro" in got["skipped"][0]["error"] and "not found" in got["skipped"][0]["error"]
    assert not os.path.exists(os.path.join(tmp_path / "new" / "work", newest + ".pgdump.zst"))
    fresh_install_db(pg_server)
    conn = conn_of(pg_server, NEW)
    with PgClient(pg_server["bin_dir"], conn) as client:
        assert rb.restore_and_prove(new_server(tmp_path), client, conn, got)["proof"]["hash_mismatches"] == []


@needs_borg
def test_a_wrong_passphrase_and_another_ubs_repository_are_refused_and_nothing_is_brought(pg_server, old_db, tmp_path):
    three_days(old_db, tmp_path)
    wrong = new_server(tmp_path)
    with open(wrong["borg_passphrase_file"], "w") as handle:
        handle.write("not-this-ubs\n")
    with pytest.raises(PecError, match="a senha informada não abre o repositório"):
        fetch(wrong)
    with pytest.raises(PecError, match=r"não tem nenhuma cópia desta UBS \(esus-0030003-\*\).*outra UBS"):
        fetch(new_server(tmp_path, cnes="0030003"))
    assert not os.path.exists(tmp_path / "new" / "work" / rb.FETCHED)


@needs_borg
def test_a_chosen_day_brings_that_days_backup(pg_server, old_db, tmp_path):
    three_days(old_db, tmp_path)
    got = fetch(new_server(tmp_path, archive_date="2026-01-02"))
    assert got["archive"] == f"esus-{CNES}-diario-20260102T023000Z"
    with pytest.raises(PecError, match="no backup of this UBS on 2025-12-31 or before it; .*2026-01-01, 2026-01-02"):
        fetch(new_server(tmp_path, archive_date="2025-12-31"))


@needs_borg
def test_a_restore_whose_rows_differ_from_the_backup_leaves_the_live_database_as_it_was(pg_server, old_db, tmp_path):
    three_days(old_db, tmp_path)
    p = new_server(tmp_path)
    got = fetch(p)
    proof = json.load(open(got["proof"]))
    proof["row_hashes"]["public.tb_cidadao"] = "0" * 64
    with open(got["proof"], "w") as handle:
        json.dump(proof, handle)
    fresh_install_db(pg_server)
    before = fingerprint_config(pg_server)
    conn = conn_of(pg_server, NEW)
    with PgClient(pg_server["bin_dir"], conn) as client, pytest.raises(PecError, match="não confere .*tb_cidadao"):
        rb.restore_and_prove(p, client, conn, got)
    assert fingerprint_config(pg_server) == before
    with client_of(pg_server) as client:
        assert client.query(f"SELECT 1 FROM pg_database WHERE datname = '{NEW}_rebuild'") == []  # noqa: S608


def fingerprint_config(pg_server):
    with client_of(pg_server, NEW) as client:
        return client.query("SELECT * FROM tb_config_sistema ORDER BY 1")


def pec_install_tree(tmp_path, pg_server, dbname, version="5.5.28"):
    """A PEC install on disk whose application.properties points at ``dbname``."""
    root = tmp_path / "opt-e-SUS"
    (root / "webserver" / "config").mkdir(parents=True)
    (root / "database" / "postgresql-9.6.13-1-linux-x64").mkdir(parents=True)
    os.symlink(pg_server["bin_dir"], root / "database" / "postgresql-9.6.13-1-linux-x64" / "bin")
    (root / "webserver" / "config" / "application.properties").write_text(
        f"spring.datasource.url=jdbc:postgresql://{pg_server['host']}:{pg_server['port']}/{dbname}\n"
        f"spring.datasource.username=postgres\nspring.datasource.password={pg_server['password']}\n"
    )
    config = tmp_path / "pec.config"
    config.write_text(json.dumps({"version": version}))
    return PecInstall({"pec_root": str(root), "pec_config_path": str(config)})


def test_a_target_whose_pec_holds_data_is_refused_saying_what_it_found_unless_replace(pg_server, old_db, tmp_path):
    install = pec_install_tree(tmp_path, pg_server, OLD)
    target = rb.target_state(install, {"active_state": "active"})
    assert target["has_data"] and target["database"]["counts"] == {
        "tb_cidadao": 300,
        "tb_dado_transp": 50,
        "tb_lote_transp": 1,
    }
    decision, msg = rb.decide(target, [], replace=False)
    assert decision == "refuse"
    assert "PEC 5.5.28" in msg and "tb_cidadao: 300" in msg and "Nada foi alterado" in msg and "rebuild_replace" in msg
    assert rb.decide(target, [], replace=True)[0] == "rebuild"
    assert rb.decide(target, ["fetch", "install", "restore"], replace=False)[0] == "resume", "its own restore"
    fresh_install_db(pg_server)
    fresh = rb.target_state(pec_install_tree(tmp_path / "f", pg_server, NEW), {"active_state": "active"})
    assert not fresh["has_data"] and rb.decide(fresh, [], replace=False)[0] == "rebuild", "a fresh install is no data"
    empty = rb.target_state(PecInstall({"pec_root": str(tmp_path / "none"), "pec_config_path": "/nonexistent"}), {})
    assert empty["pec"] is False and rb.decide(empty, [], False) == ("rebuild", "alvo: nenhum PEC instalado")


@needs_borg
def test_replacing_a_pec_with_data_keeps_its_database_aside(pg_server, old_db, tmp_path):
    three_days(old_db, tmp_path)
    p = new_server(tmp_path, keep_previous=True)
    got = fetch(p)
    fresh_install_db(pg_server)
    conn = conn_of(pg_server, NEW)
    with PgClient(pg_server["bin_dir"], conn) as client:
        done = rb.restore_and_prove(p, client, conn, got, now=day(9))
    assert done["previous_db"] == f"{NEW}_pre_rebuild_20260110023000"
    with client_of(pg_server, done["previous_db"]) as client:
        assert client.query("SELECT ds_texto FROM tb_config_sistema WHERE co_config_sistema = 'LINKINSTALACAO'") == [
            ["http://localhost:8080"]
        ]
    with client_of(pg_server) as client:
        client.query(f"DROP DATABASE {done['previous_db']}")


def test_the_installation_link_follows_the_new_host_where_the_probe_allows_it(pg_server, old_db):
    assert rb.new_link("http://10.1.2.3:8080/esus", "10.9.9.9") == "http://10.9.9.9:8080/esus"
    assert rb.new_link("https://ubs.example/esus", "novo.example") == "https://novo.example/esus"
    assert rb.new_link(None, "10.9.9.9") == "http://10.9.9.9:8080"
    assert rb.new_link("http://a:1", "b", explicit="https://pec.ubs:443") == "https://pec.ubs:443"
    with PgClient(old_db["bin_dir"], conn_of(pg_server, OLD)) as client:
        assert Probe(client, trust="double").check("installation_link")["supported"]
        refused = Probe(client, trust="survey").check("installation_link")
        assert not refused["supported"] and "Link da instalação" in refused["reason"]
        client.query("DELETE FROM tb_config_sistema WHERE co_config_sistema = 'LINKINSTALACAO'")
        assert Probe(client, trust="double").check("installation_link")["missing"] == [
            "key LINKINSTALACAO in tb_config_sistema"
        ]


def test_a_refused_link_becomes_the_manual_step_the_report_asks_to_confirm_in_the_rebuild(tmp_path):
    steps, _now, _ignored = manual_steps.update({}, refused=["installation_link"], paths={"NT-inapta-link": "x: y"})
    step = steps["NT-inapta-link"]
    assert step["status"] == "pendente" and step["caminho"] == "x: y"
    assert step["confirmar"].startswith("rebuild_manual_confirmed")
    default = manual_steps.update({}, refused=["installation_link"])[0]["NT-inapta-link"]["caminho"]
    assert "Configurações da instalação" in default and "Link da instalação" in default


def test_the_installer_runs_only_with_the_sha256_it_was_published_with(tmp_path):
    share = tmp_path / "ctinf"
    (share / "broken").mkdir(parents=True)
    jar = share / "eSUS-AB-PEC-5.5.28-Linux64.jar"
    jar.write_bytes(b"jar bytes")
    (share / "broken" / jar.name).write_bytes(b"other")
    digest = subprocess.run(["sha256sum", str(jar)], capture_output=True, text=True, check=True).stdout.split()[0]
    (share / "SHA256SUMS").write_text(f"{'0' * 64}  broken/{jar.name}\n{digest}  {jar.name}\n")
    found = rb.installer(str(share), "5.5.28", "eSUS-AB-PEC-{version}-Linux64.jar")
    assert found["path"] == str(jar) and found["sha256"] == digest
    jar.write_bytes(b"tampered")
    with pytest.raises(PecError, match="não o .* publicado"):
        rb.installer(str(share), "5.5.28", "eSUS-AB-PEC-{version}-Linux64.jar")
    with pytest.raises(PecError, match="4.5.2 que o backup registra.* não está em"):
        rb.installer(str(share), "4.5.2", "eSUS-AB-PEC-{version}-Linux64.jar")
    (share / "SHA256SUMS").unlink()
    with pytest.raises(PecError, match="nunca roda sem conferir"):
        rb.installer(str(share), "5.5.28", "eSUS-AB-PEC-{version}-Linux64.jar")


def test_the_version_of_a_dump_made_before_the_manifest_recorded_it_is_read_from_the_dump(pg_server, old_db, tmp_path):
    p = daily_job(old_db, tmp_path, offhost_enabled=False, state_copy=False)
    result, _error = pb.backup_run(p, now=day(0))
    assert rb.version_in_dump(result["path"], "zstd") == "5.5.28"


def test_the_record_keeps_each_step_and_the_history_of_rebuilds_the_old_servers_included():
    data = rb.next_record(
        {}, step="fetch", step_data={"archive": "a1", "created_at": "t0", "skipped": [{"archive": "a2"}]}
    )
    data = rb.next_record(data, step="restore", step_data={"proof": {"tables": 5, "hashes_compared": True}})
    data = rb.next_record(data, old_rebuilds=[{"at": "2025-01-01T00:00:00Z", "archive": "older"}])
    data = rb.next_record(data, finish={"host": "ubs"}, now=day(1))
    assert rb.done_steps(data) == ["fetch", "restore"]
    assert [r["archive"] for r in data["rebuilds"]] == ["a1", "older"]
    assert data["last"]["passed_over"] == ["a2"] and data["last"]["proof"]["tables"] == 5
    assert rb.next_record(data, finish={"host": "ubs"}, now=day(1)) == data, "the same rebuild recorded once"


def test_a_backup_chosen_by_date_falls_back_to_older_ones_only():
    names = [f"esus-{CNES}-diario-2026010{d}T023000Z" for d in (1, 2, 3)] + [
        f"esus-{CNES}-pre-upgrade-20260104T000000Z"
    ]
    prefix = f"esus-{CNES}-"
    assert rb.candidates(names, prefix, "diario") == sorted(names[:3], reverse=True)
    assert rb.candidates(names, prefix, "diario", "2026-01-02") == [names[1], names[0]]
    with pytest.raises(PecError, match="AAAA-MM-DD"):
        rb.candidates(names, prefix, "diario", "02/01/2026")


def test_the_report_shows_the_rebuilt_server_with_its_history_and_the_link_step_to_do():
    from report_fixtures import TODAY, healthy_pec, host

    from ansible_collections.sesdf.esus.plugins.module_utils import report_html, report_model

    pec = healthy_pec("5.5.28")
    steps, _now, _ignored = manual_steps.update(
        {}, refused=["installation_link"], now=datetime.datetime(2026, 11, 30, 20, tzinfo=datetime.UTC)
    )
    pec["state"]["manual_steps"] = {"present": True, "produced_at": "2026-11-30T20:00:00Z", "data": {"steps": steps}}
    record = rb.next_record(
        rb.next_record(
            {},
            step="fetch",
            step_data={"archive": f"esus-{CNES}-diario-20261129T023000Z", "created_at": "2026-11-29T02:30:00Z"},
        ),
        step="state",
        step_data={"old_host": "ubs-perdida"},
    )
    record = rb.next_record(
        record, finish={"host": "ubs-nova"}, now=datetime.datetime(2026, 11, 30, 21, tzinfo=datetime.UTC)
    )
    pec["state"]["rebuild"] = {"present": True, "produced_at": "2026-11-30T21:00:00Z", "data": record}
    model = report_model.build([host("ubs-nova", group="ubs_inaptas", pec=pec, cnes=CNES)], today=TODAY)
    row = model["rows"][0]
    assert row["rebuilds"] == [
        {
            "at": "2026-11-30",
            "backup_day": "2026-11-29",
            "archive": f"esus-{CNES}-diario-20261129T023000Z",
            "old_host": "ubs-perdida",
        }
    ]
    pending = [p for p in row["pendencias"] if p["code"] == "passo_manual"]
    assert pending and pending[0]["nt"] == "NT-inapta-4" and "rebuild_manual_confirmed" in pending[0]["msg"]
    assert "Link da instalação" in pending[0]["msg"] and "migração" not in pending[0]["msg"]
    page = report_html.region_page(model, model["regions"][0])
    assert "Servidor reconstruído em 30/11/2026 a partir do backup de 29/11/2026" in page and "ubs-perdida" in page


@pytest.mark.skipif(shutil.which("age") is None, reason="age not installed on this machine")
def test_from_a_share_of_age_encrypted_copies_a_damaged_newest_is_passed_over_and_the_previous_proved(
    pg_server, old_db, tmp_path
):
    keys = subprocess.run(["age-keygen"], capture_output=True, text=True, check=True).stdout
    identity = tmp_path / "ti.key"
    identity.write_text(keys)
    recipient = next(line.split(": ")[1] for line in keys.splitlines() if "public key" in line)
    share = tmp_path / "ti-share"
    share.mkdir()
    p = daily_job(
        old_db,
        tmp_path,
        offhost_method="mount",
        offhost_dest=str(share),
        offhost_encrypt_recipient=recipient,
    )
    for n in range(2):
        if n:
            add_day(old_db, n)
        result, error = pb.backup_run(p, now=day(n))
        assert error is None and result["offhost"]["state"] == "ok", result["offhost"]
    expected = fingerprint(pg_server, OLD)
    newest = share / "esusantigo_diario_20260102T023000Z.pgdump.zst.age"
    with open(newest, "r+b") as handle:  # the share's copy damaged after it arrived
        handle.seek(200)
        handle.write(b"\0" * 32)
    new = new_server(tmp_path, share_dir=str(share), age_identity=str(identity))
    got = rb.fetch_share(new)
    assert got["archive"] == "esusantigo_diario_20260101T023000Z" and got["proof_source"] == "manifest"
    assert [s["archive"] for s in got["skipped"]] == ["esusantigo_diario_20260102T023000Z"]
    assert "is damaged" in got["skipped"][0]["error"] and got["pec_version"] == "5.5.28"
    assert json.loads(open(os.path.join(got["tree"], p["state_dir"].lstrip("/"), "lotes", "ledger.json")).read()) == (
        LEDGER
    )
    fresh_install_db(pg_server)
    conn = conn_of(pg_server, NEW)
    with PgClient(pg_server["bin_dir"], conn) as client:
        done = rb.restore_and_prove(new, client, conn, got)
    assert done["proof"]["hash_mismatches"] == [] and done["proof"]["hash_tables"] == 5
    assert fingerprint(pg_server, NEW) != expected, "the day before the damaged one: one day of rows fewer"
