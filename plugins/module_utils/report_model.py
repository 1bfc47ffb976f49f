# Copyright: (c) 2026, SES-DF NTINF
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The regional report's model: one row per UBS and ONE list of pendencies per UBS, computed here.

Every output (the summary printed in the play, the HTML pages, the CSV, the JSON) is rendered from the model
this module builds, so they agree by construction. Input per UBS is what the control node knows about it
(:func:`build` documents the shape); every field may be missing or malformed, and a host with no data at all
(unreachable) is still a row. Text a manager reads is Portuguese.

The model holds nothing that changes between two runs on the same state the same day (no byte counts, no
ages in hours): ages are whole days between the report's date and the recorded date.
"""

from __future__ import annotations

import datetime
import re

from ansible_collections.sesdf.esus.plugins.module_utils import report_hardening, report_states
from ansible_collections.sesdf.esus.plugins.module_utils.manual_steps import CONFIRMED, UNVERIFIABLE, check_text
from ansible_collections.sesdf.esus.plugins.module_utils.report_states import (
    CDS_STATUSES,
    CNES_METHODS,
    CNES_PENDING_METHODS,
    HARDENING_MODES,
    MISSING,
    OFFHOST_STATES,
    RECORD,
    RETENTION_HOW,
    RETENTION_WHY,
    SOAK_STATES,
    STALE,
    UPGRADE_OK,
    UPGRADE_RESULTS,
    cell_text,
    classify,
    problem_text,
)

SEVERITIES = ("critica", "alta", "media")
# A pendency of these severities needs someone's action now: its cell and line are red.
DUE = ("critica", "alta")
# Capabilities only the migration uses (decommission, consultation checks): refused on an inapt UBS, no pendency.
MIGRATION_CAPABILITIES = ("change_profiles", "transmission_off", "cnes_profile_reset_off")
# The db mode of the lotes (the test double's old model): where the PEC refuses it the lotes job reads the lote files
# the operator saves into the inbox (lotes_export_source auto), the way on every real server; its own state says
# whether production is delivered, so the refusal itself is no pendency.
LOTES_DB_CAPABILITIES = ("create_lotes", "mark_lotes_sent")

STATUS_LABELS = {
    "migrada": "migrada",
    "aguardando_migracao": "aguardando migração",
    "apta": "apta",
    "inapta": "inapta",
    "sem_classificacao": "sem classificação",
}
ROLE_LABELS = {
    "local_server": "servidor local em uso",
    "consultation": "somente consulta (migrado)",
    "none": "sem PEC",
}
# The concerns of the server's state the report reads (report_states holds each one's contract), in report order;
# backup and migration are read with the backup columns and the status.
CONCERNS = {
    name: report_states.CONCERNS[name].label
    for name in (
        "hardening",
        "maintenance",
        "cnes",
        "profiles",
        "lotes",
        "upgrade",
        "readiness",
        "central_profiles",
        "manual_steps",
    )
}
# The column a record's pendency marks.
RECORD_FIELDS = {
    "backup": "backup",
    "borg_retention": "copia_externa",
    "migration": "situacao",
    "manual_steps": "situacao",
    "central_profiles": "profiles",
}
CAPABILITY_NAMES = {
    "create_lotes": "gerar lotes",
    "mark_lotes_sent": "marcar lotes enviados",
    "change_profiles": "trocar perfis para visualização",
    "transmission_off": "desligar a transmissão automática",
    "cnes_profile_reset_off": "impedir que a importação do CNES redefina perfis",
    "installation_link": "apontar o link da instalação para o servidor reconstruído",
}
# The settings a consultation server's checks read in the PEC: where the PEC refuses the capability they cannot be
# observed, so they are "não verificável" (never a pass).
CONSULTATION_CHECKS = {
    "change_profiles": "perfis só de visualização",
    "transmission_off": "transmissão automática desligada",
    "cnes_profile_reset_off": "importação do CNES sem redefinir perfis",
}
BAD_CHECKS = {
    "mismatch": "o arquivo foi alterado ou danificado depois de feito (não confere com o manifesto)",
    "missing_manifest": "o manifesto do backup foi apagado: o backup não pode ser dado como verificado",
    "missing_archive": "o arquivo do backup não existe mais no servidor",
}
OFFHOST_LABELS = OFFHOST_STATES
# The determination of the technical note (docs/nt-ids.yml) each pendency is about, in its ``nt`` field ("" for what
# no determination names: an unreachable server, a failed run, a record that cannot be read).
CONCERN_NT = {
    "hardening": "NT-inapta-2",
    "maintenance": "NT-inapta-3",
    "cnes": "NT-inapta-7",
    "profiles": "NT-perfis-1",
    "lotes": "NT-inapta-8",
    "upgrade": "NT-inapta-5",
    "readiness": "NT-aptidao-1",
    "central_profiles": "NT-apta-4",
    "backup": "NT-inapta-4",
    "borg_retention": "NT-inapta-4",
}
CAPABILITY_NT = {
    "create_lotes": "NT-inapta-8",
    "mark_lotes_sent": "NT-inapta-8",
    "change_profiles": "NT-apta-3",
    "transmission_off": "NT-apta-1",
    "cnes_profile_reset_off": "NT-apta-3",
    "installation_link": "NT-inapta-4",
}
BACKUP_NT = "NT-inapta-4"
CDS_NT = "NT-cds-1"
NO_REGION = "sem_regiao"


# --------------------------------------------------------------------------------------------------- helpers
def _dict(value):
    return value if isinstance(value, dict) else {}


def _list(value):
    return value if isinstance(value, list) else []


def _num(value, default=None):
    if isinstance(value, bool):
        return default
    try:
        return float(value)
    except (TypeError, ValueError):
        return default


def _int(value, default=None):
    number = _num(value)
    return default if number is None else int(number)


def _text(value, default=""):
    if value is None:
        return default
    return str(value)


def parse_day(value):
    """The date part of an ISO 8601 date or timestamp, or None."""
    match = re.match(r"^(\d{4})-(\d{2})-(\d{2})", _text(value).strip())
    if not match:
        return None
    try:
        return datetime.date(*(int(g) for g in match.groups()))
    except ValueError:
        return None


def iso_day(value):
    """The ISO date (AAAA-MM-DD) of an ISO date or timestamp, '' when there is none."""
    day = parse_day(value)
    return day.isoformat() if day else ""


def day_text(value):
    """DD/MM/AAAA of an ISO date, '' when there is none."""
    day = value if isinstance(value, datetime.date) else parse_day(value)
    return day.strftime("%d/%m/%Y") if day else ""


def version_key(value):
    """A comparable tuple of a PEC version ('4.5.2' -> (4, 5, 2)); None when it is not one."""
    parts = re.findall(r"\d+", _text(value))
    return tuple(int(p) for p in parts) if parts else None


def region_label(region, prefix="regiao_"):
    if region == NO_REGION:
        return "Sem região"
    name = region[len(prefix) :] if prefix and region.startswith(prefix) else region
    return "Região " + name.replace("_", " ").title()


def _pendency(code, severity, msg, field, nt="", link=""):
    """One pendency; ``link``: the anchor of its detail on the page ('' when it has none)."""
    return {
        "code": code,
        "severity": severity,
        "msg": msg,
        "field": field,
        "due": severity in DUE,
        "nt": nt,
        "link": link,
    }


def _version_nt(status):
    """The version IT asks for: 4.5.2 before the migration (NTINF), IT's versions on an inapt UBS."""
    return "NT-ntinf-1" if status == "aguardando_migracao" else "NT-inapta-5"


