# Copyright: (c) 2026, SES-DF NTINF
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Monthly production of a UBS for its managers (GSAP): read-only, bounded, from the local PEC database.

Two views, because the schema ties them to different keys:

- per team (INE) and month: attendances recorded (``tb_atend`` → ``tb_lotacao.co_equipe`` → ``tb_equipe``);
- per unit (CNES) and month: transmission records (``tb_dado_transp``) produced, in a lote confirmed at the
  destination (the lotes ledger, or a lote the PEC itself marked sent) and still pending — a transmission row
  carries its unit, not its team, so sent/pending cannot honestly be split per team.

Every query is bounded to the window (``dt >= first day AND dt < next month``) and grouped in the database: the
result is a few rows per team and month, whatever the size of the database. The schema is probed first
(``information_schema``); a missing table or column makes the view unavailable with the reason, never a guess.
"""

from __future__ import annotations

import datetime

from ansible_collections.sesdf.esus.plugins.module_utils._fsutil import read_json
from ansible_collections.sesdf.esus.plugins.module_utils._timeutil import cds_deadline, next_month
from ansible_collections.sesdf.esus.plugins.module_utils.pec_common import PecError
from ansible_collections.sesdf.esus.plugins.module_utils.pec_db import missing_schema, sql_literal

NEEDED = {
    "teams": {
        "tb_atend": ["co_lotacao", "dt_inicio"],
        "tb_lotacao": ["co_ator_papel", "co_equipe", "co_unidade_saude"],
        "tb_equipe": ["co_seq_equipe", "nu_ine", "no_equipe"],
        "tb_unidade_saude": ["co_seq_unidade_saude", "nu_cnes"],
    },
    "units": {
        "tb_dado_transp": ["co_unidade_saude", "dt_registro", "co_lote_transp"],
        "tb_lote_transp": ["co_seq_lote_transp", "co_situacao", "dt_envio"],
        "tb_situacao_lote_transp": ["co_situacao", "no_situacao"],
        "tb_unidade_saude": ["co_seq_unidade_saude", "nu_cnes"],
    },
}


def month_firsts(today, months=12):
    """First days of the ``months`` months ending with today's, oldest first."""
    firsts = []
    year, month = today.year, today.month
    for _month in range(months):
        firsts.append(datetime.date(year, month, 1))
        year, month = (year - 1, 12) if month == 1 else (year, month - 1)
    return list(reversed(firsts))


def team_rows(client, start, end):
    """[(ine|None, team name|None, cnes, 'YYYY-MM', count)] of attendances started in [start, end)."""
    rows = client.query(
        "SELECT e.nu_ine, e.no_equipe, u.nu_cnes, to_char(date_trunc('month', a.dt_inicio), 'YYYY-MM'), count(*) "
        "FROM tb_atend a JOIN tb_lotacao l ON l.co_ator_papel = a.co_lotacao "
        "LEFT JOIN tb_equipe e ON e.co_seq_equipe = l.co_equipe "
        "JOIN tb_unidade_saude u ON u.co_seq_unidade_saude = l.co_unidade_saude "
        f"WHERE a.dt_inicio >= {sql_literal(start.isoformat())} AND a.dt_inicio < {sql_literal(end.isoformat())} "
        "GROUP BY 1, 2, 3, 4 ORDER BY 1, 4"
    )
    return [(r[0], r[1], r[2], r[3], int(r[4])) for r in rows]


def unit_rows(client, start, end):
    """[(cnes, 'YYYY-MM', lote_id|None, situation name|None, sent_at|None, count)] of transmission rows."""
    rows = client.query(
        "SELECT u.nu_cnes, to_char(date_trunc('month', d.dt_registro), 'YYYY-MM'), d.co_lote_transp, s.no_situacao, "
        "to_char(l.dt_envio, 'YYYY-MM-DD\"T\"HH24:MI:SS'), count(*) FROM tb_dado_transp d "
        "JOIN tb_unidade_saude u ON u.co_seq_unidade_saude = d.co_unidade_saude "
        "LEFT JOIN tb_lote_transp l ON l.co_seq_lote_transp = d.co_lote_transp "
        "LEFT JOIN tb_situacao_lote_transp s ON s.co_situacao = l.co_situacao "
        f"WHERE d.dt_registro >= {sql_literal(start.isoformat())} AND d.dt_registro < {sql_literal(end.isoformat())} "
        "GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2"
    )
    return [(r[0], r[1], int(r[2]) if r[2] is not None else None, r[3], r[4], int(r[5])) for r in rows]


