"""The borg repository of the daily job: over SSH on the backup host (the UBS's key forced to an append-only
``borg serve`` of its own repository) and on the IT share; what the technician and the manager rely on.

Each test runs the job as cron does, with a variant of the installed config (its own local directory, status file
and simulated days), so the scenario's own status is left to test_backup_schedule.py.
"""

from __future__ import annotations

import json
import os
import shlex

import testinfra.utils.ansible_runner
from labhost import sh

RUNNER = testinfra.utils.ansible_runner.AnsibleRunner(os.environ["MOLECULE_INVENTORY_FILE"])
testinfra_hosts = RUNNER.get_hosts("ubs")
BKP = "sesdf-backupschedule-bkp"
SCRIPT = "/usr/local/sbin/sesdf-esus-backup"
CONFIG = "/etc/sesdf-esus/backup.json"
PASSFILE = "/etc/sesdf-esus/borg.passphrase"
REPO = "ssh://borg@sesdf-backupschedule-bkp/srv/borg/ubs-0020002"
SHARE = "/mnt/compartilhamento-ti/ubs-0020002"
LAB = "/root/lab-only"
SSH = "ssh -i /root/.ssh/sesdf-esus-borg -o BatchMode=yes -o UserKnownHostsFile=/etc/sesdf-esus/borg_known_hosts"
BORG_ENV = f"BORG_PASSCOMMAND='cat {PASSFILE}' BORG_BASE_DIR=/var/lib/sesdf-esus/borg BORG_RSH='{SSH}'"


def variant(host, name, **over):
    """A copy of the installed config with ``over``; its own local directory and status file under LAB."""
    cfg = json.loads(sh(host, f"cat {CONFIG}"))
    cfg.update(dest_dir=f"/var/backups/esus-{name}", status_path=f"{LAB}/{name}.fact")
    cfg.update(over)
    path = f"{LAB}/{name}.json"
    sh(host, f"mkdir -p -m 0700 {LAB} && echo {shlex.quote(json.dumps(cfg))} > {path}")
    return path, cfg


def run_day(host, config, day):
    """The job as cron runs it, at 02:30 UTC of ``day``; (rc, status)."""
    out = sh(host, f"systemd-cat -t sesdf-esus-backup {SCRIPT} --config {config} --now {day}T02:30:00Z; echo rc=$?")
    cfg = json.loads(sh(host, f"cat {config}"))
    return int(out.strip().splitlines()[-1][3:]), json.loads(sh(host, f"cat {cfg['status_path']}"))


def local_backups(host, cfg):
    return sh(host, f"ls {cfg['dest_dir']} | grep 'pgdump.zst$' || true").split()


def test_the_ubs_key_is_forced_to_an_append_only_borg_serve_of_its_repository(host):
    line = sh(BKP, "cat ~borg/.ssh/authorized_keys").strip().splitlines()[-1]
    assert line.startswith(
        'command="borg serve --restrict-to-repository /srv/borg/ubs-0020002 --append-only",restrict ssh-ed25519 '
    )
    assert line.endswith(" sesdf-esus-borg-0020002")
    out = sh(
        host,
        f"{SSH} borg@sesdf-backupschedule-bkp 'rm -rf /srv/borg/ubs-0020002' </dev/null >/dev/null 2>&1; "
        f"{BORG_ENV} BORG_DELETE_I_KNOW_WHAT_I_AM_DOING=YES borg delete {REPO} 2>&1; echo delete-rc=$?; "
        f"{BORG_ENV} borg list ssh://borg@sesdf-backupschedule-bkp/srv/borg/ubs-0030003 2>&1; echo other-rc=$?; "
        f"{BORG_ENV} borg list --short {REPO} | wc -l",
    )
    assert "append-only mode" in out and "delete-rc=2" in out, out
    assert "other-rc=2" in out, "another repository path is refused to this key"
    assert int(out.strip().splitlines()[-1]) >= 1, "the repository and its archives are still there"
    assert sh(BKP, "test -f /srv/borg/ubs-0020002/config && echo present").strip() == "present"


