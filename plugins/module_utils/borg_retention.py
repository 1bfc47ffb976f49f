# Copyright: (c) 2026, SES-DF NTINF
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Retention of a UBS's borg repository on the backup host, which must not turn what a compromised UBS did into lost
archives (module ``sesdf.esus.borg_retention``; docs/backup.md "Retention on the backup host").

The UBS's key reaches its repository only through ``borg serve --append-only``: whatever the UBS deletes is only
marked deleted, in a transaction borg logs (``transactions``), and stays recoverable by rolling the repository back
until somebody with full rights compacts it. The backup host's own ``prune`` and ``compact`` are that somebody. So
one run, as the repository's owner on the backup host:

1. reads what happened since the last run (``_borg_history``: the transactions after the one the last run ended on,
   which append-only sessions made them, what they deleted) and compares the archive list with the one the last run
   recorded (a state file beside the repository, outside what the UBS's key reaches);
2. when the UBS deleted, replaced or unlisted an archive the last run had seen, removed an object stored before
   (a chunk under an archive), or added archives dated in the future or before the newest one already there (they
   would make ``prune`` delete the real ones): prunes nothing, compacts nothing, and returns a critical finding
   naming the archives, the transactions and the one to roll back to, with the rollback procedure;
3. otherwise prunes (daily/weekly/monthly), checks again what happened meanwhile, compacts, and records the
   transaction it ended on and the archive list.

A finding stays until the repository is rolled back (the archives are back, nothing is found) or a technician
accepts the transactions up to one id (``accept_transaction``): then they are compacted like the rest.

Standard library only.
"""

from __future__ import annotations

import datetime
import os
import shlex
import shutil

from ansible_collections.sesdf.esus.plugins.module_utils import _borg_history as bh
from ansible_collections.sesdf.esus.plugins.module_utils import _paths
from ansible_collections.sesdf.esus.plugins.module_utils._borg import LOCKED, BorgError, BorgRepo, BorgRunner
from ansible_collections.sesdf.esus.plugins.module_utils._fsutil import read_json, write_json
from ansible_collections.sesdf.esus.plugins.module_utils._timeutil import iso, parse_ts, utcnow
from ansible_collections.sesdf.esus.plugins.module_utils.pec_common import PecError

STATE_VERSION = 1
DEFAULT_LOCK_WAIT = 30
DEFAULT_FUTURE_DAYS = 1
UBS_BORG_BASE = _paths.BORG_BASE_DIR  # backup_schedule_borg_base_dir's default: the UBS's cache

OK = "ok"
CRITICAL = "critical"
ABSENT = "absent"
BUSY = "busy"


def default_state_path(repository):
    """``<parent>/.<name>.sesdf-esus-retention.json``: beside the repository, where the UBS's key (restricted to the
    repository's own directory) never reaches."""
    repo = repository.rstrip("/")
    return os.path.join(os.path.dirname(repo), f".{os.path.basename(repo)}.sesdf-esus-retention.json")


def archive_time(text):
    """borg list's ``start`` (local time of the listing process, no offset) as an ISO 8601 UTC instant."""
    when = datetime.datetime.fromisoformat(text)
    if when.tzinfo is None:
        when = when.astimezone()
    return iso(when)


def _read_state(path):
    try:
        state = read_json(path, "retention state", missing={}) or {}
    except PecError as exc:
        raise PecError(
            f"{exc.msg}; until then the retention prunes and compacts nothing in the repository (nothing is lost)"
        ) from exc
    return state if isinstance(state, dict) else {}


def rollback_procedure(repository, transaction, repo_id, base_dir=None, ubs_base_dir=UBS_BORG_BASE):
    """The documented rollback (borg's docs/usage/notes.rst "append-only mode"), step by step with this
    repository's values: [{what, where, command}]."""
    repo = shlex.quote(repository)
    home = shlex.quote(base_dir) if base_dir else "~"
    keep = shlex.quote(f"{repository.rstrip('/')}.before-rollback")
    n = int(transaction)
    return [
        {
            "what": "stop the UBS from writing: comment out its line (sesdf-esus-borg-<CNES>) in the borg user's "
            "authorized_keys, and treat the UBS server as compromised (reinstall or clean it before it writes again)",
            "where": "backup host",
            "command": "",
        },
        {
            "what": "keep the repository as it is now, for the analysis (hard links: no space used)",
            "where": "backup host, as the borg user",
            "command": f"cp -al {repo} {keep}",
        },
        {
            "what": "remove the index files (always rebuilt from the segments)",
            "where": "backup host, as the borg user",
            "command": f"rm -f {repo}/index.* {repo}/hints.* {repo}/integrity.*",
        },
        {
            "what": f"remove the segment files after transaction {n}",
            "where": "backup host, as the borg user",
            "command": f'for f in {repo}/data/*/*; do n=${{f##*/}}; [ "$n" -gt {n} ] && rm -- "$f"; done; true',
        },
        {
            "what": f"keep only the lines up to transaction {n} in the transaction log",
            "where": "backup host, as the borg user",
            "command": f"awk -v n={n} '$2 + 0 <= n' {repo}/transactions > {repo}/transactions.new && "
            f"mv {repo}/transactions.new {repo}/transactions",
        },
        {
            "what": "forget the newer state borg remembers for this repository (cache and manifest time stamp)",
            "where": "backup host, as the borg user",
            "command": f"rm -rf {home}/.cache/borg/{repo_id} {home}/.config/borg/security/{repo_id}/manifest-timestamp",
        },
        {
            "what": "list the archives: the lost ones are back",
            "where": "backup host, as the borg user",
            "command": f"borg list {repo}",
        },
        {
            "what": "once the UBS server is clean: forget its newer state too, put its authorized_keys line back and "
            "run the backup_schedule role (the UBS sends again the days the rollback removed)",
            "where": "UBS server, as root",
            "command": f"rm -rf {ubs_base_dir}/.cache/borg/{repo_id} "
            f"{ubs_base_dir}/.config/borg/security/{repo_id}/manifest-timestamp",
        },
    ]


class Retention:
    """One run on one repository (``params``: the module's options)."""

    def __init__(self, params, check_mode=False, now=None, runner=None):
        self.p = params
        self.path = params["repository"].rstrip("/") or "/"
        self.prefix = params["prefix"]
        self.check_mode = check_mode
        self.now = now or utcnow()
        self.state_path = params.get("state_path") or default_state_path(self.path)
        self.accept = int(params.get("accept_transaction") or 0)
        self._listed_now = None
        future = params.get("future_days")
        self.future = datetime.timedelta(days=int(DEFAULT_FUTURE_DAYS if future is None else future))
        self.repo = BorgRepo(
            self.path,
            None,
            params.get("base_dir") or None,
            borg=params.get("borg_path") or "borg",
            timeout=int(params.get("timeout") or 6 * 3600),
            runner=runner or BorgRunner(),
            passphrase=params["passphrase"],
            lock_wait=int(params.get("lock_wait") if params.get("lock_wait") is not None else DEFAULT_LOCK_WAIT),
        )
        self.out = {
            "changed": False,
            "status": OK,
            "critical": False,
            "repository": self.path,
            "pruned": [],
            "compacted": False,
            "append_only_cleared": False,
            "finding": None,
            "report": None,
            "warnings": [],
            "state_path": self.state_path,
        }

    # ------------------------------------------------------------------------------------------------ the run
    def run(self):
        try:
            self.config = bh.read_config(self.path)
        except bh.NotARepository as exc:
            if not exc.missing:
                raise
            self.out.update(status=ABSENT, msg=f"no repository at {self.path} yet (the UBS makes it on its first copy)")
            return self.out
        state = _read_state(self.state_path)
        if state and state.get("repository_id") != self.config["id"]:
            self.out["warnings"].append(
                f"the retention state {self.state_path} was for another repository (id {state.get('repository_id')}): "
                "this one is checked from its last full-rights transaction"
            )
            state = {}
        self.state = state
        last = bh.last_committed(self.path, self.config)
        boundary = state.get("boundary") if state else None
        inventory = dict(state.get("inventory") or {}) if state else {}
        if boundary is not None and boundary > last:
            self.out["warnings"].append(
                f"the repository ends at transaction {last}, before the one the last run ended on ({boundary}): it "
                "was rolled back; the archive list is taken again"
            )
            boundary, inventory = None, {}
        self.baseline = boundary is None
        if boundary is None:
            boundary = bh.last_unlogged(self.path, self.config)
        self.boundary, self.inventory = boundary, inventory
        txns, last = bh.history(self.path, boundary, self.config)
        removed, again, last_put = bh.suspicious(txns)
        try:
            current = self._list()
        except BorgError as exc:
            if exc.kind != LOCKED:
                raise
            return self._busy(txns, removed, again, last, exc)
        finding = self._finding(txns, removed, again, last_put, current, last)
        if finding:
            return self._refuse(finding)
        return self._prune_and_compact(txns, current, last)

    def _list(self):
        archives = self.repo.archives(self.prefix)
        listed = {a["name"]: {"id": a["id"], "start": archive_time(a["start"])} for a in archives}
        self._listed_now = set(listed)
        return listed

    # ------------------------------------------------------------------------------------------ what is found
    def _accepted(self, txn):
        return txn is not None and txn <= self.accept

    def _finding(self, txns, removed, again, last_put, current, last):
        """What the UBS did that retention must not make permanent, or None. ``current`` None: the archive list
        could not be read (only what the segments show is judged)."""
        ids = {bytes.fromhex(rec["id"]): name for name, rec in self.inventory.items()}
        lost = []
        for name, rec in sorted(self.inventory.items()):
            key = bytes.fromhex(rec["id"])
            txn = removed.get(key)
            if current is None:
                if txn is None:
                    continue
                how = "replaced" if again.get(key) else "deleted"
            elif name not in current:
                how = "deleted" if txn is not None else "unlisted"
            elif current[name]["id"] != rec["id"] or txn is not None:
                how = "replaced"
            else:
                continue
            if self._accepted(txn) or (txn is None and self.accept > self.boundary):
                continue
            lost.append({"name": name, "how": how, "transaction": txn})
        objects = sorted({t for key, t in removed.items() if key not in ids and not self._accepted(t)})
        count = sum(1 for key, t in removed.items() if key not in ids and not self._accepted(t))
        odd = []
        known = [parse_ts(rec.get("start")) for rec in self.inventory.values()]
        newest = max((t for t in known if t), default=None)
        for name, rec in sorted((current or {}).items()):
            if name in self.inventory:
                continue
            start = parse_ts(rec["start"])
            position = last_put.get(bytes.fromhex(rec["id"]))
            txn = txns[position].id if position is not None else None
            if start and start > self.now + self.future:
                why = "future"
            elif start and newest and not self.baseline and start <= newest:
                why = "backdated"
            else:
                continue
            if not self._accepted(txn):
                odd.append({"name": name, "why": why, "start": rec["start"], "transaction": txn})
        if not (lost or count or odd):
            return None
        times = {t.id: t.time for t in txns}
        involved = sorted({x["transaction"] for x in lost + odd if x["transaction"] is not None} | set(objects))
        order = [t.id for t in txns]
        if involved:
            index = order.index(involved[0])
            rollback_to = order[index - 1] if index > 0 else self.boundary
        else:
            rollback_to = self.boundary
        return {
            "lost": lost,
            "suspicious": odd,
            "objects_removed": count,
            "transactions": [{"id": t, "time": times.get(t)} for t in involved],
            "rollback_to": rollback_to,
            "rollback_time": times.get(rollback_to),
            "checked_from": self.boundary,
            "last_transaction": last,
        }

    def _names_at(self, transaction):
        """The archive names the repository held at ``transaction``, read from a scratch copy rolled back to it (hard
        links to its segments up to that transaction beside the repository, borg rebuilding the index there, a
        base directory of its own), removed afterwards: what the documented rollback brings back. None when it
        cannot be read (the reason is a warning)."""
        root = os.path.join(os.path.dirname(self.path), f".{os.path.basename(self.path)}.sesdf-esus-rollback-check")
        scratch, per_dir = os.path.join(root, "repo"), self.config["segments_per_dir"]
        shutil.rmtree(root, ignore_errors=True)
        try:
            os.makedirs(os.path.join(scratch, "data"), mode=0o700)
            shutil.copy2(os.path.join(self.path, "config"), os.path.join(scratch, "config"))
            for number in bh.segment_numbers(self.path):
                if number <= transaction:
                    target = bh.segment_path(scratch, number, per_dir)
                    os.makedirs(os.path.dirname(target), mode=0o700, exist_ok=True)
                    os.link(bh.segment_path(self.path, number, per_dir), target)
            copy = BorgRepo(
                scratch,
                None,
                os.path.join(root, "base"),
                borg=self.repo.borg,
                timeout=self.repo.timeout,
                runner=self.repo.runner,
                passphrase=self.repo.passphrase,
            )
            return sorted(a["name"] for a in copy.archives(self.prefix))
        except (OSError, PecError) as exc:
            self.out["warnings"].append(
                f"the archives a rollback to transaction {transaction} brings back could not be listed on a scratch "
                f"copy ({getattr(exc, 'msg', None) or exc}); follow the procedure and run borg list"
            )
            return None
        finally:
            shutil.rmtree(root, ignore_errors=True)

    def _message(self, finding):
        parts = []
        for item in finding["lost"]:
            parts.append(f"{item['name']} {item['how']}")
        for item in finding["suspicious"]:
            parts.append(f"{item['name']} added with a {item['why']} date ({item['start']})")
        if finding["objects_removed"] and parts:
            parts.append(
                f"{finding['objects_removed']} more stored object(s) removed (the data of these archives, or data "
                "under archives still listed)"
            )
        elif finding["objects_removed"]:
            parts.append(
                f"{finding['objects_removed']} stored object(s) removed (data under archives still listed, or "
                "archives the last check had not seen)"
            )
        txns = ", ".join(str(t["id"]) for t in finding["transactions"]) or "not known"
        back = finding.get("recoverable")
        back = f", which brings back {', '.join(back)}" if back else ""
        return (
            f"CRITICAL: the UBS changed what its repository {self.path} held since transaction "
            f"{finding['checked_from']}, through its append-only access: {'; '.join(parts)} (transactions {txns}). "
            "Nothing was pruned or compacted, so the repository can still be rolled back to transaction "
            f"{finding['rollback_to']}{back} (see 'procedure'; docs/backup.md 'Archives deleted by the UBS'). "
            "To accept the loss instead, set backup_schedule_borg_retention_accept_transaction: "
            f"{finding['last_transaction']} for this UBS and run the role again"
        )

    def _report(self, finding):
        """What the UBS's server records for the report (pec_state concern borg_retention): no time, no size."""
        if not finding:
            return {"status": OK, "critical": False, "repository": self.path}
        return {
            "status": CRITICAL,
            "critical": True,
            "repository": self.path,
            "lost": finding["lost"],
            "suspicious": finding["suspicious"],
            "objects_removed": finding["objects_removed"],
            "transactions": finding["transactions"],
            "rollback_to": finding["rollback_to"],
            "recoverable": finding.get("recoverable"),
            "last_transaction": finding["last_transaction"],
        }

    def _refuse(self, finding, pruned=(), compact_pending=False):
        """Nothing compacted: the finding, the archives the rollback brings back, its procedure, and the state kept
        where the last good run left it (less what this run pruned itself) so that every run finds it again until it
        is resolved."""
        listed = self._names_at(finding["rollback_to"]) if self._listed_now is not None else None
        finding["recoverable"] = None if listed is None else [n for n in listed if n not in self._listed_now]
        procedure = rollback_procedure(
            self.path,
            finding["rollback_to"],
            self.config["id"],
            self.p.get("base_dir"),
            self.p.get("ubs_base_dir") or UBS_BORG_BASE,
        )
        report = self._report(finding)
        self.out.update(
            status=CRITICAL,
            critical=True,
            finding=finding,
            procedure=procedure,
            report=report,
            msg=self._message(finding),
        )
        self._save(
            {
                "version": STATE_VERSION,
                "repository_id": self.config["id"],
                "boundary": self.boundary,
                "inventory": {n: r for n, r in self.inventory.items() if n not in pruned},
                "compact_pending": compact_pending or bool((self.state or {}).get("compact_pending")),
                "report": report,
            }
        )
        return self.out

    def _busy(self, txns, removed, again, last, exc):
        """The UBS (or another borg) holds the lock: judge what the files alone show; else keep the last report."""
        finding = self._finding(txns, removed, again, {}, None, last)
        if finding:
            self.out["warnings"].append("the repository was locked: the archive list was not read this time")
            return self._refuse(finding)
        self.out.update(
            status=BUSY,
            report=(self.state or {}).get("report"),
            msg=f"the repository {self.path} is in use (another borg holds its lock: {exc.msg}); nothing was pruned "
            "or compacted; the next run retries",
        )
        return self.out

    # ----------------------------------------------------------------------------------------- prune, compact
    def _prune_and_compact(self, txns, current, last):
        p = self.p
        if self.config["append_only"]:
            # append_only in the repository's own config would make this host's prune append-only too (logged as if
            # the UBS did it) and compact a no-op; the UBS's key stays append-only through its forced command
            self.out.update(append_only_cleared=True, changed=True)
            if not self.check_mode:
                self.repo.config_set("append_only", "0")
        try:
            pruned = self.repo.prune_archives(
                self.prefix,
                max(int(p.get("keep_daily") or 1), 1),
                int(p.get("keep_weekly") or 0),
                int(p.get("keep_monthly") or 0),
                dry_run=self.check_mode,
            )
        except BorgError as exc:
            if exc.kind != LOCKED:
                raise
            # the check found nothing; the UBS took the lock since: prune and compact wait for the next run
            self.out.update(
                status=BUSY,
                report=self._report(None),
                msg=f"{self.path}: the UBS deleted nothing since transaction {self.boundary}, but another borg took "
                f"the repository's lock ({exc.msg}); nothing was pruned or compacted, the next run retries",
            )
            return self.out
        self.out["pruned"] = pruned
        # what to compact: this run's prune, what an earlier run could not compact, and what the UBS deleted since the
        # last check and nothing forbids compacting (its checkpoints, transactions a technician accepted)
        deleted = any(tag == bh.TAG_DELETE and key != bh.MANIFEST_ID for t in txns for tag, key in t.ops)
        pending = bool(pruned) or deleted or bool((self.state or {}).get("compact_pending"))
        report = self._report(None)
        self.out["report"] = report
        if self.check_mode:
            self.out.update(changed=self.out["changed"] or pending, compacted=False, would_compact=pending)
            self._save(self._state_after(last, current, pruned, report=report))
            self.out["msg"] = self._done_message(pruned, pending, would=True)
            return self.out
        current_now = current
        if pruned:
            self.out["changed"] = True
            # a UBS transaction may have come between the check and the prune: check again before compacting (this
            # run's own prune is no finding: the archives it pruned leave the list it compares with)
            self.inventory = {n: r for n, r in self.inventory.items() if n not in pruned}
            txns, last = bh.history(self.path, self.boundary, self.config)
            removed, again, last_put = bh.suspicious(txns)
            current_now = self._list_after_prune(current, pruned)
            finding = self._finding(txns, removed, again, last_put, current_now, last)
            if finding:
                return self._refuse(finding, pruned=pruned, compact_pending=True)
        if pending:
            try:
                self.repo.compact()
            except BorgError as exc:
                if exc.kind != LOCKED:
                    raise
                self.out["warnings"].append(f"compact waits for the next run: {exc.msg}")
                self.out["msg"] = self._done_message(pruned, False) + " (compact waits for the next run)"
                self._save(self._state_after(last, current, pruned, compact_pending=True, report=report))
                return self.out
            self.out.update(compacted=True, changed=True)
        end = bh.last_committed(self.path, self.config)
        unchecked = [t for t in bh.current_log(bh.logged_lines(self.path), end) if last < t <= end]
        if unchecked:
            self.out["warnings"].append(
                f"the UBS wrote transaction(s) {', '.join(map(str, sorted(unchecked)))} while this run compacted: "
                "they were not checked; compare 'borg list' with the UBS's backups"
            )
        self._save(self._state_after(end, current_now, pruned, report=report))
        self.out["msg"] = self._done_message(pruned, pending)
        return self.out

    def _list_after_prune(self, before, pruned):
        try:
            return self._list()
        except BorgError:
            return {n: r for n, r in before.items() if n not in pruned}

    def _state_after(self, boundary, current, pruned, compact_pending=False, report=None):
        inventory = {n: r for n, r in current.items() if n not in pruned}
        return {
            "version": STATE_VERSION,
            "repository_id": self.config["id"],
            "boundary": boundary,
            "inventory": inventory,
            "compact_pending": compact_pending,
            "report": report,
        }

    def _done_message(self, pruned, compacted, would=False):
        verb = "would prune" if would else "pruned"
        what = f"{verb} {len(pruned)} archive(s)" if pruned else "nothing to prune"
        done = ("and would compact" if would else "and compacted") if compacted else "nothing to compact"
        return f"{self.path}: the UBS deleted nothing since transaction {self.boundary}; {what}, {done}"

    def _save(self, state):
        """Record the state (only when it differs; in check mode only say that it would)."""
        if state == self.state:
            return
        self.out["changed"] = True
        if not self.check_mode:
            write_json(self.state_path, state, mode=0o600)


def run(params, check_mode=False, now=None, runner=None):
    """One retention run (see the module's documentation). Raises PecError with what to do when the repository
    cannot be opened."""
    retention = Retention(params, check_mode=check_mode, now=now, runner=runner)
    try:
        return retention.run()
    except BorgError as exc:
        raise PecError(
            exc.msg.replace("; the local backups are untouched", "")
            + "; nothing was pruned or compacted (the retention runs again with the role)",
            kind=exc.kind,
        ) from exc