def ledger_confirmations(path):
    """{lote id (str): confirmed_at} from the lotes ledger; {} when there is none. Raises PecError when corrupt."""
    data = read_json(path, "lotes ledger", missing={}) if path else {}
    lotes = data.get("lotes") if isinstance(data, dict) else None
    if data and not isinstance(lotes, dict):
        raise PecError(f"the lotes ledger {path} has an unknown layout")
    return {str(k): (v or {}).get("confirmed_at") for k, v in (lotes or {}).items() if (v or {}).get("confirmed_at")}


def summarize(teams, units, confirmations, months, today, sent_name="ENVIADO", deadline_day=10):
    """The production document from the grouped rows (pure: tested without a database)."""
    keys = [m.strftime("%Y-%m") for m in months]
    by_team = {}
    for ine, name, cnes, month, count in teams:
        key = ine or "sem_equipe"
        team = by_team.setdefault(
            key, {"ine": ine, "name": name or "sem equipe", "cnes": cnes, "months": {}, "total": 0}
        )
        slot = team["months"].setdefault(month, {"produced": 0})
        slot["produced"] += count
        team["total"] += count
    by_unit = {}
    last_confirmed = {}
    for cnes, month, lote_id, situation, sent_at, count in units:
        unit = by_unit.setdefault(cnes, {"cnes": cnes, "months": {}})
        slot = unit["months"].setdefault(month, {"produced": 0, "sent": 0, "pending": 0})
        slot["produced"] += count
        confirmed_at = confirmations.get(str(lote_id)) if lote_id is not None else None
        if confirmed_at is None and situation == sent_name and sent_at:
            confirmed_at = sent_at
        if confirmed_at:
            slot["sent"] += count
            mark = (cnes, month)
            if mark not in last_confirmed or confirmed_at > last_confirmed[mark]:
                last_confirmed[mark] = confirmed_at
        else:
            slot["pending"] += count
    previous = months[-2] if len(months) > 1 else months[-1]
    prev_key = previous.strftime("%Y-%m")
    deadline = cds_deadline(previous, deadline_day)
    prev_units = []
    for cnes, unit in sorted(by_unit.items()):
        slot = unit["months"].get(prev_key, {"produced": 0, "sent": 0, "pending": 0})
        late = last_confirmed.get((cnes, prev_key))
        prev_units.append(
            {
                "cnes": cnes,
                "pending": slot["pending"],
                "complete": slot["pending"] == 0,
                "on_time": slot["pending"] == 0 and (late is None or late[:10] <= deadline.isoformat()),
            }
        )
    return {
        "available": True,
        "months": keys,
        "teams": [by_team[k] for k in sorted(by_team)],
        "units": [by_unit[k] for k in sorted(by_unit)],
        "previous_month": {
            "month": prev_key,
            "deadline": deadline.isoformat(),
            "days_left": (deadline - today).days,
            "complete": all(u["complete"] for u in prev_units),
            "units": prev_units,
        },
    }


def gather(client, today=None, months=12, ledger_path=None, sent_name="ENVIADO", deadline_day=10):
    """Production of the last ``months`` months (this one included). Never writes. Raises PecError on a query."""
    today = today or datetime.date.today()
    firsts = month_firsts(today, months)
    start, end = firsts[0], next_month(firsts[-1])
    missing = {view: missing_schema(client, needed) for view, needed in NEEDED.items()}
    teams = team_rows(client, start, end) if not missing["teams"] else []
    units = unit_rows(client, start, end) if not missing["units"] else []
    try:
        confirmations = ledger_confirmations(ledger_path)
        ledger_error = None
    except PecError as exc:
        confirmations, ledger_error = {}, exc.msg
    doc = summarize(teams, units, confirmations, firsts, today, sent_name, deadline_day)
    doc["window"] = {"from": start.isoformat(), "to": end.isoformat()}
    for view, lacks in missing.items():
        if lacks:
            doc[f"{view}_unavailable"] = (
                "this PEC's schema lacks " + ", ".join(lacks) + ": the view is not computed (nothing is guessed)"
            )
    if ledger_error:
        doc["ledger_error"] = ledger_error + "; confirmations counted only from the PEC's own sent lotes"
    if missing["teams"] and missing["units"]:
        doc["available"] = False
    return doc
