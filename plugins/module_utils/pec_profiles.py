# Copyright: (c) 2026, SES-DF NTINF
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Consultation mode for a migrated UBS: every lotação gets one view-only profile, administrators lose their role.

The schema (tb_ator_papel, tb_lotacao, rl_ator_papel_perfil, tb_perfil, tb_perfil_recurso, tb_recurso, tb_adm_geral,
tb_adm_municipal) is the one in pec-facts.md as modelled by the PEC test double; it is unconfirmed for 4.5.2.
``read_state`` also reads the names seen on 5.5 (module_utils pec_schema); the write is only ever made where
pec_compat's change_profiles profile (4.x only) matches, so on 5.x it ends in the refusal with the manual path.

Flow: ``read_state`` (queries only) -> ``plan`` (pure) -> ``write_snapshot`` (JSON of what will be removed,
root-only) -> ``apply_sql`` (one transaction that first checks nothing changed since the read).
"""

from __future__ import annotations

import datetime
import json
import os

from ansible_collections.sesdf.esus.plugins.module_utils._fsutil import atomic_write
from ansible_collections.sesdf.esus.plugins.module_utils.pec_common import PecError
from ansible_collections.sesdf.esus.plugins.module_utils.pec_compat import Probe
from ansible_collections.sesdf.esus.plugins.module_utils.pec_db import sql_literal
from ansible_collections.sesdf.esus.plugins.module_utils.pec_schema import LiveSchema

DEFAULT_PROFILE_NAME = "Visualização de prontuário"
DEFAULT_PROFILE_TYPE = "LOTACAO"
DEFAULT_RESOURCES = ("PRONTUARIO", "CIDADAO")
DEFAULT_OPERATIONS = ("VISUALIZAR",)

CHANGED_MARKER = "sesdf-esus: profile assignments changed since they were read"

# The fields and join columns read_state reads, on the double's 4.x schema or the one seen on 5.5 (module_utils
# pec_schema). Reading works on both; writing (apply_sql) only where pec_compat's change_profiles profile matches.
STATE_FIELDS = (
    "role_type",
    "professional_name",
    "municipal_admin_place",
    "profile_type",
    "profile_active",
    "grant_resource",
    "resource_names",
)
STATE_COLUMNS = {
    "tb_ator_papel": ["co_seq_ator_papel", "co_prof"],
    "tb_prof": ["co_seq_prof", "co_usuario"],
    "tb_usuario": ["co_seq_usuario", "ds_login"],
    "tb_lotacao": ["co_ator_papel", "co_cbo", "co_unidade_saude"],
    "tb_cbo": ["co_cbo", "co_cbo_2002"],
    "tb_unidade_saude": ["co_seq_unidade_saude", "nu_cnes"],
    "tb_adm_geral": ["co_ator_papel"],
    "tb_adm_municipal": ["co_ator_papel"],
    "rl_ator_papel_perfil": ["co_ator_papel", "co_perfil"],
    "tb_perfil": ["co_seq_perfil", "no_perfil"],
    "tb_perfil_recurso": ["co_perfil", "tp_operacao"],
}


def fingerprint_sql(resolved):
    """One expression, used when reading and again inside the write transaction: any change to the assignments,
    the administrator tables or the set of lotações in between aborts the transaction."""
    place = resolved.expr("municipal_admin_place", "m")
    return (
        "SELECT md5(concat_ws('|',"
        " (SELECT string_agg(co_ator_papel || ':' || co_perfil, ',' ORDER BY co_ator_papel, co_perfil)"
        " FROM rl_ator_papel_perfil),"
        " (SELECT string_agg(co_ator_papel::text, ',' ORDER BY co_ator_papel) FROM tb_adm_geral),"
        f" (SELECT string_agg(m.co_ator_papel || ':' || {place}, ',' ORDER BY m.co_ator_papel)"
        " FROM tb_adm_municipal m),"
        " (SELECT string_agg(co_ator_papel::text, ',' ORDER BY co_ator_papel) FROM tb_lotacao)))"
    )


def papeis_sql(resolved):
    return (
        f"SELECT ap.co_seq_ator_papel, {resolved.expr('role_type', 'ap')}, ap.co_prof, u.ds_login,"
        f" {resolved.expr('professional_name', 'p')},"
        " (l.co_ator_papel IS NOT NULL), b.co_cbo_2002, us.nu_cnes,"
        f" (g.co_ator_papel IS NOT NULL), {resolved.expr('municipal_admin_place', 'm')}"
        " FROM tb_ator_papel ap"
        " JOIN tb_prof p ON p.co_seq_prof = ap.co_prof"
        " LEFT JOIN tb_usuario u ON u.co_seq_usuario = p.co_usuario"
        " LEFT JOIN tb_lotacao l ON l.co_ator_papel = ap.co_seq_ator_papel"
        " LEFT JOIN tb_cbo b ON b.co_cbo = l.co_cbo"
        " LEFT JOIN tb_unidade_saude us ON us.co_seq_unidade_saude = l.co_unidade_saude"
        " LEFT JOIN tb_adm_geral g ON g.co_ator_papel = ap.co_seq_ator_papel"
        " LEFT JOIN tb_adm_municipal m ON m.co_ator_papel = ap.co_seq_ator_papel"
        " ORDER BY ap.co_seq_ator_papel"
    )


ASSIGNMENTS_SQL = (
    "SELECT r.co_ator_papel, r.co_perfil, pf.no_perfil FROM rl_ator_papel_perfil r"
    " JOIN tb_perfil pf ON pf.co_seq_perfil = r.co_perfil ORDER BY r.co_ator_papel, r.co_perfil"
)


def _bool(text):
    return text in ("t", "true", "1")


def read_state(client, profile_name, resources, schema=None):
    """Everything the plan needs, read with queries only, on the 4.x or the 5.x schema. ``client`` is an open
    PgClient; ``schema`` a pec_schema LiveSchema of it (one is made when absent). Raises
    pec_schema.SchemaUnsupported, naming the missing column, before any row is read."""
    resolved = (schema or LiveSchema(client)).resolve("reading the profile assignments", STATE_FIELDS, STATE_COLUMNS)
    papeis = []
    for row in client.query(papeis_sql(resolved)):
        papeis.append(
            {
                "id": int(row[0]),
                "type": row[1],
                "prof_id": int(row[2]),
                "login": row[3],
                "name": row[4],
                "is_lotacao": _bool(row[5]),
                "cbo": row[6],
                "cnes": row[7],
                "adm_geral": _bool(row[8]),
                "adm_municipal": row[9],
            }
        )
    assignments = {}
    profile_names = {}
    for ap_id, perfil_id, perfil_name in client.query(ASSIGNMENTS_SQL):
        assignments.setdefault(int(ap_id), []).append(int(perfil_id))
        profile_names[int(perfil_id)] = perfil_name
    profile = None
    row = client.query(
        f"SELECT pf.co_seq_perfil, {resolved.expr('profile_type', 'pf')}, {resolved.expr('profile_active', 'pf')}"
        " FROM tb_perfil pf WHERE pf.no_perfil = " + sql_literal(profile_name)
    )
    if row:
        profile = {"id": int(row[0][0]), "type": row[0][1], "active": _bool(row[0][2]), "grants": []}
        grants = client.query(
            f"SELECT {resolved.expr('grant_resource', 'pr')}, pr.tp_operacao FROM tb_perfil_recurso pr"
            f" WHERE pr.co_perfil = {profile['id']} ORDER BY 1, 2"
        )
        profile["grants"] = sorted((g[0], g[1]) for g in grants)
        profile_names[profile["id"]] = profile_name
    known = []
    if resources:
        names = ", ".join(sql_literal(r) for r in resources)
        known = sorted(
            r[0]
            for r in client.query(
                f"SELECT rc.no_recurso FROM {resolved.expr('resource_names', 'rc')} AS rc (no_recurso)"
                f" WHERE rc.no_recurso IN ({names})"
            )
        )
    fingerprint_query = fingerprint_sql(resolved)
    return {
        "papeis": papeis,
        "assignments": assignments,
        "profile_names": profile_names,
        "profile": profile,
        "resources": known,
        "fingerprint": client.scalar(fingerprint_query),
        "fingerprint_sql": fingerprint_query,
    }


def _label(papel):
    if papel["is_lotacao"]:
        return f"lotação {papel['id']} (CBO {papel['cbo'] or '?'}, CNES {papel['cnes'] or '?'})"
    kind = (papel["type"] or "papel").lower().replace("_", " ")
    return f"{kind} {papel['id']}"


def _prof_key(papel):
    """How a professional is named in the result and the diff: the PEC's internal id (tb_prof), never the login (a
    CPF) nor the name - Ansible output is no place for personal data; the root-only snapshot keeps both."""
    return f"profissional {papel['prof_id']}"


def _papel_view(papel, profile_ids, profile_names, adm_geral, adm_municipal):
    items = sorted(profile_names.get(pid, f"perfil {pid}") for pid in profile_ids)
    if adm_geral:
        items.append("[administrador geral: tb_adm_geral]")
    if adm_municipal:
        items.append(f"[administrador municipal {adm_municipal}: tb_adm_municipal]")
    return items


def plan(state, profile_name, profile_type, resources, operations, break_glass_login=None):
    """What must change. Pure function of the state read by read_state."""
    missing = sorted(set(resources) - set(state["resources"]))
    if missing:
        raise PecError(
            f"resources {', '.join(missing)} not found in tb_recurso; the view-only profile cannot be built. "
            f"Known names differ by PEC version: set profile_resources to names present in tb_recurso"
        )
    papeis = state["papeis"]
    protected = set()
    if break_glass_login:
        mine = [p for p in papeis if p["login"] == break_glass_login]
        if not mine:
            raise PecError(
                f"break-glass account {break_glass_login!r} not found (no professional with that tb_usuario login); "
                "nothing was changed. Set break_glass_login to the CPF login of an existing administrator"
            )
        if not any(p["adm_geral"] or p["adm_municipal"] for p in mine):
            raise PecError(
                f"break-glass account {break_glass_login!r} is not an administrator (tb_adm_geral/tb_adm_municipal): "
                "after the change nobody could administer this server. Nothing was changed. Name an administrator"
            )
        protected = {p["id"] for p in mine}

    desired_grants = sorted((r, o) for r in resources for o in operations)
    profile = state["profile"]
    profile_changes = {
        "create": profile is None,
        "activate": bool(profile and not profile["active"]),
        "retype": bool(profile and profile["type"] != profile_type),
        "grants_add": desired_grants if profile is None else sorted(set(desired_grants) - set(profile["grants"])),
        "grants_remove": [] if profile is None else sorted(set(profile["grants"]) - set(desired_grants)),
    }
    profile_id = profile["id"] if profile else None
    names = dict(state["profile_names"])
    view_key = profile_id if profile_id is not None else "__new__"
    names[view_key] = profile_name

    remove, add, adm_geral_remove, adm_municipal_remove = [], [], [], []
    before, after = {}, {}
    for papel in papeis:
        current = state["assignments"].get(papel["id"], [])
        if papel["id"] in protected:
            target = list(current)
            geral_after, municipal_after = papel["adm_geral"], papel["adm_municipal"]
        else:
            target = [view_key] if papel["is_lotacao"] else []
            geral_after, municipal_after = False, None
            for pid in current:
                if pid != view_key:
                    remove.append({"co_ator_papel": papel["id"], "co_perfil": pid, "no_perfil": names.get(pid)})
            if view_key in target and view_key not in current:
                add.append(papel["id"])
            if papel["adm_geral"]:
                adm_geral_remove.append(papel["id"])
            if papel["adm_municipal"]:
                adm_municipal_remove.append({"co_ator_papel": papel["id"], "co_ibge_municipio": papel["adm_municipal"]})
        key = _prof_key(papel)
        before.setdefault(key, {})[_label(papel)] = _papel_view(
            papel, current, names, papel["adm_geral"], papel["adm_municipal"]
        )
        after.setdefault(key, {})[_label(papel)] = _papel_view(papel, target, names, geral_after, municipal_after)

    for rec in remove:
        papel = next(p for p in papeis if p["id"] == rec["co_ator_papel"])
        rec.update({"ds_login": papel["login"], "no_profissional": papel["name"]})
    changed_profs = sorted(k for k in before if before[k] != after[k])
    view_only_profs = {p["prof_id"] for p in papeis if p["is_lotacao"] and p["id"] not in protected}
    profile_changed = any(
        [
            profile_changes["create"],
            profile_changes["activate"],
            profile_changes["retype"],
            profile_changes["grants_add"],
            profile_changes["grants_remove"],
        ]
    )
    return {
        "changed": bool(profile_changed or remove or add or adm_geral_remove or adm_municipal_remove),
        "profile": profile_changes,
        "profile_changed": profile_changed,
        "remove": remove,
        "add": add,
        "adm_geral_remove": adm_geral_remove,
        "adm_municipal_remove": adm_municipal_remove,
        "protected": sorted(protected),
        "diff": {"before": {"professionals": before}, "after": {"professionals": after}},
        "changed_professionals": changed_profs,
        "professionals_view_only": len(view_only_profs),
        "lotacoes_view_only": sum(1 for p in papeis if p["is_lotacao"] and p["id"] not in protected),
    }


def _values(rows):
    return ", ".join("(" + ", ".join(str(v) for v in row) + ")" for row in rows)


def apply_sql(state, the_plan, profile_name, profile_type, resources):
    """The one transaction that applies the plan, guarded by the fingerprint read before."""
    name = sql_literal(profile_name)
    pid = f"(SELECT co_seq_perfil FROM tb_perfil WHERE no_perfil = {name})"
    stmts = [
        "BEGIN",
        "LOCK TABLE rl_ator_papel_perfil, tb_adm_geral, tb_adm_municipal, tb_lotacao, tb_perfil, tb_perfil_recurso"
        " IN SHARE ROW EXCLUSIVE MODE",
        "DO $sesdf$ BEGIN IF ("
        + state["fingerprint_sql"]
        + ") IS DISTINCT FROM "
        + sql_literal(state["fingerprint"])
        + " THEN RAISE EXCEPTION "
        + sql_literal(CHANGED_MARKER)
        + "; END IF; END $sesdf$",
    ]
    prof = the_plan["profile"]
    if prof["create"]:
        stmts.append(
            "INSERT INTO tb_perfil (no_perfil, tp_perfil, st_ativo, st_padrao) VALUES"
            f" ({name}, {sql_literal(profile_type)}, true, false)"
        )
    if prof["activate"] or prof["retype"]:
        stmts.append(
            f"UPDATE tb_perfil SET st_ativo = true, tp_perfil = {sql_literal(profile_type)} WHERE no_perfil = {name}"
        )
    for res, op in prof["grants_remove"]:
        stmts.append(
            f"DELETE FROM tb_perfil_recurso WHERE co_perfil = {pid} AND tp_operacao = {sql_literal(op)}"
            f" AND co_recurso = (SELECT co_recurso FROM tb_recurso WHERE no_recurso = {sql_literal(res)})"
        )
    for res, op in prof["grants_add"]:
        stmts.append(
            "INSERT INTO tb_perfil_recurso (co_perfil, co_recurso, tp_operacao)"
            f" SELECT {pid}, co_recurso, {sql_literal(op)} FROM tb_recurso WHERE no_recurso = {sql_literal(res)}"
        )
    if the_plan["remove"]:
        pairs = _values((r["co_ator_papel"], r["co_perfil"]) for r in the_plan["remove"])
        stmts.append(f"DELETE FROM rl_ator_papel_perfil WHERE (co_ator_papel, co_perfil) IN (VALUES {pairs})")
    if the_plan["add"]:
        ids = _values((a,) for a in the_plan["add"])
        stmts.append(
            "INSERT INTO rl_ator_papel_perfil (co_ator_papel, co_perfil)"
            f" SELECT v.ap, {pid} FROM (VALUES {ids}) AS v (ap)"
        )
    if the_plan["adm_geral_remove"]:
        ids = ", ".join(str(a) for a in the_plan["adm_geral_remove"])
        stmts.append(f"DELETE FROM tb_adm_geral WHERE co_ator_papel IN ({ids})")
    if the_plan["adm_municipal_remove"]:
        ids = ", ".join(str(a["co_ator_papel"]) for a in the_plan["adm_municipal_remove"])
        stmts.append(f"DELETE FROM tb_adm_municipal WHERE co_ator_papel IN ({ids})")
    stmts.append("COMMIT")
    return stmts


def restore_sql(the_plan, profile_name):
    """SQL that puts back what the plan removes (the view-only profile itself is left in place)."""
    name = sql_literal(profile_name)
    stmts = ["BEGIN"]
    if the_plan["add"]:
        ids = ", ".join(str(a) for a in the_plan["add"])
        stmts.append(
            f"DELETE FROM rl_ator_papel_perfil WHERE co_ator_papel IN ({ids})"
            f" AND co_perfil = (SELECT co_seq_perfil FROM tb_perfil WHERE no_perfil = {name})"
        )
    if the_plan["remove"]:
        pairs = _values((r["co_ator_papel"], r["co_perfil"]) for r in the_plan["remove"])
        stmts.append(
            f"INSERT INTO rl_ator_papel_perfil (co_ator_papel, co_perfil) VALUES {pairs} ON CONFLICT DO NOTHING"
        )
    if the_plan["adm_geral_remove"]:
        stmts.append(
            "INSERT INTO tb_adm_geral (co_ator_papel) VALUES "
            + _values((a,) for a in the_plan["adm_geral_remove"])
            + " ON CONFLICT DO NOTHING"
        )
    if the_plan["adm_municipal_remove"]:
        rows = ", ".join(
            f"({a['co_ator_papel']}, {sql_literal(a['co_ibge_municipio'])})" for a in the_plan["adm_municipal_remove"]
        )
        stmts.append(
            f"INSERT INTO tb_adm_municipal (co_ator_papel, co_ibge_municipio) VALUES {rows} ON CONFLICT DO NOTHING"
        )
    stmts.append("COMMIT")
    return ";\n".join(stmts) + ";\n"


def snapshot_document(the_plan, profile_name, conn, now=None):
    now = now or datetime.datetime.now(datetime.timezone.utc)
    return {
        "created_at": now.isoformat(timespec="seconds"),
        "tool": "sesdf.esus.pec_profiles",
        "database": {k: conn.get(k) for k in ("host", "port", "name")},
        "view_profile": profile_name,
        "removed": {
            "rl_ator_papel_perfil": the_plan["remove"],
            "tb_adm_geral": [{"co_ator_papel": a} for a in the_plan["adm_geral_remove"]],
            "tb_adm_municipal": the_plan["adm_municipal_remove"],
        },
        "added": {"rl_ator_papel_perfil": [{"co_ator_papel": a, "no_perfil": profile_name} for a in the_plan["add"]]},
        "profiles_before": the_plan["diff"]["before"]["professionals"],
        "restore_sql": restore_sql(the_plan, profile_name),
    }


def write_snapshot(directory, document, now=None):
    """Write the snapshot atomically, root-only (directory 0700, file 0600). Returns the final path."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    try:
        os.makedirs(directory, mode=0o700, exist_ok=True)
        os.chmod(directory, 0o700)
    except OSError as exc:
        raise PecError(
            f"cannot create the snapshot directory {directory}: {exc}. Nothing was changed; "
            "fix the path or its permissions (snapshot_dir)"
        ) from exc
    final = os.path.join(directory, "pec_profiles-" + now.strftime("%Y%m%dT%H%M%S%fZ") + ".json")
    text = json.dumps(document, ensure_ascii=False, indent=2, sort_keys=True) + "\n"
    try:
        atomic_write(final, text, 0o600)
    except PecError as exc:
        raise PecError(
            f"cannot write the profile snapshot in {directory}: {exc.__cause__}. Nothing was changed; free space or "
            "fix snapshot_dir, then rerun"
        ) from exc.__cause__
    return final