def test_simulated_days_over_ssh_the_host_down_two_days_then_back(host):
    config, cfg = variant(host, "borgssh")
    rc, st = run_day(host, config, "2027-01-01")
    assert rc == 0 and st["offhost"]["state"] == "ok" and st["offhost"]["pending_days"] == 0, st["offhost"]
    drill = st["restore_drill"]
    assert drill["result"] == "ok" and drill["finished_at"] == "2027-01-01T02:30:00Z", drill
    assert drill["tables"] > 10 and drill["compared"] is True and drill["duration_s"] > 0
    assert drill["hashes_compared"] is True and "hash_mismatches" not in drill, "rows hashed as in the archive"
    assert st["repo_check"]["result"] == "ok" and st["repo_check"]["verify_data"] is True
    sh(BKP, "systemctl stop ssh.service")
    try:
        for n, day in enumerate(("2027-01-02", "2027-01-03"), start=1):
            rc, st = run_day(host, config, day)
            assert rc == 3, "backup ok, off-host copy failing"
            assert st["last_result"] == "ok" and st["offhost"]["state"] == "failing"
            assert st["offhost"]["pending_days"] == n and "cannot be reached" in st["offhost"]["error"]
            assert st["offhost"]["last_success"] == "2027-01-01T02:30:00Z"
    finally:
        sh(BKP, "systemctl start ssh.service")
    rc, st = run_day(host, config, "2027-01-04")
    assert rc == 0 and st["offhost"]["state"] == "ok" and st["offhost"]["pending_days"] == 0
    assert [a[-16:-8] for a in st["offhost"]["sent"]] == ["20270102", "20270103", "20270104"], (
        "missing days, oldest first"
    )
    names = sh(host, f"{BORG_ENV} borg list --short --glob-archives 'esus-0020002-diario-2027*' {REPO}").split()
    assert [n[-16:-8] for n in names] == [f"202701{d:02d}" for d in range(1, 5)], "nothing lost"
    assert len(local_backups(host, cfg)) == 4, "the local backups stay as they were"


def test_repository_on_the_share_damaged_chunk_found_by_the_check(host):
    sh(host, "mountpoint -q /mnt/compartilhamento-ti || mount -t tmpfs -o size=64m tmpfs /mnt/compartilhamento-ti")
    config, cfg = variant(
        host,
        "borgshare",
        offhost_method="borg_mount",
        offhost_dest=f"{SHARE}/borg",
        borg_state_path=f"{LAB}/borgshare-state.json",
        borg_key_export=f"{LAB}/borgshare.key",
        borg_prune=True,
    )
    rc, st = run_day(host, config, "2026-03-01")
    assert rc == 0 and st["offhost"]["state"] == "ok", st["offhost"]
    assert st["offhost"]["method"] == "borg_mount" and st["offhost"]["repository"] == f"{SHARE}/borg"
    # the role recorded the vault export (the scenario's backup_schedule_borg_export_dir): the repository was made
    assert st["offhost"]["escrow"]["escrowed"] is True and st["offhost"]["escrow"]["sources"] == ["vault_export"]
    assert st["restore_drill"]["result"] == "ok" and st["repo_check"]["result"] == "ok"
    sh(
        host,
        f"f=$(ls -S {SHARE}/borg/data/*/* | head -1); s=$(stat -c %s $f); "
        "dd if=/dev/zero of=$f bs=1 count=64 seek=$((s / 2)) conv=notrunc status=none",
    )
    before = local_backups(host, cfg)
    rc, st = run_day(host, config, "2026-03-08")
    assert st["repo_check"]["result"] == "failed" and st["repo_check"]["checked_at"] == "2026-03-08T02:30:00Z"
    assert "damage" in st["repo_check"]["error"]
    assert set(before) <= set(local_backups(host, cfg)), "local backups untouched"
    journal = sh(host, "journalctl --no-pager -t sesdf-esus-backup | tail -30")
    assert "REPO CHECK FAILED" in journal


