"""pec_upgrade_gates: the preflight gates for what real upgrades hit, and the soak after the upgrade."""

from __future__ import annotations

import datetime
import json
import os
import stat
from types import SimpleNamespace

import pytest

from ansible_collections.sesdf.esus.plugins.module_utils import pec_upgrade_gates as g
from ansible_collections.sesdf.esus.plugins.module_utils.pec_db import PgClient
from ansible_collections.sesdf.esus.plugins.module_utils.pec_state import state_path, write_state
from ansible_collections.sesdf.esus.plugins.module_utils.pec_upgrade import HostRunner, preflight, upgrade_disk_needs

JAVA8 = """openjdk version "1.8.0_352"
OpenJDK Runtime Environment (Temurin)(build 1.8.0_352-b08)
OpenJDK 64-Bit Server VM (Temurin)(build 25.352-b08, mixed mode)
"""
ORACLE8 = """java version "1.8.0_351"
Java(TM) SE Runtime Environment (build 1.8.0_351-b10)
Java HotSpot(TM) 64-Bit Server VM (build 25.351-b10, mixed mode)
"""
JAVA17 = """openjdk version "17.0.9" 2023-10-17
OpenJDK Runtime Environment (build 17.0.9+9-Debian-1deb12u1)
OpenJDK 64-Bit Server VM (build 17.0.9+9-Debian-1deb12u1, mixed mode, sharing)
"""


def fake_java(directory, text, name="java"):
    """A java executable that prints ``text`` on stderr for -version, as a real one does."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text("#!/bin/sh\ncat >&2 <<'EOF'\n" + text + "EOF\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


class PathRunner(HostRunner):
    """The real runner (the fake java scripts run), with the PATH's java given by the test."""

    def __init__(self, system_java=None):
        self.system_java = system_java

    def which(self, name):
        return self.system_java if name == "java" else None


# ---- java


@pytest.mark.parametrize(
    ("text", "major"), [(JAVA8, 8), (ORACLE8, 8), (JAVA17, 17), ('openjdk version "21" 2023-09-19', 21)]
)
def test_java_major_reads_the_real_version_texts(text, major):
    assert g.java_major(text) == major
    assert g.java_major("bash: java: command not found") is None


def test_a_4x_target_on_debian_12_with_only_java_17_is_refused_with_what_to_do(tmp_path):
    system = fake_java(tmp_path / "usr", JAVA17)
    result = g.select_java("4.5.2", PathRunner(system))
    assert result["status"] == "fail" and result["code"] == "java8"
    assert "needs a Java 8" in result["msg"] and "upgrade_java8_bin" in result["msg"]
    assert result["candidates"][0]["major"] == 17


def test_a_4x_target_takes_the_java8_given_and_skips_a_system_java_17(tmp_path):
    system = fake_java(tmp_path / "usr", JAVA17)
    java8 = fake_java(tmp_path / "temurin8", JAVA8)
    result = g.select_java("4.5.2", PathRunner(system), java8_bin=java8)
    assert (result["status"], result["path"], result["major"], result["source"]) == (
        "ok",
        java8,
        8,
        "upgrade_java8_bin",
    )
    # a system java that is 8 is found without the variable
    assert g.select_java("5.2.28", PathRunner(java8))["path"] == java8


def test_a_53_target_prefers_the_bundled_jre_then_the_system_java(tmp_path):
    bundled = fake_java(tmp_path / "opt" / "jre" / "current" / "bin", JAVA17)
    system = fake_java(tmp_path / "usr", JAVA17)
    result = g.select_java("5.5.28", PathRunner(system), bundled_java=bundled)
    assert (result["path"], result["source"]) == (bundled, "bundled JRE")
    missing = str(tmp_path / "none" / "java")
    result = g.select_java("5.3.19", PathRunner(system), bundled_java=missing)
    assert (result["path"], result["source"]) == (system, "system java")


def test_a_53_target_with_only_java_8_asks_for_a_newer_jre(tmp_path):
    result = g.select_java("5.4.37", PathRunner(fake_java(tmp_path, JAVA8)), bundled_java=str(tmp_path / "no"))
    assert result["code"] == "java" and "Java 17 or newer" in result["msg"] and "upgrade_install_jre" in result["msg"]