# ---------------------------------------------------------------------------------------------------- state
def _int_or(value):
    number = _int(value)
    return value if number is None else number


def _hardening_from_report(report):
    """The same run's hardening_report in the hardening state's layout (what the role records)."""
    if not isinstance(report, dict):
        return report
    summary = _dict(report.get("summary"))
    passed, fixed = _int(summary.get("pass")), _int(summary.get("fixed"), 0)
    controls = report.get("controls")
    return {
        "mode": report.get("mode"),
        "summary": {
            "pass": passed + fixed if passed is not None and fixed is not None else summary.get("pass"),
            "fail": _int_or(summary.get("fail")),
            "not_verifiable_here": _int_or(summary.get("not_verifiable_here")),
        },
        "findings": [
            {k: c.get(k) for k in ("id", "concern", "status", "title")}
            for c in controls
            if isinstance(c, dict) and c.get("status") in ("fail", "not_verifiable_here")
        ]
        if isinstance(controls, list)
        else controls,
    }


def _upgrade_from_summary(summary):
    """The same run's upgrade_summary in the upgrade state's layout (what roles/upgrade records)."""
    if not isinstance(summary, dict):
        return summary
    return {
        "last": {
            "version": summary.get("to_version") or summary.get("from_version"),
            "target_version": summary.get("target_version"),
            "result": summary.get("result"),
            "message": summary.get("message"),
            "soak": summary.get("soak"),
        }
    }


def _records(pec, state, legacy, today):
    """Every concern's record (report_states.classify: ok, desatualizado or what is wrong with it). The same run's
    facts stand in for hardening, upgrade and lotes where the server has no record at all."""
    records = {name: classify(name, state.get(name), today) for name in CONCERNS}
    records["backup"] = classify("backup", state.get("backup"), today, data=pec.get("backup_status"))
    records["migration"] = classify("migration", state.get("migration"), today, data=pec.get("migration"))
    records["borg_retention"] = classify("borg_retention", state.get("borg_retention"), today)
    fallback = {
        "hardening": _hardening_from_report(legacy.get("hardening_report")),
        "upgrade": _upgrade_from_summary(legacy.get("upgrade_summary")),
        "lotes": {"deadline": legacy.get("lotes_export_deadline")} if legacy.get("lotes_export_deadline") else None,
    }
    for name, data in fallback.items():
        if records[name]["status"] == MISSING and data is not None:
            records[name] = classify(name, None, today, data=data)
    return records


# ------------------------------------------------------------------------------------------------ one host
def _status(groups, aptidao, migrated):
    if migrated:
        return "migrada"
    if "ubs_aptas" in groups or aptidao == "apta":
        return "aguardando_migracao"
    if "ubs_inaptas" in groups or aptidao == "inapta":
        return "inapta"
    return "sem_classificacao"


def _region(groups, prefix):
    regions = sorted(g for g in groups if isinstance(g, str) and g.startswith(prefix))
    return regions[0] if regions else NO_REGION


