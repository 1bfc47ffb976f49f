#!/usr/bin/python
# Copyright: (c) 2026, SES-DF NTINF
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: borg_retention
short_description: Prune and compact a UBS's borg repository on the backup host, never what the UBS deleted
version_added: 0.4.0
description:
  - Runs on the backup host, as the repository's owner (the borg user), for one UBS's repository that the UBS reaches
    only through C(borg serve --append-only). In append-only mode what the UBS deletes is only marked deleted and can
    be rolled back, until somebody with full rights compacts the repository; this module is that somebody, so before
    it prunes or compacts it checks what the UBS did since its last run.
  - It reads the transactions after the one its last run ended on from the repository's files (the segments'
    headers and borg's C(transactions) log, without the key) and compares the archive list (C(borg list)) with the
    one its last run recorded in O(state_path), beside the repository, out of the UBS's reach.
  - When the UBS deleted, replaced or unlisted an archive the last run had seen, removed stored data under an
    archive, or added archives dated in the future or before the newest one already there (which would make
    C(prune) delete the real ones), it prunes nothing and compacts nothing, and returns a critical RV(finding) with
    the archives, the transactions, the one to roll back to and the rollback RV(procedure), and lists the archives
    that rollback brings back on a scratch copy (hard links to the segments up to that transaction, beside the
    repository, removed afterwards). Every run finds it again until the repository is rolled back or the
    transactions are accepted (O(accept_transaction)).
  - Otherwise it sets the repository's own C(append_only) to 0 when it is 1 (the UBS stays append-only through its
    forced command), runs C(borg prune) (daily, weekly, monthly; the newest archive always kept), checks again what
    the UBS did meanwhile, runs C(borg compact), and records the transaction it ended on and the archive list.
  - The first run on a repository (no state yet) checks the transactions after the last one a full-rights session
    made; it has no archive list to compare with, so the scratch copy is what names the archives of a deletion.
  - The passphrase is written to borg's standard input (C(BORG_PASSPHRASE_FD=0)), never in argv, in the environment
    or in a file on the backup host.
author:
  - SES-DF NTINF (@sesdf-ntinf)
extends_documentation_fragment:
  - sesdf.esus.attributes
  - sesdf.esus.attributes.platform
attributes:
  check_mode:
    support: full
    details: >-
      Reads the transactions and the archive list, finds what a real run finds, and lists what C(borg prune
      --dry-run) would prune; prunes, compacts and records nothing.
  diff_mode:
    support: none
options:
  repository:
    description:
      - The repository's directory on the backup host. A directory that does not exist yet is no error (the UBS makes
        the repository on its first copy), and nothing is done.
    type: path
    required: true
  prefix:
    description:
      - The UBS's archive names begin with this (C(esus-<CNES>-)); prune keeps and deletes only these.
    type: str
    required: true
  passphrase:
    description:
      - The repository's passphrase (the role reads it from the UBS's passphrase file).
    type: str
    required: true
  keep_daily:
    description:
      - Daily archives kept (at least 1, so the newest is never pruned).
    type: int
    default: 7
  keep_weekly:
    description:
      - Weekly archives kept.
    type: int
    default: 4
  keep_monthly:
    description:
      - Monthly archives kept.
    type: int
    default: 12
  state_path:
    description:
      - Where the run records the transaction it ended on, the archive list and the last report (0600). Default
        C(<parent>/.<name>.sesdf-esus-retention.json) beside the repository, where the UBS's key does not reach.
    type: path
  accept_transaction:
    description:
      - Accept what the UBS did up to this transaction (the id a finding's message gives). It is no longer a finding,
        and the next compaction makes it permanent. C(0) accepts nothing. An id before the finding's transactions
        accepts nothing of them.
    type: int
    default: 0
  future_days:
    description:
      - A new archive dated more than this many days after this host's clock is a finding (C(prune) would keep it
        as the newest and delete real ones). Raise it only where the UBS's clock runs ahead on purpose (a lab that
        simulates days).
    type: int
    default: 1
  lock_wait:
    description:
      - Seconds a borg command waits for the lock of a borg that is using the repository (the UBS sending). A run
        that cannot get it prunes and compacts nothing (RV(status=busy)) but still reports what the files show.
    type: int
    default: 30
  base_dir:
    description:
      - C(BORG_BASE_DIR) of this host's borg (its cache and security directory); unset keeps the user's home.
    type: path
  ubs_base_dir:
    description:
      - The UBS's C(BORG_BASE_DIR) (C(backup_schedule_borg_base_dir)), named in the rollback procedure's last step.
    type: path
    default: /var/lib/sesdf-esus/borg
  borg_path:
    description:
      - The borg program.
    type: path
    default: borg
  timeout:
    description:
      - Seconds a single borg command may run.
    type: int
    default: 21600
