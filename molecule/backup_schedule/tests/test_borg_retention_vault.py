"""The role's side of the borg repository, after the job's simulated days: the retention it applies on the backup
host (delegated, as the borg user) and the file it exports for IT's vault, with which the repository is read from
another machine. Runs after test_borg_repository.py (its archives are in the repository too)."""

from __future__ import annotations

import datetime
import json
import os
import subprocess

import pytest
import testinfra.utils.ansible_runner
from labhost import sh, sql
from test_borg_repository import BKP, BORG_ENV, REPO, run_day, variant

RUNNER = testinfra.utils.ansible_runner.AnsibleRunner(os.environ["MOLECULE_INVENTORY_FILE"])
testinfra_hosts = RUNNER.get_hosts("ubs")
UBS = "sesdf-backupschedule-ubs"
REPO_PATH = "/srv/borg/ubs-0020002"
PASSFILE = "/etc/sesdf-esus/borg.passphrase"
KEYFILE = "/etc/sesdf-esus/borg.key"
SCENARIO = os.path.join(os.path.dirname(__file__), "..")
KEEP = {"daily": 3, "weekly": 2, "monthly": 3}
# Mondays 1, 8, 15 and 22 March 2027, Saturday 20 and Sunday 21: ISO weeks 9, 10, 11, 11, 11, 12
DAYS = ["2027-03-01", "2027-03-08", "2027-03-15", "2027-03-20", "2027-03-21", "2027-03-22"]
# borg prune's periods (borg/helpers/misc.py PRUNING_PATTERNS), applied in this order
PERIODS = (("daily", "%Y-%m-%d"), ("weekly", "%G-%V"), ("monthly", "%Y-%m"))


def expected_kept(archives, offset):
    """What borg prune --keep-daily/weekly/monthly KEEP keeps (borg 1.2's prune_split): per rule, newest first, the
    newest archive of each period not kept by an earlier rule, up to N; the oldest when N is not reached."""
    ordered = sorted(archives, key=lambda a: a["time"], reverse=True)
    kept = set()
    for rule, pattern in PERIODS:
        last, count, item = None, 0, None
        for item in ordered:
            period = (datetime.datetime.fromisoformat(item["time"]) + offset).strftime(pattern)
            if period != last:
                last = period
                if item["name"] not in kept:
                    kept.add(item["name"])
                    count += 1
                    if count == KEEP[rule]:
                        break
        if item is not None and count < KEEP[rule] and item["name"] not in kept:
            kept.add(item["name"])
    return kept


def archives(host):
    listed = json.loads(sh(host, f"{BORG_ENV} borg list --json --glob-archives 'esus-0020002-*' {REPO}"))
    return [{"name": a["name"], "time": a["time"]} for a in listed["archives"] if not a["name"].endswith(".checkpoint")]


def utc_offset(target):
    """The host's local time offset (borg list prints the UBS's local time; prune takes days on the backup host's)."""
    text = sh(target, "date +%z")
    sign = -1 if text.startswith("-") else 1
    return sign * datetime.timedelta(hours=int(text[1:3]), minutes=int(text[3:5]))


def role_run(*extra):
    """The scenario's converge (the role), as IT runs it again, verbose; the CompletedProcess."""
    return subprocess.run(
        ["ansible-playbook", "-vvv", "-i", os.environ["MOLECULE_INVENTORY_FILE"],
         os.path.join(SCENARIO, "converge.yml"), *extra],
        capture_output=True, text=True, check=False,
    )  # fmt: skip


@pytest.fixture(scope="module")
def pruned(host):
    """Six simulated days (each dump holding rows of its own, so each archive has chunks of its own), then the role
    with keep 3 daily, 2 weekly, 3 monthly: (archives before, after, expected, repository bytes before, after,
    the role's output)."""
    config, _cfg = variant(host, "retention", borg_drill_every_days=0, borg_check_every_days=0)
    sql(host, "CREATE TABLE lab_retention (t text); GRANT SELECT ON lab_retention TO PUBLIC")
    try:
        for day in DAYS:
            sql(host, "TRUNCATE lab_retention; INSERT INTO lab_retention SELECT md5(random()::text || g) "
                "FROM generate_series(1, 200000) g")  # fmt: skip
            rc, st = run_day(host, config, day)
            assert rc == 0 and st["offhost"]["state"] == "ok", st["offhost"]
    finally:
        sql(host, "DROP TABLE IF EXISTS lab_retention")
    before = archives(host)
    expected = expected_kept(before, utc_offset(BKP) - utc_offset(host))
    size = f"du -sb {REPO_PATH} | cut -f1"
    bytes_before = int(sh(BKP, size))
    proc = role_run(
        "-e", json.dumps({f"backup_schedule_borg_keep_{k}": v for k, v in KEEP.items()}),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-4000:]
    return before, archives(host), expected, bytes_before, int(sh(BKP, size)), proc