def run(client, conn, params, check_mode):
    """Read, plan, snapshot, apply. Returns the module result (without executed_queries)."""
    resources = list(dict.fromkeys(params["profile_resources"]))
    operations = list(dict.fromkeys(params["profile_operations"]))
    if not resources or not operations:
        raise PecError("profile_resources and profile_operations must not be empty: a profile needs at least one grant")
    # Read-only probe of the live schema before anything is read for writing (check mode too). Refused: nothing is
    # read for writing; with unsupported=skip the caller gets supported=false and the manual path instead of a failure.
    probe = Probe(client, trust=params.get("schema_trust") or "survey", surveyed=params.get("capability_profiles"))
    if params.get("unsupported") == "skip":
        compat = probe.check("change_profiles")
        if not compat["supported"]:
            return {"changed": False, "supported": False, "compat": compat}
    else:
        compat = probe.require("change_profiles")
    state = read_state(client, params["profile_name"], resources)
    the_plan = plan(
        state,
        params["profile_name"],
        params["profile_type"],
        resources,
        operations,
        params.get("break_glass_login"),
    )
    result = {
        "changed": the_plan["changed"],
        "supported": True,
        "profile": {
            "name": params["profile_name"],
            "id": state["profile"]["id"] if state["profile"] else None,
            "created": the_plan["profile"]["create"],
            "grants": sorted([r, o] for r in resources for o in operations),
        },
        "professionals_view_only": the_plan["professionals_view_only"],
        "lotacoes_view_only": the_plan["lotacoes_view_only"],
        "changed_professionals": the_plan["changed_professionals"],
        "removed_assignments": len(the_plan["remove"]),
        "added_assignments": len(the_plan["add"]),
        "admin_roles_removed": len(the_plan["adm_geral_remove"]) + len(the_plan["adm_municipal_remove"]),
        "break_glass": {"papeis_kept": the_plan["protected"]},
        "snapshot": None,
        "compat": compat,
        "diff": the_plan["diff"],
    }
    if not the_plan["changed"] or check_mode:
        return result
    has_removal = the_plan["remove"] or the_plan["adm_geral_remove"] or the_plan["adm_municipal_remove"]
    snapshot = None
    if has_removal or the_plan["add"]:
        snapshot = write_snapshot(params["snapshot_dir"], snapshot_document(the_plan, params["profile_name"], conn))
        result["snapshot"] = snapshot
    script = ";\n".join(apply_sql(state, the_plan, params["profile_name"], params["profile_type"], resources)) + ";\n"
    try:
        client.query(script)
    except PecError as exc:
        if snapshot:
            try:
                os.replace(snapshot, snapshot[: -len(".json")] + ".aborted.json")
            except OSError:
                pass
        if CHANGED_MARKER in exc.msg:
            raise PecError(
                "profile assignments changed while this task ran (someone is editing users in the PEC?); "
                "the transaction was rolled back and nothing was changed: rerun the task"
            ) from exc
        raise PecError(f"profile change rolled back, nothing was changed: {exc.msg}") from exc
    row = client.query("SELECT co_seq_perfil FROM tb_perfil WHERE no_perfil = " + sql_literal(params["profile_name"]))
    result["profile"]["id"] = int(row[0][0]) if row else None
    return result