notes:
  - docs/backup.md "Retention on the backup host" and "Archives deleted by the UBS"; docs/pt-BR/backup.md for the
    technician.
"""

EXAMPLES = r"""
- name: Retention of this UBS's repository on the backup host
  sesdf.esus.borg_retention:
    repository: /srv/borg/ubs-0020002
    prefix: esus-0020002-
    passphrase: "{{ passphrase.content | b64decode }}"
    keep_daily: 7
    keep_weekly: 4
    keep_monthly: 12
  become: true
  become_user: borg
  delegate_to: backup-host
  no_log: true
"""

RETURN = r"""
status:
  description: >-
    C(ok) (nothing found: pruned and compacted), C(critical) (the UBS changed what the repository held: nothing
    pruned or compacted), C(busy) (another borg held the lock), C(absent) (no repository yet).
  returned: always
  type: str
  sample: ok
critical:
  description: Whether there is a finding.
  returned: always
  type: bool
pruned:
  description: Archives pruned (in check mode, that would be).
  returned: always
  type: list
  elements: str
compacted:
  description: Whether C(borg compact) ran.
  returned: always
  type: bool
append_only_cleared:
  description: Whether the repository's own C(append_only) was (or would be) set to 0.
  returned: always
  type: bool
finding:
  description: What the UBS did (null without a finding).
  returned: always
  type: dict
  contains:
    lost:
      description: >-
        Archives the last run saw, each with C(name), C(how) (deleted, replaced, unlisted) and C(transaction).
      type: list
    suspicious:
      description: >-
        Archives added with a C(future) or C(backdated) date (C(name), C(why), C(start), C(transaction)).
      type: list
    objects_removed:
      description: >-
        Stored objects removed that are no archive the last run saw (data under archives; on a first run, the
        archives too).
      type: int
    transactions:
      description: The UBS's transactions that did it (C(id), C(time) in UTC).
      type: list
    rollback_to:
      description: The last transaction before them; the repository rolled back to it holds the archives again.
      type: int
    recoverable:
      description: >-
        The archives a rollback to RV(finding.rollback_to) brings back, read on a scratch copy rolled back to it
        (null when that copy could not be read; a warning says why).
      type: list
      elements: str
    rollback_time:
      description: When that transaction was committed (UTC; null when borg did not log it).
      type: str
    checked_from:
      description: The transaction the check started after (where the last run ended).
      type: int
    last_transaction:
      description: The repository's last transaction (the value that accepts everything found).
      type: int
procedure:
  description: The rollback, step by step, with this repository's values (C(what), C(where), C(command)).
  returned: when critical
  type: list
  elements: dict
report:
  description: >-
    What the UBS's server records for the regional report (M(sesdf.esus.pec_state), concern C(borg_retention)): the
    status, and with a finding its archives, transactions and rollback point; nothing that changes from a run to the
    next on the same repository.
  returned: always
  type: dict
state_path:
  description: The state file.
  returned: always
  type: str
msg:
  description: What was done or found, and with a finding what to do.
  returned: always
  type: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.sesdf.esus.plugins.module_utils import borg_retention
from ansible_collections.sesdf.esus.plugins.module_utils.pec_common import PecError


def main():
    module = AnsibleModule(
        argument_spec=dict(
            repository=dict(type="path", required=True),
            prefix=dict(type="str", required=True),
            passphrase=dict(type="str", required=True, no_log=True),
            keep_daily=dict(type="int", default=7),
            keep_weekly=dict(type="int", default=4),
            keep_monthly=dict(type="int", default=12),
            state_path=dict(type="path"),
            accept_transaction=dict(type="int", default=0),
            future_days=dict(type="int", default=1),
            lock_wait=dict(type="int", default=30),
            base_dir=dict(type="path"),
            ubs_base_dir=dict(type="path", default=borg_retention.UBS_BORG_BASE),
            borg_path=dict(type="path", default="borg"),
            timeout=dict(type="int", default=21600),
        ),
        supports_check_mode=True,
    )
    if module.params["keep_daily"] < 1:
        module.fail_json(msg="keep_daily must be at least 1: the newest copy is never pruned")
    if module.params["future_days"] < 0:
        module.fail_json(msg="future_days must be 0 or more")
    if not module.params["prefix"].strip():
        module.fail_json(msg="prefix is empty: it would prune every archive of the repository; give esus-<CNES>-")
    try:
        result = borg_retention.run(module.params, check_mode=module.check_mode)
    except PecError as exc:
        module.fail_json(msg=exc.msg, repository=module.params["repository"])
    for warning in result.pop("warnings", []):
        module.warn(warning)
    if result["critical"]:
        module.warn(result["msg"])
    module.exit_json(**result)


if __name__ == "__main__":
    main()