def build_row(host, settings, today):
    """The row of one UBS (see :func:`build` for ``host``)."""
    host = _dict(host)
    name = _text(host.get("host"), "?")
    groups = [g for g in _list(host.get("groups")) if isinstance(g, str)]
    pec_raw = host.get("pec")
    # the server answered, but reading its state failed in this run (report.yml keeps what failed)
    read_error = _text(host.get("read_error"))
    reachable = pec_raw is not None or bool(read_error)
    pec = _dict(pec_raw)
    state_raw = pec.get("state")
    state = _dict(state_raw)
    legacy = _dict(host.get("legacy"))
    pend = []
    max_age = _num(settings.get("backup_max_age_hours"), 26.0)
    records = _records(pec, state, legacy, today)

    migration = _dict(pec.get("migration"))
    role = _text(pec.get("role"), "none") if pec_raw is not None else ""
    migrated = migration.get("migrated") is True or role == "consultation"
    status = _status(groups, _text(host.get("aptidao")), migrated)
    row = {
        "host": name,
        "ubs": _text(host.get("name")) or name,
        "cnes": _text(host.get("cnes")) or "?",
        "region": _region(groups, settings.get("region_prefix") or "regiao_"),
        "status": status,
        "status_label": STATUS_LABELS[status],
        "reachable": reachable,
        "role": role,
        "role_label": (ROLE_LABELS.get(role, role) if pec_raw is not None else "estado não lido")
        if reachable
        else "inacessível",
        "migration_date": iso_day(host.get("migration_date")),
        "migrated_on": iso_day(migration.get("date")),
    }

    if read_error:
        pend.append(
            _pendency(
                "leitura_falhou",
                "critica",
                "o servidor respondeu, mas a leitura do seu estado falhou nesta execução ("
                + read_error[:300]
                + "): a situação mostrada é a do início da execução ou nenhuma; corrigir e rodar o report.yml de novo",
                "situacao",
            )
        )
    if pec_raw is not None and not isinstance(pec_raw, dict):
        pend.append(
            _pendency(
                "estado_corrompido",
                "alta",
                "o inventário do PEC deste servidor chegou ilegível ao relatório: rodar o site.yml de novo e, se "
                "persistir, conferir o sesdf_esus_pec do servidor",
                "situacao",
            )
        )
    if not reachable:
        pend.append(
            _pendency(
                "unreachable",
                "critica",
                "o servidor não respondeu ao Ansible: conferir rede, SSH e a conta do NTINF",
                "situacao",
            )
        )

    # PEC version against IT's target and deadline
    version = _dict(pec.get("version"))
    current = _text(version.get("consensus")) or _text(version.get("config"))
    target = _text(host.get("target_version"))
    deadline = parse_day(host.get("deadline"))
    below = bool(target and current and (version_key(current) or ()) < (version_key(target) or ()))
    row["version"] = {
        "current": current,
        "agree": bool(version.get("agree")),
        "target": target,
        "deadline": deadline.isoformat() if deadline else "",
        "days_left": (deadline - today).days if deadline else None,
        "below_target": below,
    }
    if reachable and pec.get("installed") and below and deadline and role != "consultation":
        days = (deadline - today).days
        if days < 0:
            pend.append(
                _pendency(
                    "atualizacao_atrasada",
                    "alta",
                    f"PEC {current} abaixo da versão {target} pedida pela TI; o prazo ({day_text(deadline)}) "
                    f"venceu há {-days} dia(s): atualizar (playbooks/upgrade.yml)",
                    "versao",
                    _version_nt(status),
                )
            )
        else:
            pend.append(
                _pendency(
                    "atualizacao_prevista",
                    "media",
                    f"PEC {current} abaixo da versão {target} pedida pela TI: atualizar até {day_text(deadline)} "
                    f"(faltam {days} dia(s))",
                    "versao",
                    _version_nt(status),
                )
            )

    # PEC problems and refused capabilities
    for problem in _list(pec.get("problems")):
        problem = _dict(problem)
        if problem.get("code") == "missing" or not problem.get("msg"):
            continue
        pend.append(_pendency(_text(problem.get("code"), "pec"), "alta", _text(problem.get("msg")), "situacao"))
    database = _dict(pec.get("database"))
    steps = _manual_steps(row, records["manual_steps"], pend)
    row["rebuilds"] = _rebuilds(state_raw)
    if database.get("reachable"):
        for cap_name, cap in sorted(_dict(pec.get("capabilities")).items()):
            cap = _dict(cap)
            if cap.get("supported", True) or cap_name in steps:  # a manual step says it (pending or who did it)
                continue
            if cap_name in MIGRATION_CAPABILITIES and row["status"] == "inapta":
                continue  # an inapt UBS keeps its server: the migration's switches are not its concern
            if cap_name in LOTES_DB_CAPABILITIES:
                continue

            missing = ", ".join(_text(m) for m in _list(cap.get("missing")))
            pend.append(
                _pendency(
                    "compat",
                    "alta",
                    f"a coleção não pode {CAPABILITY_NAMES.get(cap_name, cap_name)} neste servidor (o banco do PEC "
                    f"não tem: {missing}); fazer pelo PEC: {_text(cap.get('manual'), '?')}",
                    "situacao",
                    CAPABILITY_NT.get(cap_name, ""),
                )
            )

    row["checks"] = []
    if migrated and database.get("reachable"):
        for cap_name, label in CONSULTATION_CHECKS.items():
            cap = _dict(_dict(pec.get("capabilities")).get(cap_name))
            if cap and cap.get("supported", True) is False:
                row["checks"].append(
                    {
                        "capability": cap_name,
                        "label": label,
                        "status": UNVERIFIABLE,
                        "detail": check_text(steps.get(cap_name)),
                    }
                )

    failure = _dict(host.get("failure"))
    if failure:
        flows = {
            "rota": "roteamento",
            "local": "rotina do servidor local",
            "consulta": "verificações de consulta",
            "migracao": "migração",
            "atualizacao": "atualização",
        }
        flow = _text(failure.get("flow"))
        pend.append(
            _pendency(
                "fluxo_falhou",
                "critica",
                f"a {flows.get(flow, flow or 'rotina')} desta UBS falhou nesta execução: "
                + _text(failure.get("msg"), "sem mensagem")
                + " (corrigir e rodar o site.yml de novo)",
                "situacao",
            )
        )
    # a flow due but not done by this run: the regime waits for CTINF's approval (regime_route.approvals)
    for waiting in _list(_dict(host.get("route")).get("approvals")):
        waiting = _dict(waiting)
        upgrade = waiting.get("flow") == "atualizacao"
        pend.append(
            _pendency(
                "aguardando_aprovacao",
                "alta",
                "aguardando aprovação: " + _text(waiting.get("msg"), "fluxo devido nesta execução"),
                "versao" if upgrade else "situacao",
                _version_nt(status) if upgrade else "NT-geral-2",
            )
        )
    _backup(row, records["backup"], pend, role, status, max_age, today)
    _borg_retention(row, records["borg_retention"], pend)
    _states(row, state_raw, records, pend, reachable and bool(pec.get("installed")))
    _production(row, pec, pend)

    ranks = {s: i for i, s in enumerate(SEVERITIES)}
    pend.sort(key=lambda p: ranks[p["severity"]])
    row["pendencias"] = pend
    row["due"] = any(p["due"] for p in pend)
    row["red_fields"] = sorted({p["field"] for p in pend if p["due"]})
    return row


