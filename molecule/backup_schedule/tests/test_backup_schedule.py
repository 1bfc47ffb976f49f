"""The daily backup job on an inapt UBS, run by the server itself: what the technician and the manager rely on.

Shell goes through podman exec (molecule/shared/labhost.py).
"""

from __future__ import annotations

import datetime
import json
import os
import shlex

import pytest
import testinfra.utils.ansible_runner
from labhost import PEC_PROPERTIES as PROPS
from labhost import pec_app_password as app_password
from labhost import sh

RUNNER = testinfra.utils.ansible_runner.AnsibleRunner(os.environ["MOLECULE_INVENTORY_FILE"])
testinfra_hosts = RUNNER.get_hosts("ubs")
BIN = "/opt/e-SUS/database/postgresql-9.6.13-1-linux-x64/bin"
SCRIPT = "/usr/local/sbin/sesdf-esus-backup"
CONFIG = "/etc/sesdf-esus/backup.json"
DEST = "/var/backups/esus"
SHARE_ROOT = "/mnt/compartilhamento-ti"
SHARE = SHARE_ROOT + "/ubs-0020002"
FACT = "/etc/ansible/facts.d/sesdf_esus_backup.fact"
JOB = f"systemd-cat -t sesdf-esus-backup {SCRIPT} --config"
MOUNT_CONFIG = "/root/lab-only/mount.json"


def test_exactly_one_root_only_job_on_a_persistent_timer_and_no_secret_in_it(host):
    password = app_password(host)
    out = sh(
        host,
        "ls /etc/cron.d | grep -c sesdf-esus-backup || true; "
        "(crontab -l -u root 2>/dev/null || true) | grep -c sesdf-esus-backup || true; "
        "systemctl is-enabled sesdf-esus-backup.timer; systemctl is-active sesdf-esus-backup.timer; "
        "systemctl show -p Persistent --value sesdf-esus-backup.timer; "
        f"stat -c '%a %U' {CONFIG} {SCRIPT} {DEST}; systemctl cat sesdf-esus-backup.service sesdf-esus-backup.timer; "
        f"cat {CONFIG}",
    )
    lines = out.splitlines()
    assert lines[0:5] == ["0", "0", "enabled", "active", "yes"], "one timer, no cron line"
    assert lines[5:8] == ["600 root", "700 root", "700 root"]
    assert f"ExecStart={SCRIPT} --config {CONFIG}" in out and "OnCalendar=*-*-* 02:30:00" in out
    assert password not in out


def test_the_timer_catches_up_a_run_the_server_missed_while_off(host):
    """Persistent=true: a server that was off at 02:30 backs up as soon as it is back (here: the timer's record of
    its last run set three days back, then the timer started again, as at boot)."""
    before = json.loads(sh(host, f"cat {FACT} 2>/dev/null || echo '{{}}'")).get("last_attempt")
    svc = "sesdf-esus-backup.service"
    sh(
        host,
        f"inv=$(systemctl show -p InvocationID --value {svc}); systemctl stop sesdf-esus-backup.timer; "
        "touch -d '3 days ago' /var/lib/systemd/timers/stamp-sesdf-esus-backup.timer; "
        "systemctl start sesdf-esus-backup.timer; "
        f'for i in $(seq 300); do [ "$(systemctl show -p InvocationID --value {svc})" != "$inv" ] && '
        f'[ "$(systemctl show -p ActiveState --value {svc})" != activating ] && break; sleep 1; done',
    )
    out = sh(host, "systemctl show -p Result -p ExecMainStatus sesdf-esus-backup.service")
    assert "Result=success" in out and "ExecMainStatus=0" in out, out
    after = json.loads(sh(host, f"cat {FACT}"))
    assert after["last_attempt"] != before and after["last_result"] == "ok"
    assert "backup ok" in sh(host, "journalctl --no-pager -u sesdf-esus-backup.service | tail -20")