def test_an_explicit_java_bin_is_used_with_a_warning_when_it_is_not_the_expected_version(tmp_path):
    java17 = fake_java(tmp_path, JAVA17)
    result = g.select_java("4.5.2", PathRunner(), java_bin=java17)
    assert result["status"] == "warn" and result["path"] == java17 and "expects Java 8" in result["msg"]
    broken = g.select_java("4.5.2", PathRunner(), java_bin=str(tmp_path / "nope"))
    assert broken["status"] == "fail" and broken["code"] == "java_bin"


# ---- memory


def test_memory_below_the_minimum_is_refused_and_below_the_recommended_warned(tmp_path):
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:        3906240 kB\nMemFree:          100000 kB\n")  # a "4 GB" server
    total = g.memory_total_mb(str(meminfo))
    assert total == 3814
    assert g.memory_gate(total, 3584, 7168)["status"] == "warn"
    refused = g.memory_gate(total, 4096, 7168)
    assert refused["status"] == "fail" and "Killed" in refused["msg"] and "upgrade_min_memory_mb" in refused["msg"]
    meminfo.write_text("MemTotal:        8002024 kB\n")  # an "8 GB" server passes the recommendation
    assert g.memory_gate(g.memory_total_mb(str(meminfo)), 3584, 7168)["status"] == "ok"
    assert g.memory_gate(None, 3584, 7168)["status"] == "unverifiable"


# ---- time zone


def _zoneinfo(tmp_path):
    zoneinfo = tmp_path / "zoneinfo"
    (zoneinfo / "America").mkdir(parents=True)
    (zoneinfo / "Brazil").mkdir()
    (zoneinfo / "Etc").mkdir()
    (zoneinfo / "America" / "Sao_Paulo").write_bytes(b"TZif-sao-paulo")
    os.symlink("../America/Sao_Paulo", zoneinfo / "Brazil" / "East")
    (zoneinfo / "Etc" / "UTC").write_bytes(b"TZif-utc")
    return zoneinfo


ALLOWED = ["America/Sao_Paulo", "Brazil/East"]


@pytest.mark.parametrize("zone", ["America/Sao_Paulo", "Brazil/East"])
def test_sao_paulo_and_its_alias_brazil_east_are_accepted(tmp_path, zone):
    zoneinfo = _zoneinfo(tmp_path)
    localtime = tmp_path / "localtime"
    os.symlink(str(zoneinfo / zone), localtime)
    name, how = g.current_timezone(str(localtime), str(tmp_path / "timezone"), str(zoneinfo), ALLOWED)
    assert name == zone
    assert g.timezone_gate(name, how, ALLOWED)["status"] == "ok"


def test_utc_and_a_missing_localtime_are_refused_with_the_fix(tmp_path):
    zoneinfo = _zoneinfo(tmp_path)
    localtime = tmp_path / "localtime"
    os.symlink(str(zoneinfo / "Etc" / "UTC"), localtime)
    refused = g.timezone_gate(*g.current_timezone(str(localtime), "/nonexistent", str(zoneinfo), ALLOWED), ALLOWED)
    assert refused["status"] == "fail" and "Etc/UTC" in refused["msg"]
    assert "timedatectl set-timezone America/Sao_Paulo" in refused["msg"]
    os.unlink(localtime)
    assert g.current_timezone(str(localtime), "/nonexistent", str(zoneinfo), ALLOWED) == ("UTC", "absent")
    assert g.timezone_gate("Etc/UTC", "link", [])["status"] == "ok"  # an empty list disables the gate


def test_a_copied_localtime_is_recognised_by_its_bytes_and_etc_timezone_alone_does_not_pass(tmp_path):
    zoneinfo = _zoneinfo(tmp_path)
    localtime = tmp_path / "localtime"
    localtime.write_bytes(b"TZif-sao-paulo")
    assert g.current_timezone(str(localtime), "/nonexistent", str(zoneinfo), ALLOWED) == ("America/Sao_Paulo", "copy")
    localtime.write_bytes(b"TZif-utc")
    timezone = tmp_path / "timezone"
    timezone.write_text("America/Sao_Paulo\n")
    name, how = g.current_timezone(str(localtime), str(timezone), str(zoneinfo), ALLOWED)
    assert g.timezone_gate(name, how, ALLOWED)["status"] == "fail"