def _rebuilds(state_raw):
    """The rebuilds of this server (sesdf.esus.rebuild's record), newest first: when, from which backup, the server it
    replaced. Read as text only: a record that cannot be read shows nothing here."""
    data = _dict(_dict(_dict(state_raw).get("rebuild")).get("data"))
    out = []
    for entry in _list(data.get("rebuilds")):
        entry = _dict(entry)
        out.append(
            {
                "at": iso_day(entry.get("at")),
                "backup_day": iso_day(entry.get("backup_created_at")),
                "archive": _text(entry.get("archive")),
                "old_host": _text(entry.get("old_host")),
            }
        )
    return out


def _manual_steps(row, record, pend):
    """The manual steps recorded on the server (module_utils manual_steps): pending ones are pendencies, confirmed
    ones the UBS's detail. Returns {capability: step} of every step recorded."""
    by_capability = {}
    row["manual_steps"] = []
    for step_id, step in sorted(_dict(record["data"].get("steps")).items()):
        if not step:
            continue
        confirmed = step.get("status") == CONFIRMED
        entry = {
            "id": _text(step_id),
            "descricao": _text(step.get("descricao")),
            "caminho": _text(step.get("caminho")),
            "status": CONFIRMED if confirmed else "pendente",
            "solicitado_em": iso_day(step.get("solicitado_em")),
            "confirmado_por": _text(step.get("confirmado_por")) if confirmed else "",
            "confirmado_em": iso_day(step.get("confirmado_em")) if confirmed else "",
        }
        row["manual_steps"].append(entry)
        if step.get("capability"):
            by_capability[_text(step.get("capability"))] = step
        if not confirmed:
            pend.append(
                _pendency(
                    "passo_manual",
                    "alta",
                    f"passo manual pendente no PEC ({entry['id']}, pedido em {day_text(entry['solicitado_em']) or '?'})"
                    f": {entry['descricao'] or '?'}; na tela do PEC: {entry['caminho'] or '?'}. Feito isso, "
                    + (
                        f"informar quem fez em {_text(step.get('confirmar'))}"
                        if step.get("confirmar")
                        else "rodar a migração de novo informando quem fez em decommission_manual_confirmed"
                    ),
                    "situacao",
                    CAPABILITY_NT.get(_text(step.get("capability")), ""),
                )
            )
    return by_capability


def _borg_retention(row, record, pend):
    """The backup host's retention (report_states' ``borg_retention``, recorded on the UBS by backup_schedule): when
    the UBS deleted, replaced or back-dated copies through its append-only key, a critical pendency, whatever the
    UBS's role (a migrated UBS's last copies count too)."""
    data = record["data"]
    row["backup"]["repo_retention"] = _text(data.get("status"))
    if data.get("critical") is not True:
        return
    parts = [f"{x['name']} ({RETENTION_HOW[x['how']]})" for x in _list(data.get("lost"))]
    parts += [f"{x['name']} (acrescentada {RETENTION_WHY[x['why']]})" for x in _list(data.get("suspicious"))]
    removed = _int(data.get("objects_removed"), 0) or 0
    if removed and parts:
        parts.append(f"mais {removed} objeto(s) de dados removido(s) (os dados dessas cópias ou de outras)")
    elif removed:
        parts.append(f"{removed} objeto(s) de dados removido(s) (dados de cópias ainda listadas, ou cópias novas)")
    txns = ", ".join(str(t["id"]) for t in _list(data.get("transactions"))) or "?"
    back = ", ".join(_list(data.get("recoverable")))
    back = f", o que traz de volta {back}" if back else ""
    pend.append(
        _pendency(
            "copias_apagadas",
            "critica",
            "CRÍTICO: o servidor da UBS mexeu nas cópias do repositório externo pelo seu acesso só de acréscimo: "
            f"{'; '.join(parts) or 'cópias alteradas'} (transação(ões) {txns}). A retenção no servidor de backup "
            "parou (nada podado nem compactado): as cópias ainda podem ser recuperadas revertendo o repositório para "
            f"a transação {_text(data.get('rollback_to'), '?')}{back}. Tratar o servidor da UBS como comprometido e "
            "seguir docs/pt-BR/backup.md, «Cópias apagadas pelo servidor da UBS»",
            "copia_externa",
            BACKUP_NT,
        )
    )


