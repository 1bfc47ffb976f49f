#!/usr/bin/python
# Copyright: (c) 2026, SES-DF NTINF
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: pec_rebuild
short_description: The steps of rebuilding a lost UBS server from its off-host copy
version_added: 0.4.0
description:
  - One step per call of the C(sesdf.esus.rebuild) role (docs/rebuild.md), on the new server.
  - O(action=preflight) (read-only) says what the server holds (a PEC, its version, whether its database holds data,
    rows in O(data_tables)), what the rebuild record on it says is done, and the decision - C(rebuild), C(resume)
    (this rebuild already restored the database) or C(refuse) (a PEC holding data, unless O(replace)), with what it
    found.
  - O(action=fetch) lists the off-host copy of this UBS (O(source) C(borg_ssh) or C(borg_mount) - the daily job's
    repository, refused when it is another UBS's or the passphrase does not open it; C(mount) - the daily job's plain
    copies on a share mounted on the server) and brings the newest backup (or the newest of O(archive_date)) into
    O(work_dir) - the dump as a local archive with its sha256, the collection's state tree and what proves a restore.
    An archive that cannot be read whole is skipped for the one before, and C(fetch.skipped) says which and why. A
    fetch already done is reused.
  - O(action=install) runs the PEC installer of the version the backup records (C(fetch.pec_version)), found in
    O(installer_dir) (IT's share) and checked against O(installer_sha256) or that directory's C(SHA256SUMS), never a
    password on its command line. Nothing is run when the PEC is already at that version.
  - O(action=restore) restores the fetched dump into C(<db>_rebuild), compares its per-table row counts and
    ordered-row hashes with the backup's, and only when they are equal puts it in place of the PEC's database (kept
    aside as C(<db>_pre_rebuild_<UTC>) with O(keep_previous)). The application must be stopped.
  - O(action=link) points C(LINKINSTALACAO) at this server (O(link), or the old value with its host replaced by
    O(link_host)) when the read-only probe (module_utils C(pec_compat), capability C(installation_link)) supports
    it; otherwise nothing is written and RV(supported) is false (the role records the manual step). The application
    must be stopped (it caches its settings).
  - O(action=state) puts the collection's own state (lotes ledger, state files, job configurations, state records)
    back where it was, as the copy recorded it; O(state_skip) are never put back.
  - O(action=record) records a step (O(step), O(step_data)) in the rebuild record
    (C(<facts_dir>/sesdf_esus_rebuild.fact), root-only) and, with O(finish), the rebuild in its history.
author:
  - SES-DF NTINF (@sesdf-ntinf)
extends_documentation_fragment:
  - sesdf.esus.pec
  - sesdf.esus.schema_trust
  - sesdf.esus.attributes
  - sesdf.esus.attributes.platform
attributes:
  check_mode:
    support: full
    details:
      - O(action=preflight) is read-only. O(action=fetch) lists the copy and says which archive it would bring;
        the others report what they would do and change nothing.
  diff_mode:
    support: none
options:
  action:
    description: The step.
    type: str
    choices: [preflight, fetch, install, restore, link, state, record]
    required: true
  facts_dir:
    description: Directory of the server's state records (the rebuild record among them).
    type: path
    default: /etc/ansible/facts.d
  replace:
    description: O(action=preflight) - go on over a PEC whose database holds data (it is kept aside by the restore).
    type: bool
    default: false
  data_tables:
    description:
      - O(action=preflight) - tables whose rows mean the PEC holds data (those absent are skipped; C(tb_cidadao) is
        the test double's name, unconfirmed on a real PEC).
    type: list
    elements: str
    default: [tb_dado_transp, tb_lote_transp, tb_cidadao]
  source:
    description: Where the off-host copy is (O(action=fetch)).
    type: str
    choices: [borg_ssh, borg_mount, mount]
    default: borg_ssh
  location:
    description: The repository (C(ssh://user@host[:port]/path) or a path) for the borg sources.
    type: str
  share_dir:
    description: The directory of the daily copies on a share mounted on this server (O(source=mount)).
    type: path
  age_identity:
    description: An age identity file on this server, for copies encrypted to IT's key (O(source=mount)).
    type: path
  cnes:
    description: This UBS's CNES (7 digits); its archives are C(esus-<CNES>-<label>-<UTC>).
    type: str
  label:
    description: The label of the daily backups.
    type: str
    default: diario
  archive_date:
    description: Restore the newest backup of this day (AAAA-MM-DD, UTC) instead of the newest one.
    type: str
  work_dir:
    description: Root-only directory on this server where the copy is brought (room for the dump).
    type: path
    default: /var/backups/esus/reconstrucao
  passphrase_file:
    description:
      - The repository passphrase file on this server (root-only; read by C(BORG_PASSCOMMAND)); default, the daily
        job's.
    type: path
  borg_base_dir:
    description: borg's base directory on this server; default, the daily job's.
    type: path
  ssh_key:
    description: This server's SSH key for the backup host.
    type: path
    default: /root/.ssh/sesdf-esus-borg
  known_hosts:
    description: The known-hosts file of the backup host; default, the daily job's.
    type: path
  allow_without_state:
    description:
      - Accept an archive made before the daily copy carried the collection's state (the ledger is not put back).
    type: bool
    default: false
  pec_version:
    description: The PEC version to install when the backup does not record it.
    type: str
  zstd_path:
    description: The zstd program.
    type: path
  installer_dir:
    description: IT's share (a directory on this server) with the installers and their C(SHA256SUMS).
    type: path
  installer_name:
    description: The installer's file name, C({version}) replaced by the version.
    type: str
    default: eSUS-AB-PEC-{version}-Linux64.jar
  installer_sha256:
    description: The installer's SHA-256, when the share has no C(SHA256SUMS) line for it.
    type: str
  installer_flags:
    description: The installer's flags (never a password).
    type: list
    elements: str
    default: [-console, -continue]
  installer_timeout:
    description: Seconds the installer may run.
    type: int
    default: 3600
  java_bin:
    description: The java that launches the installer (default - chosen by the version, as the upgrade does).
    type: path
  java8_bin:
    description: A Java 8 for a 4.x installer.
    type: path
  keep_previous:
    description: O(action=restore) - keep the database the restore replaces (C(<db>_pre_rebuild_<UTC>)).
    type: bool
    default: false
  maintenance_db:
    description: The maintenance database of the PEC's PostgreSQL.
    type: str
    default: postgres
  db_timeout:
    description: Seconds a database step may take (the restore of a multi-GB base takes long).
    type: int
    default: 21600
  link:
    description: O(action=link) - the installation link to set (default - the old one with its host replaced).
    type: str
  link_host:
    description: O(action=link) - the new server's address for the default link.
    type: str
  state_skip:
    description: O(action=state) - file names never put back.
    type: list
    elements: str
    default: [sesdf_esus_backup.fact, sesdf_esus_rebuild.fact]
  state_dir:
    description: The collection's state directory on this server.
    type: path
    default: /var/lib/sesdf-esus
  config_dir:
    description: The collection's configuration directory on this server.
    type: path
    default: /etc/sesdf-esus
  step:
    description: O(action=record) - the step done.
    type: str
  step_data:
    description: O(action=record) - what the step found (no secret).
    type: dict
    default: {}
  finish:
    description: O(action=record) - the summary of the rebuild that ended, for its history.
    type: dict
"""

EXAMPLES = r"""
- name: What the new server holds
  sesdf.esus.pec_rebuild:
    action: preflight
  register: preflight

- name: Bring the newest backup of this UBS from the backup host
  sesdf.esus.pec_rebuild:
    action: fetch
    source: borg_ssh
    location: ssh://borg@backup.example/srv/borg/ubs-0020002
    cnes: "0020002"
"""

RETURN = r"""
target:
  description: O(action=preflight) - what the server holds (pec, version, database with counts and size, has_data).
  returned: action=preflight
  type: dict
decision:
  description: O(action=preflight) - C(rebuild), C(resume) or C(refuse).
  returned: action=preflight
  type: str
done:
  description: O(action=preflight) - the steps the rebuild record says are done.
  returned: action=preflight
  type: list
  elements: str
fetch:
  description:
    - O(action=fetch) - archive, created_at, pec_version, dump, dump_sha256, tree, state_files, proof, skipped (the
      archives passed over, each with why), candidates (check mode).
  returned: action=fetch
  type: dict
install:
  description: O(action=install) - installer (path, sha256), java, version before and after.
  returned: action=install
  type: dict
restore:
  description: O(action=restore) - database, previous_db, proof (tables, rows, counts_compared, hashes_compared,
    hash_tables, count_mismatches, hash_mismatches).
  returned: action=restore
  type: dict
supported:
  description: O(action=link) - whether the probe allowed the write.
  returned: action=link
  type: bool
link:
  description: O(action=link) - before, wanted, after, compat (the probe's verdict).
  returned: action=link
  type: dict
state:
  description: O(action=state) - created, replaced, same, skipped (target paths), copy_created_at, copy_host.
  returned: action=state
  type: dict
record:
  description: O(action=record) - the rebuild record's data after this call.
  returned: action=record
  type: dict
msg:
  description: What was done or found.
  returned: always
  type: str
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.sesdf.esus.plugins.module_utils import rebuild as rb
from ansible_collections.sesdf.esus.plugins.module_utils._fsutil import read_json, write_json
from ansible_collections.sesdf.esus.plugins.module_utils._paths import (
    CONFIG_DIR,
    FACTS_DIR,
    REBUILD_WORK_DIR,
    STATE_DIR,
)
from ansible_collections.sesdf.esus.plugins.module_utils.pec_archive import find_tool
from ansible_collections.sesdf.esus.plugins.module_utils.pec_common import (
    PecError,
    normalize_version,
    pec_argument_spec,
)
from ansible_collections.sesdf.esus.plugins.module_utils.pec_compat import Probe, schema_trust_argument_spec
from ansible_collections.sesdf.esus.plugins.module_utils.pec_db import PgClient
from ansible_collections.sesdf.esus.plugins.module_utils.pec_host import service_state
from ansible_collections.sesdf.esus.plugins.module_utils.pec_install import PecInstall
from ansible_collections.sesdf.esus.plugins.module_utils.pec_migration import set_config
from ansible_collections.sesdf.esus.plugins.module_utils.pec_state import state_path, write_state


def _record(params):
    try:
        document = read_json(state_path(params["facts_dir"], rb.CONCERN), "rebuild record") or {}
    except PecError:
        document = {}
    return document.get("data") or {}


def _fetched(params):
    fetched = read_json(os.path.join(params["work_dir"], rb.FETCHED), "rebuild fetch record")
    if not fetched:
        raise PecError(f"nothing fetched in {params['work_dir']} yet: the fetch step runs first")
    return fetched


def _app_stopped(params, why):
    app = service_state(params["app_service"])
    if app["active_state"] in ("active", "activating", "reloading"):
        raise PecError(f"{app['name']} is running; stop it before {why} (systemctl stop {app['name']}); nothing done")


def preflight(module):
    p = module.params
    install = PecInstall(p)
    target = rb.target_state(install, service_state(p["app_service"]), p["data_tables"])
    done = rb.done_steps(_record(p))
    decision, msg = rb.decide(target, done, p["replace"])
    return {"changed": False, "target": target, "decision": decision, "done": done, "msg": msg}


def fetch(module):
    from ansible_collections.sesdf.esus.plugins.module_utils import pec_backup, pec_offhost

    p = dict(module.params)
    p["zstd"] = find_tool("zstd", p.get("zstd_path"))
    if p["source"] == "mount":
        if not p.get("share_dir"):
            raise PecError("source mount needs share_dir (the share of the daily copies, mounted on this server)")
        got = rb.fetch_share(p, check_mode=module.check_mode)
    else:
        if not p.get("location"):
            raise PecError(f"source {p['source']} needs location (backup_schedule_offhost_dest of this UBS)")
        job = pec_backup.BackupJobConfig(dest_dir="")
        params = {
            "offhost_method": p["source"],
            "offhost_dest": p["location"],
            "borg_passphrase_file": p["passphrase_file"] or job.borg_passphrase_file,
            "borg_base_dir": p["borg_base_dir"] or job.borg_base_dir,
            "borg_ssh_key": p["ssh_key"],
            "borg_known_hosts": p["known_hosts"] or job.borg_known_hosts,
            "cnes": p.get("cnes"),
        }
        if not os.path.isfile(params["borg_passphrase_file"]):
            raise PecError(
                f"the repository passphrase is not at {params['borg_passphrase_file']}: the role writes it first"
            )
        repo = pec_offhost.borg_repo(params)
        got = rb.fetch_borg(p, repo, pec_offhost.borg_prefix(params), check_mode=module.check_mode)
    if p.get("pec_version"):
        got["pec_version"] = normalize_version(p["pec_version"])
        if not module.check_mode and os.path.exists(os.path.join(p["work_dir"], rb.FETCHED)):
            record = read_json(os.path.join(p["work_dir"], rb.FETCHED), "rebuild fetch record")
            record["pec_version"] = got["pec_version"]
            write_json(os.path.join(p["work_dir"], rb.FETCHED), record)
    changed = got.pop("changed")
    skipped = got.get("skipped") or []
    for entry in skipped:
        module.warn(f"backup {entry['archive']} passed over (the one before it is used): {entry['error']}")
    verb = "would bring" if module.check_mode else ("brought" if changed else "already has")
    msg = f"{verb} {got['archive']}"
    if skipped:
        msg += f" (the newest, {skipped[0]['archive']}, could not be read whole: {skipped[0]['error']})"
    return {"changed": changed, "fetch": got, "msg": msg}


def install(module):
    from ansible_collections.sesdf.esus.plugins.module_utils import pec_upgrade_gates as gates_mod
    from ansible_collections.sesdf.esus.plugins.module_utils.pec_upgrade import (
        HostRunner,
        adapt_flags,
        run_installer,
        supported_flags,
        tail,
    )

    p = module.params
    fetched = _fetched(p)
    version = normalize_version(fetched["pec_version"])
    pec = PecInstall(p)
    before = None
    if pec.present:
        try:
            before = normalize_version(pec.config().get("version"))
        except PecError:
            before = None
    if before == version:
        return {"changed": False, "install": {"before": before, "after": before}, "msg": f"PEC {version} installed"}
    if not p.get("installer_dir"):
        raise PecError("installer_dir is required: IT's share with the PEC installers (rebuild_installer_dir)")
    jar = rb.installer(p["installer_dir"], version, p["installer_name"], p.get("installer_sha256"))
    gate = gates_mod.select_java(
        version, HostRunner(), java_bin=p.get("java_bin"), java8_bin=p.get("java8_bin"), bundled_java=None
    )
    if gate["status"] == gates_mod.FAIL or not gate.get("path"):
        raise PecError(f"no java to launch the installer of {version}: {gate['msg']}")
    result = {"installer": {"path": jar["path"], "sha256": jar["sha256"]}, "java": gate["path"], "before": before}
    if module.check_mode:
        return {"changed": True, "install": result, "msg": f"would install PEC {version} with {jar['path']}"}
    flags, dropped = adapt_flags(p["installer_flags"], supported_flags(gate["path"], jar["path"]))
    if dropped:
        module.warn(f"the installer's -help does not list {', '.join(dropped)}: not passed")
    result["installer_flags"] = flags
    rc, output, _cmd = run_installer(
        gate["path"], jar["path"], flags, os.path.dirname(jar["path"]), p["installer_timeout"]
    )
    secrets = PecInstall(p).secret_values()
    lines = tail(output, 20)
    for secret in secrets:
        lines = [line.replace(secret, "********") for line in lines]
    if rc != 0:
        raise PecError(f"the installer of PEC {version} failed with exit code {rc}: {' | '.join(lines[-5:])}")
    after = normalize_version(PecInstall(p).config().get("version"))
    if after != version:
        raise PecError(f"the installer exited 0 but {p['pec_config_path']} says {after}, not {version}")
    result["after"] = after
    return {"changed": True, "install": result, "msg": f"PEC {version} installed"}


def restore(module):
    p = dict(module.params)
    p["zstd"] = find_tool("zstd", p.get("zstd_path"))
    fetched = _fetched(p)
    _app_stopped(p, "restoring the database")
    pec = PecInstall(p)
    conn = pec.connection()
    with PgClient(pec.pg_bin_dir(), conn, timeout=p["db_timeout"]) as client:
        result = rb.restore_and_prove(p, client, conn, fetched, check_mode=module.check_mode)
    proof = result.get("proof") or {}
    msg = result.get("would") or (
        f"{fetched['archive']} restored and proved: {proof.get('tables')} tables, {proof.get('rows')} rows, "
        f"ordered-row hashes of {proof.get('hash_tables')} tables equal to the backup's"
    )
    return {"changed": True, "restore": result, "msg": msg}


def link(module):
    p = module.params
    if not p.get("link") and not p.get("link_host"):
        raise PecError("link or link_host is required: the new server's address for LINKINSTALACAO")
    _app_stopped(p, "changing LINKINSTALACAO (the application caches its settings)")
    pec = PecInstall(p)
    with PgClient(pec.pg_bin_dir(), pec.connection(), timeout=60) as client:
        probe = Probe(client, trust=p["schema_trust"], surveyed=p["capability_profiles"])
        verdict = probe.check("installation_link")
        before = None
        if "co_config_sistema" in probe.columns().get("tb_config_sistema", {}):
            before = client.scalar("SELECT ds_texto FROM tb_config_sistema WHERE co_config_sistema = 'LINKINSTALACAO'")
        wanted = rb.new_link(before, p.get("link_host") or "", p.get("link"))
        out = {"before": before, "wanted": wanted, "after": before, "compat": verdict}
        if not verdict["supported"]:
            return {
                "changed": False,
                "supported": False,
                "link": out,
                "msg": f"LINKINSTALACAO not written ({verdict['reason']}); set it to {wanted} by hand",
            }
        done = set_config(client, {"LINKINSTALACAO": wanted}, check_mode=module.check_mode)
        out["after"] = wanted
    return {
        "changed": done["changed"],
        "supported": True,
        "link": out,
        "msg": f"LINKINSTALACAO {before!r} -> {wanted!r}" if done["changed"] else f"LINKINSTALACAO is {wanted!r}",
    }


def state(module):
    p = module.params
    fetched = _fetched(p)
    if not fetched.get("tree"):
        return {"changed": False, "state": {}, "msg": "the copy holds no state of the collection: nothing put back"}
    where = {"state": p["state_dir"], "config": p["config_dir"], "facts": p["facts_dir"]}
    done = rb.put_state_back(fetched["tree"], where, p["state_skip"], check_mode=module.check_mode)
    if done["old_rebuilds"] and not module.check_mode:
        data = rb.next_record(_record(p), old_rebuilds=done["old_rebuilds"])
        write_state(p["facts_dir"], rb.CONCERN, data, refresh_hours=float("inf"))
    changed = bool(done["created"] or done["replaced"])
    return {
        "changed": changed,
        "state": done,
        "msg": f"{len(done['created'])} created, {len(done['replaced'])} replaced, {len(done['same'])} as they were",
    }


def record(module):
    p = module.params
    if p.get("step") and p["step"] not in rb.STEPS:
        raise PecError(f"unknown step {p['step']!r}: {', '.join(rb.STEPS)}")
    data = rb.next_record(_record(p), step=p.get("step"), step_data=p["step_data"], finish=p.get("finish"))
    changed, _before, after = write_state(
        p["facts_dir"], rb.CONCERN, data, refresh_hours=float("inf"), check_mode=module.check_mode
    )
    return {"changed": changed, "record": after.get("data"), "msg": f"step {p.get('step') or 'summary'} recorded"}


ACTIONS = {
    "preflight": preflight,
    "fetch": fetch,
    "install": install,
    "restore": restore,
    "link": link,
    "state": state,
    "record": record,
}


def main():
    argument_spec = pec_argument_spec()
    argument_spec.update(schema_trust_argument_spec())
    argument_spec.update(
        action=dict(type="str", required=True, choices=list(ACTIONS)),
        facts_dir=dict(type="path", default=FACTS_DIR),
        replace=dict(type="bool", default=False),
        data_tables=dict(type="list", elements="str", default=list(rb.DEFAULT_DATA_TABLES)),
        source=dict(type="str", choices=list(rb.SOURCES), default="borg_ssh"),
        location=dict(type="str"),
        share_dir=dict(type="path"),
        age_identity=dict(type="path"),
        cnes=dict(type="str"),
        label=dict(type="str", default="diario"),
        archive_date=dict(type="str"),
        work_dir=dict(type="path", default=REBUILD_WORK_DIR),
        passphrase_file=dict(type="path", no_log=False),
        borg_base_dir=dict(type="path"),
        ssh_key=dict(type="path", default="/root/.ssh/sesdf-esus-borg"),
        known_hosts=dict(type="path"),
        allow_without_state=dict(type="bool", default=False),
        pec_version=dict(type="str"),
        zstd_path=dict(type="path"),
        installer_dir=dict(type="path"),
        installer_name=dict(type="str", default="eSUS-AB-PEC-{version}-Linux64.jar"),
        installer_sha256=dict(type="str"),
        installer_flags=dict(type="list", elements="str", default=["-console", "-continue"]),
        installer_timeout=dict(type="int", default=3600),
        java_bin=dict(type="path"),
        java8_bin=dict(type="path"),
        keep_previous=dict(type="bool", default=False),
        maintenance_db=dict(type="str", default="postgres"),
        db_timeout=dict(type="int", default=21600),
        link=dict(type="str"),
        link_host=dict(type="str"),
        state_skip=dict(type="list", elements="str", default=list(rb.DEFAULT_STATE_SKIP)),
        state_dir=dict(type="path", default=STATE_DIR),
        config_dir=dict(type="path", default=CONFIG_DIR),
        step=dict(type="str"),
        step_data=dict(type="dict", default={}),
        finish=dict(type="dict"),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    try:
        result = ACTIONS[module.params["action"]](module)
    except PecError as exc:
        module.fail_json(msg=exc.msg, **exc.details)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
