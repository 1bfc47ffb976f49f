"""The backup role and modules on a UBS running the PEC double: what a technician relies on when a backup says OK.

Shell and SQL go through podman exec (molecule/shared/labhost.py); modules through ansible, as a technician runs them.
"""

from __future__ import annotations

import json
import os
import subprocess

import ansible_module
import pytest
import testinfra.utils.ansible_runner
from labhost import fingerprint, name_of, pec_app_password, sh

RUNNER = testinfra.utils.ansible_runner.AnsibleRunner(os.environ["MOLECULE_INVENTORY_FILE"])
testinfra_hosts = RUNNER.get_hosts("all")
REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
DEST = "/var/backups/esus"
SHARE = "/mnt/compartilhamento-ti/ubs-0010001"
FACT = "/etc/ansible/facts.d/sesdf_esus_backup.fact"
TABLES = ["tb_cidadao", "tb_atend", "tb_usuario", "tb_prof", "tb_lotacao", "tb_config_sistema", "tb_dado_transp"]


def run_module(host, name, check=False, **args):
    """The module's result, with failed from ansible's exit code."""
    return ansible_module.run_module(name_of(host), f"sesdf.esus.{name}", args, check=check)


@pytest.fixture(scope="module")
def status(host):
    return json.loads(sh(host, f"cat {FACT}"))


def test_converge_published_a_verified_root_only_backup_and_status(host, status):
    assert status["last_result"] == "ok" and status["verified"] is True and status["verify_level"] == "restore"
    path = status["path"]
    out = sh(host, f"stat -c '%a %U' {DEST} {path}; sha256sum {path}; cat {path}.manifest.json; ls -A {DEST}")
    lines = out.splitlines()
    assert lines[0] == "700 root" and lines[1] == "600 root"
    assert lines[2].split()[0] == status["sha256"]
    manifest = json.loads(out[out.index("{") : out.rindex("}") + 1])
    assert manifest["verified"] and manifest["verification"]["restore"]["mismatches"] == {}
    assert manifest["verification"]["restore"]["tables"] >= len(TABLES)
    assert ".tmp-" not in out


def test_pec_info_reports_the_backup_status_with_age(host):
    pec = host.ansible("sesdf.esus.pec_info", None, become=True, check=False)["pec"]
    assert pec["backup_status"]["last_result"] == "ok"
    assert pec["backup_status"]["offhost"]["state"] == "ok"
    assert 0 <= pec["backup_status"]["age_hours"] < 2


@pytest.mark.nt("NT-ntinf-2")
def test_offhost_copy_is_encrypted_and_decrypts_to_the_backup(host, status):
    copy = os.path.join(SHARE, os.path.basename(status["path"]) + ".age")
    out = sh(host, f"head -c 21 {copy}; echo; age -d -i /root/lab-only/age.key {copy} | sha256sum")
    header, plain = out.splitlines()
    assert header == "age-encryption.org/v1"
    assert plain.split()[0] == status["sha256"]
    assert status["offhost"]["state"] == "ok" and status["offhost"]["destination"] == SHARE


@pytest.mark.nt("NT-ntinf-3")
def test_round_trip_restore_gives_equal_rows_and_hashes(host, status):
    out = run_module(host, "pec_restore", path=status["path"], target_db="esus_roundtrip", replace_target=True)
    assert out.get("changed") is True, out.get("msg")
    fp = {db: fingerprint(host, TABLES, db) for db in ("esus", "esus_roundtrip")}
    assert fp["esus_roundtrip"] == fp["esus"]
    assert int(fp["esus"]["tb_cidadao"].split(":")[0]) > 0


def test_damaged_archives_are_detected(host, status):
    p = status["path"]
    sh(
        host,
        f"cd /root/lab-only && S=$(stat -c %s {p}) && for d in truncated flipped wrong; do cp {p} $d.pgdump.zst; "
        f"cp {p}.sha256 $d.pgdump.zst.sha256; done && truncate -s $((S / 2)) truncated.pgdump.zst && "
        f"printf '\\x5a' | dd of=flipped.pgdump.zst bs=1 seek=$((S / 2)) conv=notrunc status=none && "
        f"echo '{'0' * 64}  wrong.pgdump.zst' > wrong.pgdump.zst.sha256",
    )
    for damage in ("truncated", "flipped", "wrong"):
        out = run_module(host, "pec_backup_verify", path=f"/root/lab-only/{damage}.pgdump.zst")
        assert out.get("failed") and "NOT intact" in out["msg"], damage
        assert out["verification"]["ok"] is False
        assert out["verification"]["checksum_ok"] is False