def test_the_role_prunes_on_the_backup_host_exactly_what_the_policy_keeps(host, pruned):
    before, after, expected, bytes_before, bytes_after, _proc = pruned
    names = {a["name"] for a in after}
    newest = max(before, key=lambda a: a["time"])["name"]
    assert newest.endswith("-20270322T023000Z") and newest in names, "the newest verified archive is never pruned"
    assert names == expected, f"kept {sorted(names)}, the policy keeps {sorted(expected)}"
    days = sorted(n[-16:-8] for n in names if n[-16:-12] == "2027" and n[-12:-10] == "03")
    assert days == ["20270301", "20270308", "20270320", "20270321", "20270322"], "3 daily + 2 weekly in March"
    assert len(names) < len(before), "something was pruned"
    assert bytes_after < bytes_before - 1_000_000, f"compact freed space: {bytes_before} -> {bytes_after} bytes"


def test_the_ubs_key_still_cannot_delete_after_the_role_pruned(host, pruned):
    _before, after, *_rest = pruned
    out = sh(host, f"{BORG_ENV} BORG_DELETE_I_KNOW_WHAT_I_AM_DOING=YES borg delete {REPO} 2>&1; echo delete-rc=$?")
    assert "append-only mode" in out and "delete-rc=2" in out, out
    assert {a["name"] for a in archives(host)} == {a["name"] for a in after}, "the archives are all still there"
    line = sh(BKP, "grep sesdf-esus-borg-0020002 ~borg/.ssh/authorized_keys")
    assert "--append-only" in line and line.startswith('command="borg serve --restrict-to-repository ')