def test_a_job_whose_configuration_is_wrong_shows_failed_and_names_the_field(host):
    """One exit-code vocabulary: 2 = configuration; every non-zero code leaves the unit failed for systemctl."""
    try:
        sh(host, f"cp -p {CONFIG} /root/backup.json.orig")
        sh(host, f'sed -i \'s/"keep_daily": 7/"keep_daily": "7"/\' {CONFIG}')
        sh(host, "systemctl start sesdf-esus-backup.service || true")
        out = sh(
            host,
            "systemctl is-failed sesdf-esus-backup.service || true; "
            "systemctl show -p ExecMainStatus --value sesdf-esus-backup.service; "
            "journalctl --no-pager -u sesdf-esus-backup.service | tail -5",
        )
    finally:
        sh(host, f"mv /root/backup.json.orig {CONFIG}; systemctl reset-failed sesdf-esus-backup.service || true")
    lines = out.splitlines()
    assert lines[0:2] == ["failed", "2"], out
    assert "keep_daily: expected an integer, got str" in out
    assert "rode de novo o papel sesdf.esus.backup_schedule" in out


def mount_config(host):
    """The installed config with the plain copy to the share (the scenario installs the borg repository)."""
    cfg = json.loads(sh(host, f"cat {CONFIG}"))
    cfg.update(offhost_method="mount", offhost_dest=SHARE)
    sh(host, f"mkdir -p -m 0700 /root/lab-only && echo {shlex.quote(json.dumps(cfg))} > {MOUNT_CONFIG}")
    return MOUNT_CONFIG


@pytest.mark.nt("NT-inapta-4")
def test_job_runs_without_ansible_logs_to_journal_and_share_down_then_back(host):
    out = sh(
        host,
        f"python3 -c 'import ansible' 2>/dev/null && echo ANSIBLE-PRESENT; mountpoint -q {SHARE_ROOT} && echo MOUNTED; "
        f"{JOB} {mount_config(host)}; echo rc=$?; cat {FACT}",
    )
    assert "ANSIBLE-PRESENT" not in out and "MOUNTED" not in out
    st = json.loads(out[out.index("{") :])
    assert st["last_result"] == "ok" and st["verified"] is True and st["path"].startswith(DEST + "/esus_diario_")
    assert st["offhost"]["state"] == "failed", "the share is not mounted yet"
    out = sh(
        host,
        f"stat -c %a {st['path']}; journalctl --no-pager -t sesdf-esus-backup | tail -20; "
        f"mount -t tmpfs -o size=64m tmpfs {SHARE_ROOT} && mkdir -p {SHARE} && {JOB} {MOUNT_CONFIG}; cat {FACT}",
    )
    assert out.splitlines()[0] == "600"
    assert "backup ok" in out and "OFF-HOST COPY FAILED" in out
    st2 = json.loads(out[out.index("{") :])
    assert st2["offhost"]["state"] == "ok" and st2["offhost"]["last_push"]
    copy = f"{SHARE}/{os.path.basename(st2['path'])}"
    assert sh(host, f"sha256sum {copy}").split()[0] == st2["sha256"]


def test_pec_info_reports_last_success_age_size_and_offhost(host):
    pec = host.ansible("sesdf.esus.pec_info", None, become=True, check=False)["pec"]
    st = pec["backup_status"]
    assert st["last_result"] == "ok" and st["verified"] is True and st["size_bytes"] > 0
    assert st["offhost"]["state"] == "ok"
    assert st["age_hours"] is not None and 0 <= st["age_hours"] < 1