@pytest.mark.parametrize("failure", ["wrong_password", "database_stopped", "disk_full"])
def test_failures_publish_nothing_and_keep_older_backups(host, failure):
    dest = "/root/lab-only/dest-" + failure
    mount = f"mount -t tmpfs -o size=4m tmpfs {dest}" if failure == "disk_full" else "true"
    sh(host, f"mkdir -p -m 0700 {dest} && {mount}")
    older = run_module(host, "pec_backup", dest_dir=dest, label="older", status_path="")
    assert older.get("changed"), older.get("msg")
    args = {"dest_dir": dest, "label": "new", "status_path": ""}
    if failure == "wrong_password":
        args["db_password"] = "wrong-password"
    elif failure == "database_stopped":
        sh(host, "systemctl stop e-SUS-AB-PostgreSQL.service")
    else:
        sh(host, f"fallocate -l $(( $(df -B1 --output=avail {dest} | tail -1) - 16384 )) {dest}/filler")
    before = sh(host, f"ls -A {dest}")
    try:
        out = run_module(host, "pec_backup", **args)
    finally:
        if failure == "database_stopped":
            sh(host, "systemctl start e-SUS-AB-PostgreSQL.service && systemctl restart e-SUS-PEC.service")
    assert out.get("failed")
    expected = {
        "wrong_password": "wrong password",
        "database_stopped": "not accepting connections",
        "disk_full": "no space left on device",
    }[failure]
    assert expected in out["msg"], out["msg"]
    name = os.path.basename(older["backup"]["path"])
    after = sh(
        host, f"ls -A {dest}; cd {dest} && sha256sum -c {name}.sha256 && cd / && umount {dest} 2>/dev/null; true"
    )
    assert after.startswith(before), "no new file under any name; the older backup is intact"
    assert f"{name}: OK" in after


def test_offhost_share_down_then_back(host):
    sh(host, "umount /mnt/compartilhamento-ti")
    try:
        out = run_module(host, "pec_backup", label="share-down", offhost_enabled=True, offhost_dest=SHARE)
        assert out.get("changed") and out["backup"]["verified"]
        assert out["backup"]["offhost"]["state"] == "failed"
        assert (
            "not a mounted share" in out["backup"]["offhost"]["error"]
            or "not available" in out["backup"]["offhost"]["error"]
        )
        assert json.loads(sh(host, f"cat {FACT}"))["offhost"]["state"] == "failed"
    finally:
        sh(host, f"mount -t tmpfs -o size=64m tmpfs /mnt/compartilhamento-ti && mkdir -p {SHARE}")
    again = run_module(
        host, "pec_backup", label="share-down", offhost_enabled=True, offhost_dest=SHARE, reuse_within_minutes=60
    )
    assert again["backup"]["reused"] and again["backup"]["offhost"]["state"] == "ok"
    copy = f"{SHARE}/{os.path.basename(again['backup']['path'])}"
    out = sh(host, f"sha256sum {copy}; cat {FACT}")
    assert out.split()[0] == again["backup"]["sha256"]
    assert json.loads(out[out.index("{") :])["offhost"]["state"] == "ok"


MARKER = "/var/lib/sesdf-esus/app-stopped.json"
APP_STARTED = "systemctl show -p ActiveEnterTimestampMonotonic --value e-SUS-PEC.service"


def backup_playbook(*extra, verbose=False):
    """playbooks/backup.yml on the lab host, as a technician runs it (-e key=value each)."""
    args = [a for kv in extra for a in ("-e", kv)] + (["-vvv"] if verbose else [])
    return subprocess.run(
        ["ansible-playbook", "-i", os.environ["MOLECULE_INVENTORY_FILE"],
         os.path.join(REPO, "playbooks", "backup.yml"), "-e", "backup_hosts=all", *args],
        capture_output=True, text=True, check=False,
    )  # fmt: skip