# ---- logind RemoveIPC


def _logind(tmp_path, main=None, dropins=None):
    etc = tmp_path / "etc" / "logind.conf.d"
    usr = tmp_path / "usr" / "logind.conf.d"
    etc.mkdir(parents=True)
    usr.mkdir(parents=True)
    conf = tmp_path / "logind.conf"
    conf.write_text(main if main is not None else "[Login]\n#RemoveIPC=yes\n")
    for where, name, text in dropins or []:
        (etc if where == "etc" else usr).joinpath(name).write_text(text)
    return {
        "main": str(conf),
        "dropin_dirs": (str(usr), str(etc)),
        "dropin": str(etc / "sesdf-esus-removeipc.conf"),
    }


def test_debian_default_removeipc_is_yes_and_is_fixed_by_the_dropin(tmp_path):
    paths = _logind(tmp_path)
    result = g.remove_ipc_gate(**paths, fix=True)
    assert result["code"] == "remove_ipc" and result["status"] == "fail" and result["fix_needed"]
    assert result["source"] == "systemd's default (yes)" and "the role writes" in result["msg"]
    manual = g.remove_ipc_gate(**paths, fix=False)
    assert "RemoveIPC=no" in manual["msg"] and "systemctl restart systemd-logind" in manual["msg"]
    # after the role wrote its drop-in the gate passes (and a second run changes nothing)
    with open(paths["dropin"], "w", encoding="utf-8") as handle:
        handle.write(g.REMOVE_IPC_DROPIN_CONTENT)
    assert g.remove_ipc_gate(**paths)["status"] == "ok"


def test_removeipc_no_in_logind_conf_or_a_dropin_passes(tmp_path):
    assert g.remove_ipc_gate(**_logind(tmp_path / "a", main="[Login]\nRemoveIPC=no\n"))["status"] == "ok"
    paths = _logind(tmp_path / "b", dropins=[("usr", "10-vendor.conf", "[Login]\nRemoveIPC=false\n")])
    assert g.remove_ipc_gate(**paths)["status"] == "ok"
    # the key outside [Login] does not count
    assert g.remove_ipc_gate(**_logind(tmp_path / "c", main="[Other]\nRemoveIPC=no\n"))["status"] == "fail"


def test_a_later_dropin_setting_yes_again_cannot_be_fixed_by_ours(tmp_path):
    paths = _logind(tmp_path, dropins=[("etc", "zz-local.conf", "[Login]\nRemoveIPC=yes\n")])
    result = g.remove_ipc_gate(**paths)
    assert result["code"] == "remove_ipc_override" and "zz-local.conf" in result["msg"]


# ---- /tmp/PEC-*


def test_stale_pec_tmp_entries_are_listed_and_refused_unless_the_role_removes_them(tmp_path):
    (tmp_path / "PEC-123").mkdir()
    (tmp_path / "PEC-lock").write_text("x")
    (tmp_path / "other").write_text("x")
    entries = g.stale_tmp_entries([str(tmp_path / "PEC-*")])
    assert [os.path.basename(e) for e in entries] == ["PEC-123", "PEC-lock"]
    assert g.stale_tmp_gate(entries, remove=True)["status"] == "warn"
    refused = g.stale_tmp_gate(entries, remove=False)
    assert refused["status"] == "fail" and "PEC-123" in refused["msg"] and "upgrade_remove_stale_tmp" in refused["msg"]
    assert g.stale_tmp_gate([], remove=False)["status"] == "ok"


# ---- migration lock (a real PostgreSQL)


def _client(pg_server, pec_db):
    return PgClient(pg_server["bin_dir"], pec_db)