def _backup(row, record, pend, role, status, max_age, today):
    """The backup columns from the backup status pec_info re-checked (its record: report_states' ``backup``)."""
    bs = record["data"]
    last = parse_day(bs.get("last_success"))
    age_hours = _num(bs.get("age_hours"))
    off = _dict(bs.get("offhost"))
    repo = _dict(bs.get("repo_check"))
    drill = _dict(bs.get("restore_drill"))
    off_state = _text(off.get("state")) or "desconhecido"
    row["backup"] = {
        "last_success": last.isoformat() if last else "",
        "age_days": (today - last).days if last else None,
        "late": age_hours is None or age_hours > max_age,
        "verified": bs.get("verified") is True,
        "check": _text(bs.get("check")),
        "offhost": off_state,
        "offhost_label": OFFHOST_LABELS.get(off_state, off_state),
        "offhost_last_success": iso_day(off.get("last_success") or off.get("last_push")),
        "offhost_pending_days": _int(off.get("pending_days")),
        "repo_check": _text(repo.get("result")),
        "repo_checked_at": iso_day(repo.get("checked_at")),
        "restore_drill": _text(drill.get("result")),
        "restore_drill_at": iso_day(drill.get("finished_at")),
        "restore_drill_hashes": drill.get("hashes_compared") is True,
        # the record's status: a record that is not taken (unreadable, untrusted, ...) says so in the cell and in
        # its own pendency (_states), never "sem registro" nor a backup in time
        "record": record["status"],
        "record_cell": "" if record["usable"] or record["status"] == MISSING else cell_text(record, ""),
    }
    escrow = off.get("escrow")
    borg = _text(off.get("method")).startswith("borg")
    row["backup"]["offhost_escrow"] = (_dict(escrow).get("escrowed") is True) if borg and escrow is not None else None
    if role != "local_server" or row["backup"]["record_cell"]:
        return
    if borg and row["backup"]["offhost_escrow"] is not True:
        # the repository's passphrase only on the UBS: the off-host copy is unreadable the day the server is lost
        why = (
            "não registrada (não verificável: o backup diário ainda não rodou com esta versão da coleção)"
            if escrow is None
            else "ausente: a senha (e a chave) do repositório estão só no servidor da UBS"
        )
        pend.append(
            _pendency(
                "custodia_chave",
                "alta",
                f"chave do repositório de cópias sem custódia (escrow): custódia {why}; se o servidor se perder, a "
                "cópia externa fica ilegível. Definir backup_schedule_borg_export_dir (exportação para o cofre do "
                "NTINF) ou backup_schedule_borg_passphrase (inventário ou credencial do AWX) e rodar o backup_schedule",
                "copia_externa",
                BACKUP_NT,
            )
        )
    if row["backup"]["late"]:
        pend.append(
            _pendency(
                "backup",
                "alta",
                "backup diário do banco ausente ou atrasado (a Nota Técnica pede backup diário guardado fora do "
                "servidor)",
                "backup",
                BACKUP_NT,
            )
        )
    check = row["backup"]["check"]
    if check in BAD_CHECKS:
        path = _text(bs.get("path"), "?").rsplit("/", 1)[-1]
        when = day_text(bs.get("verified_at")) or "?"
        pend.append(
            _pendency(
                "backup_verificacao",
                "critica",
                f"CRÍTICO: o último backup NÃO confere: {BAD_CHECKS[check]} ({path}; verificado em {when}); fazer um "
                "novo backup agora e verificar o disco do servidor",
                "backup",
                BACKUP_NT,
            )
        )
    if status == "inapta":
        pending_days = row["backup"]["offhost_pending_days"]
        failing = "está falhando" + (f" ({_text(off.get('error'))})" if off.get("error") else "")
        why = {
            "failed": failing,
            "failing": failing,
            "stale": "está atrasada" + (f" ({pending_days} dia(s) sem envio)" if pending_days else ""),
            "disabled": "está desativada",
            "desconhecido": "não tem registro",
        }.get(off_state)
        if why is None and off_state == "pending" and (pending_days or 0) >= 2:
            why = f"está pendente há {pending_days} dia(s)"
        if why:
            pend.append(
                _pendency(
                    "copia_externa",
                    "alta",
                    f"a cópia do backup fora do servidor {why}: numa UBS inapta o servidor local continua em uso e "
                    "precisa da cópia externa diária",
                    "copia_externa",
                    BACKUP_NT,
                )
            )
    if row["backup"]["repo_check"] in ("failed", "falha", "error"):
        pend.append(
            _pendency(
                "repositorio",
                "critica",
                "a verificação do repositório de backups falhou"
                + (f" em {day_text(repo.get('checked_at'))}" if repo.get("checked_at") else "")
                + ": conferir o repositório antes que seja preciso restaurar",
                "copia_externa",
                BACKUP_NT,
            )
        )
    drill_result = row["backup"]["restore_drill"]
    if drill_result in ("failed", "falha", "error"):
        pend.append(
            _pendency(
                "teste_restauracao",
                "critica",
                f"o último teste de restauração falhou ({day_text(drill.get('finished_at')) or '?'}): o backup pode "
                "não servir; investigar e repetir o teste",
                "restauracao",
                BACKUP_NT,
            )
        )
    elif drill_result == "ok" and not row["backup"]["restore_drill_hashes"]:
        pend.append(
            _pendency(
                "teste_restauracao",
                "media",
                f"o último teste de restauração ({day_text(drill.get('finished_at')) or '?'}) conferiu só a contagem "
                "de linhas, não o conteúdo (o backup não trazia os hashes por linha): o próximo backup verificado "
                "os traz; repetir o teste depois dele",
                "restauracao",
                BACKUP_NT,
            )
        )
    elif not drill_result or drill_result == "never":
        pend.append(
            _pendency(
                "teste_restauracao",
                "media",
                "nenhum teste de restauração registrado: agendar um (playbooks/backup.yml)",
                "restauracao",
                BACKUP_NT,
            )
        )


def _hardening_state(record, row, pend):
    """hardening: the mode of the last run, its counts and the failing controls grouped by the note's item and by
    what to do (report_hardening); the control ids only in the UBS's detail."""
    data = record["data"]
    summary = _dict(data.get("summary"))
    fails = _int(summary.get("fail"), 0)
    unverifiable = _int(summary.get("not_verifiable_here"), 0)
    mode = _text(data.get("mode"))
    text = (HARDENING_MODES[mode] + ": " if mode in HARDENING_MODES else "") + (
        f"{_int(summary.get('pass'), 0)} ok, {fails} falha(s)"
    )
    if unverifiable:
        text += f", {unverifiable} não verificável(is) aqui"
    groups = report_hardening.groups(data) if record["usable"] else []
    link = "#seguranca-" + row["host"]
    row["hardening"] = {"mode": mode, "groups": groups, "link": link[1:]}
    if record["usable"] and fails > 0:
        texts = report_hardening.pendency_texts(data) or {
            CONCERN_NT["hardening"]: f"segurança: {fails} controle(s) falhando (o registro não diz quais): rodar "
            "playbooks/harden.yml de novo para o detalhe"
        }
        for nt, msg in sorted(texts.items()):
            pend.append(_pendency("hardening", "alta", msg, "hardening", nt, link if groups else ""))
    return {"hardening": cell_text(record, text)}


def _maintenance_state(record, row, pend):
    """maintenance: the steps of the last run in alarm or in error."""
    steps = _dict(record["data"].get("steps"))
    alarms = [
        (name, _dict(step)) for name, step in sorted(steps.items()) if _dict(step).get("status") in ("alarme", "erro")
    ]
    for name, step in alarms:
        pend.append(
            _pendency(
                "manutencao",
                "alta",
                f"alarme da manutenção ({name}): {_text(step.get('detail'), _text(step.get('status')))}",
                "maintenance",
                CONCERN_NT["maintenance"],
            )
        )
    return {"maintenance": cell_text(record, f"{len(alarms)} alarme(s)" if alarms else "sem alarmes")}


