# Copyright: (c) 2026, SES-DF NTINF
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The regime of one UBS: which flow of the technical note it gets today, and IT's version deadline.

Pure functions over the inventory (groups, dates, IT's target version) and the state read from the server
(pec_info's role and version consensus). ``decide`` raises ``PecError`` naming the host and the inventory variable
for bad input; the caller fails that host only.

Flows:
  migracao    apt (ubs_aptas), local server, CTINF's migration date reached: the migration flow.
  aguardando_aprovacao
              apt, local server, CTINF's date reached, but this run does not migrate by itself (migrate_enabled
              false: AWX's nightly regime): nothing is done; the approval it waits for is in ``approvals``.
  aguardando  apt, local server, no migration date yet or a future one: nothing is done, it is reported.
  local       inapt (ubs_inaptas), local server: the local-server regime (hardening, daily backup with its
              off-host copy, maintenance, weekly CNES and lotes jobs, upgrade inside IT's window).
  consulta    migrated (the migration record says so): consultation checks only, never a write to the PEC.
  sem_pec     no PEC installed on the server: nothing to do, reported.
"""

from __future__ import annotations

import datetime
import re

from ansible_collections.sesdf.esus.plugins.module_utils.pec_common import PecError, compare_versions

APT_GROUP = "ubs_aptas"
INAPT_GROUP = "ubs_inaptas"
REGIONS = (
    "regiao_central",
    "regiao_centro_sul",
    "regiao_norte",
    "regiao_sul",
    "regiao_leste",
    "regiao_oeste",
    "regiao_sudoeste",
)
FLOWS = ("migracao", "aguardando_aprovacao", "aguardando", "local", "consulta", "sem_pec")
# What a UBS waits for when its flow is due but the run does not do it by itself (migrate_enabled/upgrade_enabled
# false): CTINF's approval, where ``*_approval`` says (the AWX workflow), or in general words.
_APPROVAL = "aguarda a aprovação da CTINF"
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_WINDOW = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)$")
_VERSION = re.compile(r"^\d+(\.\d+){1,3}$")


def parse_date(host, variable, value):
    """YYYY-MM-DD -> date; None for empty. PecError naming the host and the variable otherwise."""
    if value in (None, ""):
        return None
    text = str(value).strip()
    if _DATE.match(text):
        try:
            return datetime.date.fromisoformat(text)
        except ValueError:
            pass
    raise PecError(
        f"{host}: {variable}={text!r} não é uma data no formato AAAA-MM-DD (ex.: 2027-03-15); corrija o inventário"
    )


def parse_window(host, variable, value):
    """'HH:MM-HH:MM' (may cross midnight) -> ((h, m), (h, m)). PecError naming the variable otherwise."""
    match = _WINDOW.match(str(value or "").strip())
    if not match:
        raise PecError(
            f"{host}: {variable}={value!r} não é uma janela de manutenção no formato HH:MM-HH:MM "
            "(ex.: 20:00-06:00); corrija o inventário"
        )
    start_h, start_m, end_h, end_m = (int(part) for part in match.groups())
    return (start_h, start_m), (end_h, end_m)


def in_window(window, now):
    """True when the wall-clock time ``now`` (datetime) is inside the window (end excluded; may cross midnight)."""
    (start_h, start_m), (end_h, end_m) = window
    start, end, current = start_h * 60 + start_m, end_h * 60 + end_m, now.hour * 60 + now.minute
    if start == end:
        return True
    if start < end:
        return start <= current < end
    return current >= start or current < end


def region_of(host, group_names, regions=REGIONS):
    """The one health region group of the host. PecError when it has none, several, or an unknown one."""
    found = sorted(group for group in group_names if group.startswith("regiao_"))
    unknown = [group for group in found if group not in regions]
    if unknown:
        raise PecError(
            f"{host}: região desconhecida {', '.join(unknown)}; as regiões são {', '.join(regions)} "
            "(grupos regiao_* do inventário)"
        )
    if len(found) != 1:
        raise PecError(
            f"{host}: a UBS deve estar em exatamente um grupo regiao_* (está em "
            f"{', '.join(found) or 'nenhum'}); corrija o inventário"
        )
    return found[0]


def upgrade_plan(host, version, target, opens, deadline, window, today, now):
    """IT's deadline for the target version: below target, days left (negative: overdue), window open, due now."""
    plan = {
        "target": target or None,
        "version": version,
        "deadline": deadline.isoformat() if deadline else None,
        "opens": opens.isoformat() if opens else None,
        "below_target": None,
        "days_left": None,
        "window_open": False,
        "maintenance_hour": in_window(window, now),
        "due": False,
        "reason": "",
    }
    if not target:
        plan["reason"] = "sem versão-alvo definida pela TI (sesdf_esus_versao_alvo)"
        return plan
    if not _VERSION.match(str(target)):
        raise PecError(f"{host}: sesdf_esus_versao_alvo={target!r} não é uma versão (ex.: 4.5.2); corrija o inventário")
    if deadline is None:
        raise PecError(
            f"{host}: sesdf_esus_versao_alvo={target} sem prazo; defina sesdf_esus_prazo_atualizacao (AAAA-MM-DD)"
        )
    plan["days_left"] = (deadline - today).days
    if not version:
        plan["reason"] = "versão do PEC desconhecida (as fontes do pec_info não concordam): não atualizar às cegas"
        return plan
    plan["below_target"] = compare_versions(version, target) < 0
    if not plan["below_target"]:
        plan["reason"] = f"já na versão-alvo {target} ou acima ({version})"
        return plan
    plan["window_open"] = opens is None or today >= opens
    if not plan["window_open"]:
        plan["reason"] = f"janela da TI para {target} abre em {opens.isoformat()}"
    elif not plan["maintenance_hour"]:
        plan["reason"] = "fora do horário de manutenção (sesdf_esus_janela_manutencao)"
    else:
        plan["due"] = True
        plan["reason"] = f"atualizar de {version} para {target} (prazo {deadline.isoformat()})"
    return plan


def _approval(flow, reason, where):
    """One approval a UBS waits for: the flow, why it is due, and where it is given (Portuguese, for the report)."""
    return {
        "flow": flow,
        "reason": reason,
        "approve": where or "",
        "msg": f"{reason}: {_APPROVAL}" + (f" ({where})" if where else ""),
    }


def decide(params, today=None, now=None):
    """The flow of one UBS. ``params``: host, group_names, regions, pec_role, version, migration_date,
    target_version, upgrade_opens, upgrade_deadline, maintenance_window, and the switches migrate_enabled and
    upgrade_enabled (default true) with migrate_approval and upgrade_approval (where the approval is given).
    Returns a dict (flow, region, reason, migration, upgrade, approvals).

    A switch false keeps a due flow from running in this run: an apt UBS whose date came gets
    ``aguardando_aprovacao`` instead of ``migracao``, an inapt UBS whose upgrade is due keeps ``local`` with
    ``upgrade.due`` false; each is listed in ``approvals``."""
    host = params["host"]
    now = now or datetime.datetime.now()
    today = today or now.date()
    groups = set(params.get("group_names") or [])
    region = region_of(host, groups, tuple(params.get("regions") or REGIONS))
    apt, inapt = APT_GROUP in groups, INAPT_GROUP in groups
    role = params.get("pec_role") or "none"
    migration_date = parse_date(host, "sesdf_esus_data_migracao", params.get("migration_date"))
    window = parse_window(host, "sesdf_esus_janela_manutencao", params.get("maintenance_window"))
    upgrade = upgrade_plan(
        host,
        params.get("version"),
        params.get("target_version"),
        parse_date(host, "sesdf_esus_atualizacao_inicio", params.get("upgrade_opens")),
        parse_date(host, "sesdf_esus_prazo_atualizacao", params.get("upgrade_deadline")),
        window,
        today,
        now,
    )
    if apt and inapt:
        raise PecError(
            f"{host}: está em {APT_GROUP} e em {INAPT_GROUP}; a CTINF decide um só grupo: corrija o inventário"
        )
    result = {
        "region": region,
        "group": APT_GROUP if apt else (INAPT_GROUP if inapt else None),
        "migration": {"date": migration_date.isoformat() if migration_date else None, "due": False},
        "upgrade": upgrade,
        "approvals": [],
    }
    if role == "consultation":
        result.update(flow="consulta", reason="migrada: servidor em modo consulta, só verificações")
        return result
    if role != "local_server":
        result.update(flow="sem_pec", reason="nenhum PEC instalado neste servidor")
        return result
    if not (apt or inapt):
        raise PecError(
            f"{host}: não está em {APT_GROUP} nem em {INAPT_GROUP}; a CTINF decide o grupo: corrija o inventário"
        )
    if inapt:
        result.update(flow="local", reason="inapta: regime de servidor local")
        if upgrade["due"] and not _enabled(params, "upgrade_enabled"):
            upgrade["due"] = False
            waiting = _approval("atualizacao", upgrade["reason"], params.get("upgrade_approval"))
            upgrade["reason"] = waiting["msg"]
            result["approvals"].append(waiting)
        return result
    if migration_date is None:
        result.update(flow="aguardando", reason="apta, sem data de migração da CTINF (sesdf_esus_data_migracao)")
    elif migration_date > today:
        result.update(flow="aguardando", reason=f"apta, migração marcada para {migration_date.isoformat()}")
    else:
        result["migration"]["due"] = True
        result.update(flow="migracao", reason=f"apta, data de migração {migration_date.isoformat()} alcançada")
        if not _enabled(params, "migrate_enabled"):
            waiting = _approval("migracao", result["reason"], params.get("migrate_approval"))
            result["approvals"].append(waiting)
            result.update(flow="aguardando_aprovacao", reason=waiting["msg"])
    return result


def _enabled(params, switch):
    """A switch of ``params``: true unless given false (None, absent: true, as the role's defaults)."""
    value = params.get(switch)
    return True if value is None else bool(value)