def test_migration_lock_table_absent_is_not_verifiable_never_a_pass(pg_server, pec_db):
    with _client(pg_server, pec_db) as client:
        result = g.migration_lock_state(client, "tb_migracao_trava", ["locked"])
    assert result["status"] == "unverifiable" and "não verificável" in result["msg"]


def test_a_held_liquibase_lock_is_refused_and_a_free_one_passes(pg_server, pec_db):
    with _client(pg_server, pec_db) as client:
        client.query(
            "CREATE TABLE tb_migracao_trava (id integer PRIMARY KEY, locked boolean NOT NULL,"
            " lockgranted timestamp, lockedby varchar(255))"
        )
        client.query("INSERT INTO tb_migracao_trava VALUES (1, false, NULL, NULL)")
        free = g.migration_lock_state(client, "tb_migracao_trava", ["st_trava", "locked"])
        client.query("UPDATE tb_migracao_trava SET locked = true, lockedby = 'ubs (10.0.0.5)'")
        held = g.migration_lock_state(client, "tb_migracao_trava", ["st_trava", "locked"])
        rows = client.query("SELECT locked FROM tb_migracao_trava")
    assert free["status"] == "ok" and free["lock_column"] == "locked"
    assert held["status"] == "fail" and held["held_rows"] == 1
    assert "Nothing was changed" in held["msg"] and "docs/pt-BR/atualizacao.md" in held["msg"]
    assert rows == [["t"]]  # read-only: the lock is left as it was


def test_a_lock_table_with_unknown_columns_or_an_integer_flag(pg_server, pec_db):
    with _client(pg_server, pec_db) as client:
        client.query("CREATE TABLE tb_migracao_trava (co_seq integer, ds_quem text)")
        unknown = g.migration_lock_state(client, "tb_migracao_trava", ["locked", "st_trava"])
        client.query("ALTER TABLE tb_migracao_trava ADD COLUMN st_trava integer")
        client.query("INSERT INTO tb_migracao_trava VALUES (1, 'x', 1)")
        held = g.migration_lock_state(client, "tb_migracao_trava", ["locked", "st_trava"])
    assert unknown["status"] == "unverifiable" and "co_seq" in unknown["msg"]
    assert held["status"] == "fail" and held["lock_column"] == "st_trava"


def test_a_lock_table_name_that_is_not_a_plain_identifier_is_refused():
    result = g.migration_lock_state(None, 'x"; DROP TABLE tb_usuario; --', ["locked"])
    assert result["status"] == "fail" and "upgrade_migration_lock_table" in result["msg"]


# ---- ports (certmgr)


PROC_TCP = """  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:0050 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1111 1 0
   1: 0100007F:1535 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2222 1 0
   2: 0100007F:01BB 0100007F:D431 01 00000000:00000000 00:00000000 00000000     0        0 3333 1 0
"""


def test_listeners_are_read_from_proc_net_tcp(tmp_path):
    tcp = tmp_path / "tcp"
    tcp.write_text(PROC_TCP)
    # 80 listening, 5429 listening (not asked), 443 only an established connection (not a listener)
    assert g.tcp_listeners([80, 443], proc_net=[str(tcp)]) == {80: ["1111"]}


def test_certmgr_install_refuses_another_program_on_80_and_accepts_the_pec(tmp_path):
    ssl = tmp_path / "ssl.properties"
    ssl.write_text("x")
    apache = {"1111": [{"pid": 812, "comm": "apache2", "cgroup": "0::/system.slice/apache2.service\n"}]}
    pec = {"1111": [{"pid": 900, "comm": "java", "cgroup": "0::/system.slice/e-SUS-PEC.service\n"}]}
    refused = g.ports_gate(str(ssl), [80, 443], "e-SUS-PEC.service", listeners={80: ["1111"]}, owners=apache)
    assert refused["status"] == "fail" and "apache2 (pid 812)" in refused["msg"]
    accepted = g.ports_gate(str(ssl), [80, 443], "e-SUS-PEC.service", listeners={80: ["1111"]}, owners=pec)
    assert accepted["status"] == "ok"
    plain = g.ports_gate(
        str(tmp_path / "none"), [80, 443], "e-SUS-PEC.service", listeners={80: ["1111"]}, owners=apache
    )
    assert plain["status"] == "ok" and plain["certmgr"] is False