def _cnes_state(record, row, pend):
    """cnes_import: the last import and an import waiting for an operator."""
    cnes = record["data"]
    last_import = _dict(cnes.get("last_import"))
    pending_manual = _dict(cnes.get("pending_manual"))
    method = CNES_METHODS.get(_text(last_import.get("method")), "")
    when = day_text(last_import.get("date"))
    text = (
        " ".join(w for w in ("importado", method, when and "em " + when) if w) if last_import else "nenhuma importação"
    )
    if pending_manual and _text(pending_manual.get("method")) == "api_nao_verificada":
        text += "; " + CNES_PENDING_METHODS["api_nao_verificada"]
        pend.append(
            _pendency(
                "cnes_manual",
                "media",
                f"conferir no PEC (menu CNES) se terminou a importação do arquivo do CNES "
                f"{_text(pending_manual.get('file'), '')} enviada pela API em "
                f"{day_text(pending_manual.get('staged_at')) or '?'} e confirmar com cnes_import_confirm_manual=true",
                "cnes",
                CONCERN_NT["cnes"],
            )
        )
    elif pending_manual:
        text += "; arquivo " + CNES_PENDING_METHODS["manual"]
        pend.append(
            _pendency(
                "cnes_manual",
                "media",
                f"importar pela tela do PEC o arquivo do CNES {_text(pending_manual.get('file'), '')} "
                f"(preparado em {day_text(pending_manual.get('staged_at')) or '?'}, em "
                f"{_text(pending_manual.get('path'), '?')})",
                "cnes",
                CONCERN_NT["cnes"],
            )
        )
    return {"cnes": cell_text(record, text)}


def _profiles_state(record, row, pend):
    """profile_audit: the mismatches with the CNES."""
    listed = record["data"].get("mismatches")
    mismatches = len(listed) if isinstance(listed, list) else _int(listed, 0)
    if record["usable"] and mismatches:
        pend.append(
            _pendency(
                "perfis",
                "alta",
                f"{mismatches} perfil(is) de profissional não confere(m) com a lotação do CNES: corrigir no PEC",
                "profiles",
                CONCERN_NT["profiles"],
            )
        )
    return {"profiles": cell_text(record, f"{mismatches} divergência(s)" if mismatches else "sem divergências")}


def _central_profiles_state(record, row, pend):
    """the central server's side of a migrated UBS: its professionals' lotações and profiles there."""
    if row.get("status") != "migrada":
        return {}
    central = record["data"]
    if record["status"] == MISSING:
        pend.append(
            _pendency(
                "perfis_central",
                "media",
                "os perfis desta UBS no servidor central ainda não foram conferidos: rodar o relatório "
                "(report.yml) com o servidor central no inventário (grupo servidor_central)",
                "profiles",
                CONCERN_NT["central_profiles"],
            )
        )
        return {"profiles": "servidor central não conferido"}
    if not record["usable"]:
        return {"profiles": "servidor central: " + cell_text(record, "")}
    if not central.get("checked"):
        pend.append(
            _pendency(
                "perfis_central",
                "media",
                "perfis no servidor central não conferidos: " + _text(central.get("reason"), "motivo não registrado"),
                "profiles",
                CONCERN_NT["central_profiles"],
            )
        )
        return {"profiles": cell_text(record, "servidor central não conferido")}
    wrong = _list(central.get("mismatches"))
    missing = sum(1 for m in wrong if _dict(m).get("tipo") == "profissional_sem_lotacao_no_central")
    if wrong:
        pend.append(
            _pendency(
                "perfis_central",
                "alta",
                f"no servidor central ({_text(central.get('central'), '?')}), {missing} profissional(is) desta "
                f"UBS sem lotação e {len(wrong) - missing} lotação(ões) ou perfil(is) que não conferem com o "
                "CNES: corrigir no servidor central (importar o CNES ou ajustar a lotação e o perfil)",
                "profiles",
                CONCERN_NT["central_profiles"],
            )
        )
    return {
        "profiles": cell_text(
            record, f"servidor central: {len(wrong)} divergência(s)" if wrong else "servidor central: sem divergências"
        )
    }


def _lotes_state(record, row, pend):
    """lotes_export: lotes pending and the CDS deadline per unit."""
    lotes = record["data"]
    pending_lotes = _int(lotes.get("pending_lotes"), 0)
    cds = _dict(lotes.get("deadline"))
    row["lotes_pending"] = pending_lotes if record["usable"] else None
    row["cds_deadline"] = iso_day(cds.get("deadline"))
    units = [
        {"cnes": _text(u.get("cnes"), "?"), "status": u["status"], "pending": _int(u.get("pending_records"), 0)}
        for u in (_dict(u) for u in _list(cds.get("units")))
        if u.get("status") in CDS_STATUSES
    ]
    # the CDS of the month the lotes job follows, per unit (the team pages and the history read it)
    row["cds"] = {
        "month": _text(cds.get("month")),
        "deadline": iso_day(cds.get("deadline")),
        "units": units,
        "source": "lotes" if units else "",
    }
    for unit in _list(cds.get("units")):
        if unit.get("status") in ("pendente", "atrasado"):
            pend.append(
                _pendency(
                    "cds",
                    "alta" if unit.get("status") == "atrasado" else "media",
                    f"produção de {_text(cds.get('month'), '?')} (CNES {_text(unit.get('cnes'), '?')}): "
                    f"{unit.get('status')}, {_int(unit.get('pending_records'), 0)} registro(s) sem envio confirmado; "
                    f"prazo {day_text(cds.get('deadline')) or '?'}",
                    "lotes",
                    CDS_NT,
                )
            )
    deadline = f"; prazo {day_text(cds.get('deadline'))}" if cds.get("deadline") else ""
    return {"lotes": cell_text(record, f"{pending_lotes} pendente(s){deadline}")}