def test_stop_app_restarts_it_and_canary_password_not_in_ansible_output(host):
    password = pec_app_password(host)
    assert sh(host, "systemctl is-active e-SUS-PEC.service") == "active"
    started_before = sh(host, APP_STARTED)
    proc = backup_playbook(
        "backup_label=stopapp", "backup_stop_app=true", "backup_offhost_enabled=false",
        "backup_reuse_within_minutes=0", verbose=True,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert password not in proc.stdout + proc.stderr
    out = sh(host, f"systemctl is-active e-SUS-PEC.service; journalctl --no-pager -n 5000; cat {DEST}/*.json {FACT}")
    assert out.splitlines()[0] == "active"
    assert sh(host, APP_STARTED) != started_before, "the application was stopped for the dump and started again"
    assert sh(host, f"test -e {MARKER} && echo marker || echo none") == "none"
    assert password not in out


def test_the_run_after_one_killed_with_the_pec_stopped_starts_it_and_removes_the_marker(host):
    marker = {"service": "e-SUS-PEC.service", "stopped_by": "sesdf.esus.pec_backup", "reason": "backup killed"}
    sh(
        host,
        f"systemctl stop e-SUS-PEC.service && mkdir -p {os.path.dirname(MARKER)} && cat > {MARKER}",
        stdin=json.dumps(marker),
    )
    pec = host.ansible("sesdf.esus.pec_info", None, become=True, check=False)["pec"]
    assert any("backup killed" in p["msg"] for p in pec["problems"] if p["code"] == "services")
    proc = backup_playbook("backup_offhost_enabled=false")  # a plain rerun of the role (no backup_stop_app)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert sh(host, "systemctl is-active e-SUS-PEC.service") == "active"
    assert sh(host, f"test -e {MARKER} && echo marker || echo none") == "none"


def test_a_pec_stopped_by_somebody_else_is_left_stopped_and_reported(host):
    sh(host, "systemctl stop e-SUS-PEC.service")
    try:
        out = run_module(host, "pec_backup", label="stopped-by-other", stop_app=True, reuse_within_minutes=240)
        assert not out["failed"], out.get("msg")
        assert out["app"]["stopped_by_other"] is True and out["app"]["started"] is False
        assert sh(host, "systemctl is-active e-SUS-PEC.service || true") != "active"
    finally:
        # the tests before stopped and started it too: the lab unit's start limit (3 in 120 s) may be reached
        sh(host, "systemctl reset-failed e-SUS-PEC.service; systemctl start e-SUS-PEC.service")


def test_check_mode_writes_nothing(host):
    before = sh(host, f"ls -A {DEST}")
    out = run_module(host, "pec_backup", check=True, label="checkmode")
    assert out["changed"] is True and "would" in out["backup"]
    assert sh(host, f"ls -A {DEST}") == before


def test_a_partial_copy_a_killed_run_left_in_the_share_is_removed_and_others_kept(host):
    stale = f"{SHARE}/.tmp-esus_killed_20260101T000000Z.pgdump.zst.age"
    fresh = f"{SHARE}/.tmp-esus_concurrent_20260101T000000Z.pgdump.zst"
    foreign = f"{SHARE}/.tmp-relatorio-ti.pdf"
    sh(
        host,
        f"for f in {stale} {fresh} {foreign}; do head -c 50000 /dev/urandom > $f; done; "
        f"touch -d '2 days ago' {stale} {foreign}",
    )
    out = run_module(host, "pec_backup", label="after-kill", offhost_enabled=True, offhost_dest=SHARE)
    assert not out["failed"] and out["backup"]["offhost"]["state"] == "ok", out.get("msg")
    assert out["backup"]["offhost"]["removed_temporaries"] == [stale]
    hidden = sh(host, f"ls -A {SHARE} | grep '^\\.' || true").split()
    assert sorted(hidden) == sorted([os.path.basename(fresh), os.path.basename(foreign)])
    sh(host, f"rm -f {fresh} {foreign}")
    complete = sh(host, f"cd {SHARE} && ls -A && sha256sum -c *.sha256")
    assert ".tmp-" not in complete and "FAILED" not in complete


def test_pec_info_rechecks_the_backup_a_damage_is_a_mismatch_until_a_new_backup(host):
    made = run_module(host, "pec_backup", label="to-damage")
    assert made["changed"], made.get("msg")
    path = made["backup"]["path"]

    def backup_status():
        return host.ansible("sesdf.esus.pec_info", None, become=True, check=False)["pec"]["backup_status"]

    fine = backup_status()
    assert fine["verified"] is True and fine["check"] == "ok" and fine["path"] == path
    assert fine["verified_at"] and fine["checked_at"]
    sh(host, f"cp -p {path} /root/lab-only/kept.pgdump.zst && printf 'damage' >> {path}")
    damaged = backup_status()
    assert damaged["verified"] is False and damaged["check"] == "mismatch"
    sh(host, f"cp -p /root/lab-only/kept.pgdump.zst {path} && rm {path}.manifest.json")
    assert backup_status()["check"] == "missing_manifest"
    again = run_module(host, "pec_backup", label="after-damage")
    assert again["changed"], again.get("msg")
    repaired = backup_status()
    assert repaired["verified"] is True and repaired["check"] == "ok" and repaired["path"] == again["backup"]["path"]