# ---- installer time limit and disk


def test_installer_time_limit_grows_with_the_database():
    assert g.installer_timeout(3600, 120, 0) == 3600
    assert g.installer_timeout(3600, 120, 38 * 1024**3) == 3600 + 38 * 120  # the 38 GB base: 2 h 16 min
    assert g.installer_timeout(3600, 120, 1) == 3720  # a started GiB counts


def test_disk_counts_the_scratch_and_the_rollback_database_on_the_database_file_system(tmp_path):
    root = tmp_path / "opt"
    data = root / "database" / "postgresql-9.6.13-1-linux-x64" / "data"
    data.mkdir(parents=True)
    p = {
        "installer_size_bytes": 100,
        "backup_dir": str(tmp_path / "b"),
        "backup_size_factor": 1.0,
        "keep_aside_dir": str(tmp_path / "a"),
        "staging_dir": str(tmp_path / "s"),
        "backup_verify_level": "restore",
    }
    install = SimpleNamespace(root=str(root))
    needs = upgrade_disk_needs(p, install, {}, 10 * 1024**3)
    on_db = [(purpose, size) for purpose, path, size in needs if path == str(data)]
    assert sum(size for _p, size in on_db) == 2 * 10 * 1024**3
    assert any("scratch" in purpose for purpose, _s in on_db) and any("rollback" in purpose for purpose, _s in on_db)
    p["backup_verify_level"] = "full_read"
    on_db = [size for _purpose, path, size in upgrade_disk_needs(p, install, {}, 10 * 1024**3) if path == str(data)]
    assert on_db == [10 * 1024**3]


# ---- the gates through preflight


def test_preflight_runs_the_host_gates_and_reports_warnings_and_blockers(tmp_path):
    zoneinfo = _zoneinfo(tmp_path)
    localtime = tmp_path / "localtime"
    os.symlink(str(zoneinfo / "Brazil" / "East"), localtime)
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal: 6000000 kB\n")
    logind = _logind(tmp_path)
    paths = {
        "meminfo": str(meminfo),
        "localtime": str(localtime),
        "timezone_file": "/nonexistent",
        "zoneinfo": str(zoneinfo),
        "logind_main": logind["main"],
        "logind_dropin_dirs": logind["dropin_dirs"],
        "remove_ipc_dropin": logind["dropin"],
    }
    p = {
        "target_version": "4.5.2",
        "checks": ["memory", "timezone", "remove_ipc", "migration_lock", "java", "stale_tmp", "ports"],
        "installer_timeout": 3600,
        "installer_timeout_per_gb": 120,
        "min_memory_mb": 3584,
        "recommended_memory_mb": 7168,
        "allowed_timezones": ALLOWED,
        "fix_remove_ipc": True,
        "stale_tmp_patterns": [str(tmp_path / "PEC-*")],
        "remove_stale_tmp": True,
        "migration_lock_table": "tb_migracao_trava",
        "migration_lock_columns": ["locked"],
        "certmgr_config": str(tmp_path / "no-ssl.properties"),
        "certmgr_ports": [80, 443],
        "app_service": "e-SUS-PEC.service",
        "java_bin": None,
        "java8_bin": fake_java(tmp_path / "j8", JAVA8),
        "bundled_java": None,
        "version_key": "VERSAOBANCODADOS",
    }
    install = SimpleNamespace(present=True, root=str(tmp_path / "opt"), config=lambda: {"version": "4.2.8"})

    def no_lock_table(_install, table, _columns):
        return g.gate("migration_lock", g.UNVERIFIABLE, f"migration lock não verificável: no {table}"), ["q2"]

    result = preflight(
        p,
        install,
        runner=PathRunner(fake_java(tmp_path / "usr", JAVA17)),
        read_database=lambda _i, _k: ("4.2.8", 2 * 1024**3, ["q1"]),
        read_lock=no_lock_table,
        paths=paths,
    )
    assert result["decision"] == "upgrade"
    assert [b["code"] for b in result["blockers"]] == ["remove_ipc"]  # the role writes its drop-in
    assert any("não verificável" in w for w in result["gate_warnings"])  # the lock: reported, never a pass
    assert any("recommended" in w for w in result["gate_warnings"])  # 5.7 GiB of memory
    assert result["gates"]["timezone"]["status"] == "ok"
    assert result["java"] == p["java8_bin"] and result["java_version"]["major"] == 8
    assert result["installer_timeout"] == 3600 + 2 * 120
    assert result["executed_queries"] == ["q1", "q2"]