def _upgrade_state(record, row, pend):
    """upgrade: the last upgrade (roles/upgrade records {last: {version, target_version, result, message, soak},
    history}), its result in Portuguese, and a pendency when it did not end at the target."""
    last = _dict(record["data"].get("last"))
    if not last:
        return {"upgrade": cell_text(record, "sem atualização")}
    result = _text(last.get("result"))
    version, target = _text(last.get("version")), _text(last.get("target_version"))
    text = f"PEC {version or '?'}: {UPGRADE_RESULTS[result]}"
    if target and target != version:
        text += f" (alvo {target})"
    soak = _dict(last.get("soak"))
    if soak.get("state") == "soaking":
        since = day_text(soak.get("since"))
        text += f"; {SOAK_STATES['soaking']}" + (f" desde {since}" if since else "")
    if result not in UPGRADE_OK:
        pend.append(
            _pendency(
                "upgrade",
                "alta",
                f"a última atualização do PEC{' para ' + target if target else ''}: {UPGRADE_RESULTS[result]}"
                + (f" ({last.get('message')})" if last.get("message") else "")
                + (f"; o PEC está em {version}" if version else ""),
                "upgrade",
                _version_nt(row.get("status")),
            )
        )
    return {"upgrade": cell_text(record, text)}


def _readiness_state(record, row, pend):
    """readiness: the measurement against the CTINF classification."""
    ready = record["data"]
    verdict = _text(ready.get("verdict"))
    mbps = _num(ready.get("measured_mbps"))
    if record["usable"] and ready.get("agrees") is False:
        group = {"ubs_aptas": "apta", "ubs_inaptas": "inapta"}.get(_text(ready.get("group")), _text(ready.get("group")))
        pend.append(
            _pendency(
                "aptidao_divergente",
                "alta",
                f"a medição de {day_text(ready.get('measured_at')) or '?'} indica '{verdict or '?'}' "
                f"({(f'{mbps:.1f}' if mbps is not None else '?').replace('.', ',')} Mbit/s), mas o CTINF classificou "
                f"a UBS como '{group or '?'}': rever a classificação com o CTINF",
                "readiness",
                CONCERN_NT["readiness"],
            )
        )
    return {
        "readiness": cell_text(
            record, (verdict or "?") + (f", {mbps:.1f} Mbit/s".replace(".", ",") if mbps is not None else "")
        )
    }


# One summary per concern of the server's state, reading its record (report_states: the schema it was validated
# against, {} when the record is not taken): each adds the concern's pendencies and returns the report cells it
# fills (the central server's side of a migrated UBS fills the profiles cell). In report order: the pendencies come
# out in this order. The manual steps are read with the PEC's capabilities (_manual_steps), the backup with the
# backup columns (_backup).
STATE_READERS = {
    "hardening": _hardening_state,
    "maintenance": _maintenance_state,
    "cnes": _cnes_state,
    "profiles": _profiles_state,
    "central_profiles": _central_profiles_state,
    "lotes": _lotes_state,
    "upgrade": _upgrade_state,
    "readiness": _readiness_state,
}


def _states(row, state_raw, records, pend, installed):
    """The record pendencies (a record not taken, a stale one) and every concern's cells."""
    row["state_missing"] = bool(installed and all(records[name]["status"] == MISSING for name in CONCERNS))
    if installed and state_raw is not None and not isinstance(state_raw, dict):
        pend.append(
            _pendency(
                "estado_corrompido",
                "alta",
                "o registro de estado do servidor está ilegível: inspecionar os arquivos de estado no servidor",
                "situacao",
            )
        )
    elif row["state_missing"]:
        pend.append(
            _pendency(
                "sem_estado",
                "media",
                "o servidor não tem nenhum registro de estado (segurança, manutenção, CNES, perfis, lotes, "
                "aptidão): rodar as rotinas da coleção neste servidor",
                "situacao",
            )
        )
    for name, record in records.items():
        field = RECORD_FIELDS.get(name, name)
        nt = CONCERN_NT.get(name, "")
        if record["status"] == STALE and name != "backup":  # the backup's age is its own pendency
            produced = day_text(record["day"]) or "data desconhecida"
            pend.append(
                _pendency(
                    "estado_desatualizado",
                    "media",
                    f"o registro de {report_states.CONCERNS[name].label} está desatualizado (produzido em "
                    f"{produced}): a rotina não rodou no prazo",
                    field,
                    nt,
                )
            )
        elif RECORD[record["status"]]["severity"] and record["status"] != STALE:
            severity = RECORD[record["status"]]["severity"]
            pend.append(_pendency("estado_" + record["status"], severity, problem_text(record), field, nt))
    cells = {}
    for name, reader in STATE_READERS.items():
        cells.update(reader(records[name], row, pend))
    row["states"] = {
        name: {
            "cell": cells.get(name, ""),
            "status": records[name]["status"],
            "detail": records[name]["detail"],
            "stale": records[name]["stale"],
            "error": not records[name]["usable"] and records[name]["status"] != MISSING,
            "present": records[name]["present"],
        }
        for name in CONCERNS
    }