def test_without_escrow_no_repository_is_made_the_status_says_so_local_kept(host):
    sh(host, "mountpoint -q /mnt/compartilhamento-ti || mount -t tmpfs -o size=64m tmpfs /mnt/compartilhamento-ti")
    config, cfg = variant(
        host,
        "semcustodia",
        offhost_method="borg_mount",
        offhost_dest=f"{SHARE}/borg-semcustodia",
        borg_state_path=f"{LAB}/semcustodia-state.json",
        borg_escrow_path=f"{LAB}/nenhum-escrow.json",
    )
    rc, st = run_day(host, config, "2026-03-02")
    assert rc == 3 and st["last_result"] == "ok" and st["offhost"]["state"] == "failing", st["offhost"]
    assert (
        "não estão sob custódia" in st["offhost"]["error"]
        and "backup_schedule_borg_export_dir" in st["offhost"]["error"]
    )
    assert st["offhost"]["escrow"]["escrowed"] is False
    assert sh(host, f"test -e {SHARE}/borg-semcustodia && echo made || echo none") == "none", (
        "nothing at the destination"
    )
    assert local_backups(host, cfg), "the local backup made"


def test_wrong_passphrase_another_ubs_and_a_full_share_fail_clearly_local_kept(host):
    sh(host, f"umask 077; echo nao-e-a-frase > {LAB}/errada.pass")
    shared = {
        "offhost_method": "borg_mount",
        "offhost_dest": f"{SHARE}/borg",
        "dest_dir": "/var/backups/esus-borgshare",
        "borg_state_path": f"{LAB}/borgshare-state.json",
    }
    config, cfg = variant(host, "errada", borg_passphrase_file=f"{LAB}/errada.pass", **shared)
    before = local_backups(host, cfg)
    rc, st = run_day(host, config, "2026-03-09")
    assert rc == 3 and st["last_result"] == "ok" and st["offhost"]["state"] == "failing"
    assert "does not open with this UBS's passphrase" in st["offhost"]["error"]
    assert set(before) < set(local_backups(host, cfg)), "today's local backup made, none removed"
    other = {**shared, "cnes": "0030003", "borg_state_path": f"{LAB}/outra-state.json"}
    config, _cfg = variant(host, "outra", **other)
    rc, st = run_day(host, config, "2026-03-10")
    assert rc == 3 and "archives of another UBS" in st["offhost"]["error"], st["offhost"]
    # the share full (filled by another file): a clear error, the local backup made, nothing lost
    config, cfg = variant(host, "cheio", **shared)
    before = local_backups(host, cfg)
    sh(host, f"dd if=/dev/zero of={SHARE}/enche bs=64k status=none 2>/dev/null; true")
    try:
        rc, st = run_day(host, config, "2026-03-11")
    finally:
        sh(host, f"rm -f {SHARE}/enche")
    assert rc == 3 and st["offhost"]["state"] == "failing" and "destination is full" in st["offhost"]["error"], st
    assert set(before) < set(local_backups(host, cfg))


def test_the_passphrase_is_never_in_process_arguments_journal_cron_or_status(host):
    secret = sh(host, f"cat {PASSFILE}").strip()
    assert len(secret) >= 32
    config, _cfg = variant(host, "borgps")
    out = sh(
        host,
        f"rm -f {LAB}/ps-borg.log; (for i in $(seq 300); do ps -eo args >> {LAB}/ps-borg.log; sleep 0.01; done) & "
        f"S=$!; systemd-cat -t sesdf-esus-backup {SCRIPT} --config {config} --now 2027-02-01T02:30:00Z; wait $S; "
        f"grep -c 'borg create' {LAB}/ps-borg.log; cat {LAB}/ps-borg.log; journalctl --no-pager -n 10000; "
        f"cat /etc/cron.d/* {CONFIG} {LAB}/borgps.fact /var/lib/sesdf-esus/borg-repo.json",
    )
    assert int(out.splitlines()[0]) > 0, "the sampler must have seen borg create"
    assert secret not in out
    assert sh(host, f"stat -c '%a %U' {PASSFILE} /etc/sesdf-esus/borg.key").split() == ["600", "root", "600", "root"]