# ---- soak (point of no return)


NOW = datetime.datetime(2026, 12, 8, 3, 0, tzinfo=datetime.UTC)
ANSWERING = {"app_active": True, "http_status": 401, "config_version": "5.5.28", "database_version": "5.5.28"}


def _soaking(hours_ago, asides=("/var/backups/esus/upgrade/pec-5.4.37",)):
    return {
        "state": "soaking",
        "version": "5.5.28",
        "asides": list(asides),
        "backup": "/var/backups/esus/x.backup",
        "since": (NOW - datetime.timedelta(hours=hours_ago)).isoformat(),
        "soak_hours": 24,
    }


def test_soak_waits_then_commits_once_the_new_version_answered_long_enough():
    assert g.soak_decision(_soaking(3), NOW, 24, ANSWERING)[0] == "wait"
    action, msg = g.soak_decision(_soaking(25), NOW, 24, ANSWERING)
    assert action == "commit" and "removed" in msg
    assert g.soak_decision(None, NOW, 24, ANSWERING)[0] == "none"
    assert g.soak_decision(dict(_soaking(25), state="committed"), NOW, 24, ANSWERING)[0] == "none"


@pytest.mark.parametrize(
    "observed",
    [
        dict(ANSWERING, app_active=False),
        dict(ANSWERING, http_status=None),
        dict(ANSWERING, database_version="5.4.37"),
    ],
)
def test_soak_over_but_the_pec_not_answering_keeps_the_way_back(observed):
    action, msg = g.soak_decision(_soaking(48), NOW, 24, observed)
    assert action == "hold" and "pec-5.4.37" in msg and "kept" in msg


def _record(facts_dir, soak):
    data = {"version": "5.5.28", "target_version": "5.5.28", "result": "at_target", "message": None, "soak": soak}
    write_state(str(facts_dir), "upgrade", data, now=NOW - datetime.timedelta(hours=30), history=10)


def test_soak_step_removes_the_copy_aside_and_records_committed_in_place(tmp_path):
    aside = tmp_path / "pec-5.4.37"
    (aside / "tree").mkdir(parents=True)
    facts = tmp_path / "facts"
    _record(facts, _soaking(25, asides=[str(aside)]))
    dry = g.soak_step(str(facts), NOW, 24, ANSWERING, check_mode=True)
    assert dry["action"] == "commit" and dry["removed"] == [str(aside)] and aside.exists()
    done = g.soak_step(str(facts), NOW, 24, ANSWERING)
    assert done["changed"] and not aside.exists()
    with open(state_path(str(facts), "upgrade"), encoding="utf-8") as handle:
        data = json.load(handle)["data"]
    assert data["last"]["soak"]["state"] == "committed" and data["history"] == []
    again = g.soak_step(str(facts), NOW, 24, ANSWERING)
    assert again["action"] == "none" and not again["changed"]


def test_soak_step_during_the_soak_changes_nothing(tmp_path):
    aside = tmp_path / "pec-5.4.37"
    aside.mkdir()
    facts = tmp_path / "facts"
    _record(facts, _soaking(2, asides=[str(aside)]))
    before = open(state_path(str(facts), "upgrade"), encoding="utf-8").read()
    result = g.soak_step(str(facts), NOW, 24, ANSWERING)
    assert result["action"] == "wait" and not result["changed"] and aside.exists()
    assert open(state_path(str(facts), "upgrade"), encoding="utf-8").read() == before
    assert g.soak_step(str(tmp_path / "empty"), NOW, 24, ANSWERING)["action"] == "none"