def _production(row, pec, pend):
    production = _dict(pec.get("production"))
    months = [m for m in _list(production.get("months")) if isinstance(m, str)]
    teams = []
    for team in _list(production.get("teams")):
        team = _dict(team)
        per_month = _dict(team.get("months"))
        teams.append(
            {
                "ine": _text(team.get("ine"), "?"),
                "name": _text(team.get("name")),
                "months": {
                    m: {k: _int(_dict(per_month.get(m)).get(k), 0) for k in ("produced", "sent", "pending")}
                    for m in months
                },
            }
        )
    prev = _dict(production.get("previous_month"))
    unit_pending = sum(
        _int(_dict(_dict(_dict(u).get("months")).get(m)).get("pending"), 0)
        for u in _list(production.get("units"))
        for m in months
    )
    units = []
    for unit in _list(production.get("units")):
        per_month = _dict(_dict(unit).get("months"))
        units.append(
            {
                "cnes": _text(_dict(unit).get("cnes"), "?"),
                "months": {
                    m: {k: _int(_dict(per_month.get(m)).get(k), 0) for k in ("produced", "sent", "pending")}
                    for m in months
                },
            }
        )
    unavailable = production.get("available") is False
    row["production"] = {
        "months": months,
        "teams": teams,
        "units": units,
        "pending": unit_pending,
        "unavailable": _text(production.get("reason") or production.get("error"))
        or ("indisponível" if unavailable else ""),
        # pec_info reads no team where this PEC's schema lacks what the per-team view needs (said, never guessed)
        "teams_unavailable": _text(production.get("teams_unavailable")),
    }
    row["previous_month"] = {
        "month": _text(prev.get("month")),
        "deadline": iso_day(prev.get("deadline")),
        "complete": prev.get("complete") if isinstance(prev.get("complete"), bool) else None,
        "days_left": _int(prev.get("days_left")),
    }
    if not _dict(row.get("cds")).get("units") and prev.get("month"):
        # no CDS record of the lotes job: the units of pec_info's previous month (sent on time, late, pending)
        row["cds"] = {
            "month": _text(prev.get("month")),
            "deadline": iso_day(prev.get("deadline")),
            "units": [
                {
                    "cnes": _text(_dict(u).get("cnes"), "?"),
                    "status": _cds_status(_dict(u), _int(prev.get("days_left"))),
                    "pending": _int(_dict(u).get("pending"), 0),
                }
                for u in _list(prev.get("units"))
                if isinstance(_dict(u).get("complete"), bool)
            ],
            "source": "producao",
        }
    if prev and prev.get("complete") is False and not any(p["code"] == "cds" for p in pend):
        days = _int(prev.get("days_left"), 0)
        late = days < 0
        pend.append(
            _pendency(
                "producao",
                "alta" if late else "media",
                f"produção de {_text(prev.get('month'), '?')} ainda não foi toda enviada; "
                + (f"o prazo venceu há {-days} dia(s)" if late else f"faltam {days} dia(s) para o prazo"),
                "lotes",
                CDS_NT,
            )
        )


def _cds_status(unit, days_left):
    """A unit's CDS status (report_states.CDS_STATUSES) from pec_info's previous month: complete on time, complete
    late, or not complete before or after the deadline."""
    if unit.get("complete") is True:
        return "em_dia" if unit.get("on_time") is not False else "enviado_com_atraso"
    return "atrasado" if days_left is not None and days_left < 0 else "pendente"


# ---------------------------------------------------------------------------------------------------- fleet
def _safe_row(host, settings, today):
    """The row of one UBS; should its data still break the model, the row says so and the others go on."""
    try:
        return build_row(host, settings, today)
    except Exception as exc:  # one UBS's data never stops the report of the others
        host = _dict(host)
        what = f"o relatório não conseguiu ler os dados desta UBS ({type(exc).__name__}: {str(exc)[:200]})"
        return build_row(
            {k: host.get(k) for k in ("host", "name", "cnes", "groups")} | {"read_error": what}, settings, today
        )


def build(hosts, settings=None, today=None):
    """The report model: {date, regions: [{region, label, rows, counts}], rows, pendencies}.

    ``hosts``: one dict per UBS: host, name, cnes, groups (its inventory groups), pec (pec_info's result, or None
    when the host did not answer), aptidao, migration_date, target_version, deadline, failure and route (the
    regime's regime_failure and regime_route of the same run), legacy (same-run facts:
    upgrade_summary, hardening_report, lotes_export_deadline). ``settings``: region_prefix, backup_max_age_hours,
    regions (inventory region groups, so a region with no UBS still has a page). ``today``: the report's date.
    """
    settings = settings or {}
    today = today or datetime.date.today()
    rows = sorted(
        (_safe_row(h, settings, today) for h in _list(hosts)), key=lambda r: (r["region"], r["ubs"], r["host"])
    )
    prefix = settings.get("region_prefix") or "regiao_"
    names = sorted({r["region"] for r in rows} | {g for g in _list(settings.get("regions")) if isinstance(g, str)})
    regions = []
    for name in names:
        members = [r for r in rows if r["region"] == name]
        regions.append(
            {
                "region": name,
                "label": region_label(name, prefix),
                "rows": members,
                "counts": {s: sum(1 for r in members if r["status"] == s) for s in STATUS_LABELS},
                "pendencies": sum(len(r["pendencias"]) for r in members),
                "due": sum(1 for r in members if r["due"]),
            }
        )
    return {
        "date": today.isoformat(),
        "target_version": next((r["version"]["target"] for r in rows if r["version"]["target"]), ""),
        "regions": regions,
        "rows": rows,
        "pendencies": [dict(p, host=r["host"], ubs=r["ubs"]) for r in rows for p in r["pendencias"]],
    }


def cell_mark(row, field):
    """How a cell of the table is marked: ``due`` (red: action needed), ``stale`` (amber: a record out of date or
    not taken) or ''. The pages and the history mark a cell the same way."""
    if field and field in row.get("red_fields", ()):
        return "due"
    state = row.get("states", {}).get(field) if field else None
    if state and (state["stale"] or state["error"]):
        return "stale"
    return ""


def summary_lines(model):
    """The summary printed in the play: one line per UBS, counted from the same pendency list as the pages."""
    lines = []
    for region in model["regions"]:
        lines.append(f"{region['label']}: {len(region['rows'])} UBS, {region['pendencies']} pendência(s)")
        if not region["rows"]:
            lines.append("  nenhuma UBS nesta região no inventário")
        for r in region["rows"]:
            version = r["version"]["current"] or "-"
            lines.append(
                f"  {r['ubs']} (CNES {r['cnes']}, {r['status_label']}): {r['role_label']}, PEC {version}, "
                f"pendências: {len(r['pendencias'])}"
            )
            lines.extend(f"    - [{p['severity']}] {p['msg']}" for p in r["pendencias"])
    return lines