def test_sigkill_mid_dump_publishes_nothing_and_next_run_cleans_up(host):
    out = sh(
        host,
        "umask 077; mkdir -p /root/lab-only; "  # noqa: S608 - a fixed lab query
        f"printf '*:*:*:*:%s\\n' \"$(sed -n 's/^spring.datasource.password=//p' {PROPS})\" > /root/lab-only/pgpass; "
        f"U=$(sed -n 's/^spring.datasource.username=//p' {PROPS}); "
        f"ls {DEST} | grep -c 'pgdump.zst$' > /root/lab-only/before; "
        f"PGAPPNAME=lab-locker PGPASSFILE=/root/lab-only/pgpass setsid {BIN}/psql -X -w -h 127.0.0.1 -p 5433 "
        "-U $U -d esus "
        "-c 'BEGIN; LOCK TABLE tb_atend IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(30);' >/dev/null 2>&1 & LOCKER=$!; "
        f"sleep 1; setsid {SCRIPT} --config {CONFIG} >/dev/null 2>&1 & JOB=$!; "
        f"for i in $(seq 100); do ls -A {DEST} | grep -q '^.tmp-' && break; sleep 0.1; done; "
        f"ls -A {DEST} | grep -q '^.tmp-' && echo TMP-SEEN; sleep 1; "
        f"pgrep -x pg_dump >/dev/null && echo DUMP-WAITING; "
        "kill -9 $JOB; sleep 1; pgrep -x pg_dump >/dev/null && echo DUMP-ORPHANED; "
        f"PGPASSFILE=/root/lab-only/pgpass {BIN}/psql -X -w -h 127.0.0.1 -p 5433 -U $U -d esus -Atc "
        "\"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'lab-locker'\" >/dev/null; "
        "wait $LOCKER || true; "
        f"echo before=$(cat /root/lab-only/before) after=$(ls {DEST} | grep -c 'pgdump.zst$'); "
        f"{JOB} {CONFIG}; echo rc=$?; ls -A {DEST} | grep -c '^.tmp-' || true",
    )
    assert "TMP-SEEN" in out and "DUMP-WAITING" in out, out
    assert "DUMP-ORPHANED" not in out, "pg_dump must die with the killed job"
    counts = dict(kv.split("=") for kv in out.splitlines()[-3].split())
    assert counts["before"] == counts["after"], "nothing may be published by a killed run"
    assert out.splitlines()[-2] == "rc=0" and out.splitlines()[-1] == "0", "next run succeeds and removes temporaries"


def test_retention_over_40_simulated_days(host):
    sim = "/var/backups/esus-sim"
    cfg = json.loads(sh(host, f"cat {CONFIG}"))
    cfg.update(dest_dir=sim, label="sim", offhost_enabled=False, status_path="/root/lab-only/sim.fact")
    start = datetime.datetime(2026, 1, 1, 2, 30, tzinfo=datetime.UTC)
    days = [(start + datetime.timedelta(days=d)).strftime("%Y-%m-%dT%H:%M:%SZ") for d in range(40)]
    runs = " && ".join(f"{SCRIPT} --config /root/lab-only/sim.json --now {d} 2>/dev/null" for d in days)
    out = sh(
        host,
        f"mkdir -p -m 0700 /root/lab-only && echo {shlex.quote(json.dumps(cfg))} > /root/lab-only/sim.json && "
        f"{runs} && ls -A {sim}",
    )
    files = out.split()
    kept = sorted(f for f in files if f.endswith(".pgdump.zst"))
    stamps = [datetime.datetime.strptime(k.split("_")[-1].split(".")[0], "%Y%m%dT%H%M%SZ").date() for k in kept]
    last = datetime.date(2026, 2, 9)
    assert stamps[-1] == last, "the newest verified backup is never deleted"
    assert stamps[-7:] == [last - datetime.timedelta(days=i) for i in range(6, -1, -1)], "7 daily copies"
    assert len(kept) == 7 + 4, kept
    weekly = stamps[:-7]
    assert len({d.isocalendar()[:2] for d in weekly}) == 4, "4 weekly copies, one per ISO week"
    assert (last - stamps[0]).days >= 21, "weekly copies reach back beyond the daily ones"
    for k in kept:
        assert k + ".sha256" in files and k + ".manifest.json" in files
    # the sidecars of a kept backup: .sha256, .manifest.json and the collection's state beside it (.estado.tar.zst)
    stems = tuple(k[: -len(".pgdump.zst")] + "." for k in kept)
    assert all(f.startswith(stems) or f.startswith(".sesdf") for f in files), "pruned with their sidecars"


def test_canary_password_never_in_process_arguments_journal_or_cron(host):
    password = app_password(host)
    out = sh(
        host,
        "rm -f /root/lab-only/ps.log; "
        "(for i in $(seq 400); do ps -eo args >> /root/lab-only/ps.log; sleep 0.01; done) & "
        f"S=$!; {JOB} {CONFIG}; wait $S; grep -c pg_dump /root/lab-only/ps.log; cat /root/lab-only/ps.log; "
        "journalctl --no-pager -n 10000; cat /etc/systemd/system/sesdf-esus-* /etc/crontab; "
        "crontab -l -u root 2>/dev/null; "
        f"cat {CONFIG} {FACT} {DEST}/*.manifest.json",
    )
    assert int(out.splitlines()[0]) > 0, "the sampler must have seen the dump"
    assert password not in out
    assert "borg create" in out, "the installed job sends into the borg repository (its passphrase: see test_borg_*)"