def export_file():
    """Where the role wrote the vault file (the scenario's backup_schedule_borg_export_dir, on the control node)."""
    directory = RUNNER.get_variables(UBS).get("backup_schedule_borg_export_dir")
    directory = directory or os.path.join(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"], "vault")
    return os.path.join(directory, f"{UBS}-borg.txt")


def test_the_vault_file_is_0600_holds_passphrase_and_key_and_never_reaches_the_output(host, pruned):
    proc = pruned[-1]
    path = export_file()
    assert os.stat(path).st_mode & 0o777 == 0o600
    with open(path, encoding="utf-8") as handle:
        lines = handle.read().splitlines()
    secret = sh(host, f"cat {PASSFILE}").strip()
    assert lines[1] == secret, "the passphrase on the line after the comment"
    assert "\n".join(lines[2:]).strip() == sh(host, f"cat {KEYFILE}").strip(), "the exported repokey"
    assert lines[2].startswith("BORG_KEY ")
    assert secret not in proc.stdout + proc.stderr, "no_log: the passphrase is not in the role's -vvv output"
    assert "BORG_KEY" not in proc.stdout + proc.stderr


def test_with_only_the_vault_file_the_repository_is_read_on_another_machine(host, pruned):
    """On the backup host, as another user with a fresh borg base directory, on a copy of the repository that lost
    its key (repokey: the key lives in the repository's config): the file's key imported, its passphrase used."""
    with open(export_file(), encoding="utf-8") as handle:
        lines = handle.read().splitlines()
    home = "/home/vaultcheck"
    sh(BKP, f"id vaultcheck >/dev/null 2>&1 || useradd -m vaultcheck; rm -rf {home}/repo {home}/.borgbase; "
       f"cp -a {REPO_PATH} {home}/repo && chown -R vaultcheck: {home}/repo && "
       "python3 -c \"import configparser, sys; c = configparser.ConfigParser(); c.read(sys.argv[1]); "
       "c.set('repository', 'key', ''); c.write(open(sys.argv[1], 'w'))\" " + f"{home}/repo/config")  # fmt: skip
    as_user = f"runuser -u vaultcheck -- env BORG_BASE_DIR={home}/.borgbase BORG_PASSCOMMAND='cat {home}/pass'"
    sh(BKP, f"runuser -u vaultcheck -- bash -c 'umask 077; cat > {home}/pass'", stdin=lines[1] + "\n")
    sh(BKP, f"runuser -u vaultcheck -- bash -c 'umask 077; cat > {home}/borg.key'", stdin="\n".join(lines[2:]) + "\n")
    without = sh(BKP, f"{as_user} borg list --short {home}/repo 2>&1; echo rc=$?")
    assert "rc=0" not in without, "the copy has no key: the vault's key is what opens it"
    newest = max(pruned[1], key=lambda a: a["time"])["name"]
    out = sh(
        BKP,
        f"{as_user} borg key import {home}/repo {home}/borg.key && "
        f"{as_user} borg list --short {home}/repo && "
        f"{as_user} borg extract --stdout {home}/repo::{newest} esus.pgdump | sha256sum",
    )
    listed, digest = out.splitlines()[:-1], out.splitlines()[-1].split()[0]
    assert newest in listed
    local = f"/var/backups/esus-retention/esus_diario_{newest[-16:]}.pgdump.zst"
    assert digest == sh(host, f"zstd -dc {local} | sha256sum").split()[0], "the same dump as the UBS's local archive"


def test_the_role_refuses_a_borg_repository_without_escrow_and_changes_nothing(host, pruned):
    """Neither the vault export nor a passphrase from the inventory: the role stops with what to do (pt-BR and
    English) before touching the repository's passphrase; the escrow recorded by the earlier runs stays."""
    secret = sh(host, f"cat {PASSFILE}").strip()
    escrow = sh(host, "cat /etc/sesdf-esus/borg-escrow.json")
    proc = role_run("-e", json.dumps({"backup_schedule_borg_export_dir": "", "backup_schedule_borg_passphrase": ""}))
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "Cópia externa borg recusada" in out and "Borg off-host copy refused" in out, out[-3000:]
    assert "backup_schedule_borg_export_dir" in out and "backup_schedule_borg_passphrase" in out
    assert sh(host, f"cat {PASSFILE}").strip() == secret and secret not in out
    assert sh(host, "cat /etc/sesdf-esus/borg-escrow.json") == escrow


RETENTION_FACT = "/etc/ansible/facts.d/sesdf_esus_borg_retention.fact"


@pytest.mark.nt("NT-inapta-4")
def test_an_archive_the_ubs_key_deletes_stops_the_retention_until_the_loss_is_accepted(host, pruned):
    """The UBS's own key marks an archive deleted (append-only); the role run again warns CRITICAL, prunes and
    compacts nothing (every segment file stays), and the UBS's state for the report names the archive; accepting
    the transaction the state gives clears it (the compaction then makes the loss permanent)."""
    _before, after, *_rest = pruned
    victim = min(after, key=lambda a: a["time"])["name"]
    assert sh(host, f"{BORG_ENV} borg delete {REPO}::{victim} 2>&1; echo rc=$?").endswith("rc=0")
    segments = sh(BKP, f"find {REPO_PATH}/data -type f | sort")
    proc = role_run()
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    assert "CRITICAL: the UBS changed what its repository" in out and victim in out, out[-4000:]
    assert sh(BKP, f"find {REPO_PATH}/data -type f | sort") == segments, "nothing compacted"
    state = json.loads(sh(host, f"cat {RETENTION_FACT}"))["data"]
    assert state["critical"] is True and state["lost"][0]["name"] == victim and state["lost"][0]["how"] == "deleted"
    assert sh(host, f"cat {PASSFILE}").strip() not in out
    accept = state["last_transaction"]
    proc = role_run("-e", json.dumps({"backup_schedule_borg_retention_accept_transaction": accept}))
    assert proc.returncode == 0 and "CRITICAL" not in proc.stdout, proc.stdout[-4000:]
    state = json.loads(sh(host, f"cat {RETENTION_FACT}"))["data"]
    assert state == {"status": "ok", "critical": False, "repository": REPO_PATH}
