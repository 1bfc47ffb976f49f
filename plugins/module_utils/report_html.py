# Copyright: (c) 2026, SES-DF NTINF
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The regional report's pages: what each page shows, from :mod:`report_model`'s model and :mod:`report_history`'s
history, rendered by the Jinja2 templates of ``roles/report/templates/relatorio/`` (the wording and the markup
live there, so they change without Python).

Here only what a template cannot say simply: each cell's text and mark (the CSV reads the same :data:`COLUMNS`),
the links between the pages, and the charts' geometry (each bar with its figure in ``data-value``, every chart of a
page at one scale, so what is drawn can be checked against the data). Control node only: Jinja2 is imported when a
page is rendered, with autoescape (every text escaped) and undefined names an error.
"""

from __future__ import annotations

import datetime
import os
import re

from ansible_collections.sesdf.esus.plugins.module_utils import report_history
from ansible_collections.sesdf.esus.plugins.module_utils.report_model import (
    SEVERITIES,
    STATUS_LABELS,
    cell_mark,
    day_text,
)
from ansible_collections.sesdf.esus.plugins.module_utils.report_states import CDS_STATUSES

# The collection's own templates; a directory given to the pages is searched first (one template may be replaced).
TEMPLATES = os.path.normpath(
    os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "roles", "report", "templates", "relatorio")
)
ALL = "todas"
STATUS_COLORS = {
    "migrada": "#2e7d32",
    "aguardando_migracao": "#1565c0",
    "apta": "#1565c0",
    "inapta": "#ef6c00",
    "sem_classificacao": "#757575",
}
SEVERITY_COLORS = {"critica": "#6d0000", "alta": "#c62828", "media": "#f9a825"}
SEVERITY_LABELS = {"critica": "crítica", "alta": "alta", "media": "média"}
GREEN, RED, AMBER, BLUE, GREY = "#2e7d32", "#c62828", "#f9a825", "#1565c0", "#9e9e9e"


def e(value):
    """A text escaped as the templates escape it."""
    from markupsafe import escape

    return str(escape("" if value is None else str(value)))


# ---------------------------------------------------------------------------------------------------- the cells
def _situation(r):
    text = r["status_label"]
    if r["status"] == "migrada" and r["migrated_on"]:
        text += f" em {day_text(r['migrated_on'])}"
    elif r["status"] == "aguardando_migracao" and r["migration_date"]:
        text += f" (prevista pelo CTINF para {day_text(r['migration_date'])})"
    return f"{text}; {r['role_label']}"


def _version(r):
    v = r["version"]
    if not r["reachable"]:
        return "—"
    text = v["current"] or "não identificada"
    if v["target"]:
        text += f" (alvo {v['target']}"
        if v["deadline"]:
            days = v["days_left"]
            when = f"venceu há {-days} dia(s)" if days < 0 else f"faltam {days} dia(s)"
            text += (
                f", prazo {day_text(v['deadline'])}: {when}"
                if v["below_target"]
                else f", prazo {day_text(v['deadline'])}"
            )
        text += ")"
    return text


def _backup(r):
    b = r["backup"]
    if b.get("record_cell"):
        return b["record_cell"]
    if not b["last_success"]:
        return "sem registro"
    age = b["age_days"]
    text = f"{day_text(b['last_success'])} (há {age} dia(s))" if age is not None else day_text(b["last_success"])
    if r["role"] == "local_server":
        text += ", atrasado" if b["late"] else ", em dia"
    if b["check"] in ("mismatch", "missing_manifest", "missing_archive"):
        text += "; NÃO CONFERE"
    return text


def _offhost(r):
    b = r["backup"]
    text = b["offhost_label"]
    if b["offhost_last_success"]:
        text += f" (última {day_text(b['offhost_last_success'])})"
    if b["repo_check"]:
        text += f"; repositório: {b['repo_check']}"
    return text


def _drill(r):
    b = r["backup"]
    if not b["restore_drill"]:
        return "nunca feito"
    return b["restore_drill"] + (f" ({day_text(b['restore_drill_at'])})" if b["restore_drill_at"] else "")


COLUMNS = (
    # (header, field used for red/stale, how to render the cell)
    ("UBS", None, lambda r: r["ubs"]),
    ("CNES", None, lambda r: r["cnes"]),
    ("Situação", "situacao", _situation),
    ("Versão do PEC", "versao", _version),
    ("Último backup verificado", "backup", _backup),
    ("Cópia fora do servidor", "copia_externa", _offhost),
    ("Último teste de restauração", "restauracao", _drill),
    ("Importação do CNES", "cnes", lambda r: r["states"]["cnes"]["cell"]),
    ("Lotes e prazo do CDS", "lotes", lambda r: r["states"]["lotes"]["cell"]),
    ("Segurança", "hardening", lambda r: r["states"]["hardening"]["cell"]),
    ("Manutenção", "maintenance", lambda r: r["states"]["maintenance"]["cell"]),
    ("Perfis", "profiles", lambda r: r["states"]["profiles"]["cell"]),
    ("Atualização", "upgrade", lambda r: r["states"]["upgrade"]["cell"]),
    ("Aptidão medida", "readiness", lambda r: r["states"]["readiness"]["cell"]),
    ("Pendências", None, lambda r: str(len(r["pendencias"]))),
)


def _cells(row, columns, href):
    return [
        {
            "field": field or header,
            "cls": cell_mark(row, field),
            "text": render(row),
            "href": href if header == "UBS" else "",
        }
        for header, field, render in columns
    ]


# ---------------------------------------------------------------------------------------------------- the links
def _slug(host, taken):
    base = re.sub(r"[^A-Za-z0-9._-]", "_", host).lstrip(".") or "ubs"
    name, n = base, 1
    while name.lower() in taken:
        n += 1
        name = f"{base}-{n}"
    taken.add(name.lower())
    return name


def links(model, pdf=False):
    """The file name of every page of ``model``: {regions: {region: html}, pdfs: {region: pdf}, ubs: {host: html},
    equipes: {host: html}}; the pages of each UBS in the day's directory ``detalhe-<AAAA-MM-DD>/``."""
    date = model["date"]
    regions = {r["region"]: f"relatorio-{r['region']}-{date}.html" for r in model["regions"]}
    regions[ALL] = f"relatorio-{ALL}-{date}.html"
    taken = set()
    slugs = {r["host"]: _slug(r["host"], taken) for r in model["rows"]}
    folder = f"detalhe-{date}"
    return {
        "regions": regions,
        "pdfs": {k: v[: -len(".html")] + ".pdf" for k, v in regions.items()} if pdf else {},
        "ubs": {h: f"{folder}/ubs-{s}.html" for h, s in slugs.items()},
        "equipes": {h: f"{folder}/equipes-{s}.html" for h, s in slugs.items()},
        "folder": folder,
    }


# --------------------------------------------------------------------------------------------------- the charts
def chart(chart_id, title, unit, items, series, step=None, height=140, max_width=600):
    """A bar chart, stacked when ``series`` has more than one: ``items`` = [(label, {series key: value} or None)],
    ``series`` = [(key, label, color)]. None draws no bar ("sem dado"). Every bar at the chart's one scale."""
    step = step or max(34, min(80, (max_width - 40) // max(1, len(items))))
    bar_width = max(14, step - 14)
    width = max(220, step * len(items) + 40)
    totals = [sum(v.get(k) or 0 for k, _l, _c in series) for _label, v in items if v is not None]
    top = max([*totals, 1])
    scale = (height - 30) / top
    bars, texts = [], []
    for i, (label, values) in enumerate(items):
        x = 36 + i * step
        middle = x + bar_width / 2
        if values is None:
            texts.append({"x": middle, "y": height - 16, "text": "sem", "cls": "nodata"})
            texts.append({"x": middle, "y": height - 4, "text": "dado", "cls": "nodata"})
        else:
            y = height
            for key, name, color in series:
                value = values.get(key) or 0
                h = round(value * scale, 2)
                y = round(y - h, 2)
                bars.append(
                    {
                        "x": x,
                        "y": y,
                        "width": bar_width,
                        "height": h,
                        "fill": color,
                        "label": f"{label}: {name}" if len(series) > 1 else label,
                        "value": value,
                    }
                )
            total = sum(values.get(k) or 0 for k, _l, _c in series)
            texts.append({"x": middle, "y": round(y - 3, 2), "text": str(total), "cls": "total"})
        words = label.split(" ", 1) if len(label) > 9 else [label]
        texts.append({"x": middle, "y": height + 14, "text": words[0][:16], "cls": "axis"})
        if len(words) > 1:
            texts.append({"x": middle, "y": height + 27, "text": words[1][:16], "cls": "axis"})
    return {
        "id": chart_id,
        "title": title,
        "unit": unit,
        "width": width,
        "height": height + 40,
        "base": height,
        "bars": bars,
        "texts": texts,
        "legend": [{"label": name, "color": color} for _k, name, color in series] if len(series) > 1 else [],
    }


def month_text(month):
    """'AAAA-MM' as 'MM/AAAA'."""
    return f"{month[5:7]}/{month[:4]}" if re.match(r"^\d{4}-\d{2}$", month or "") else (month or "")


def _months(series):
    return [(month_text(m)[:3] + month_text(m)[5:], v) for m, v in series.items()]


def _status_chart(rows, chart_id):
    items = [(STATUS_LABELS[s], {"n": sum(1 for r in rows if r["status"] == s)}) for s in STATUS_LABELS if s != "apta"]
    out = chart(chart_id, "UBS por situação", "número de UBS", items, [("n", "UBS", BLUE)])
    colors = {STATUS_LABELS[s]: STATUS_COLORS[s] for s in STATUS_LABELS}
    for bar_ in out["bars"]:
        bar_["fill"] = colors[bar_["label"]]
    return out


BACKUP_BANDS = (
    ("até 1 dia", 0, 1),
    ("2 a 3 dias", 2, 3),
    ("4 a 7 dias", 4, 7),
    ("8 a 30 dias", 8, 30),
    ("mais de 30 dias", 31, None),
)


def _backup_chart(rows, chart_id):
    """UBS by the age of their last verified backup (the table says each one's)."""
    ages = [r["backup"]["age_days"] for r in rows]
    items = [
        (label, {"n": sum(1 for a in ages if a is not None and low <= a and (high is None or a <= high))})
        for label, low, high in BACKUP_BANDS
    ]
    items.append(("sem registro", {"n": sum(1 for a in ages if a is None)}))
    out = chart(chart_id, "UBS pela idade do último backup verificado", "número de UBS", items, [("n", "UBS", BLUE)])
    for bar_ in out["bars"]:
        bar_["fill"] = GREEN if bar_["label"] == "até 1 dia" else GREY if bar_["label"] == "sem registro" else RED
    return out


def _trend_charts(slug, trends, production):
    sev = [(s, SEVERITY_LABELS[s], SEVERITY_COLORS[s]) for s in SEVERITIES]
    cds = [
        ("em_dia", CDS_STATUSES["em_dia"], GREEN),
        ("enviado_com_atraso", CDS_STATUSES["enviado_com_atraso"], AMBER),
        ("pendente", CDS_STATUSES["pendente"], BLUE),
        ("atrasado", CDS_STATUSES["atrasado"], RED),
    ]
    return [
        chart(f"{slug}-hist-pendencias", "Pendências por gravidade", "pendências", _months(trends["pendencias"]), sev),
        chart(
            f"{slug}-hist-backup",
            "Backup verificado das UBS com servidor local",
            "número de UBS",
            _months(trends["backup"]),
            [("em_dia", "em dia", GREEN), ("atrasado", "atrasado", RED), ("sem_registro", "sem registro", GREY)],
        ),
        chart(
            f"{slug}-hist-copia",
            "Cópia fora do servidor",
            "número de UBS",
            _months(trends["copia_externa"]),
            [
                ("em_dia", "em dia", GREEN),
                ("com_problema", "falhando, atrasada ou pendente", RED),
                ("desativada_ou_sem_registro", "desativada ou sem registro", GREY),
            ],
        ),
        chart(
            f"{slug}-hist-restauracao",
            "Teste de restauração",
            "número de UBS",
            _months(trends["restauracao"]),
            [
                ("ok", "ok", GREEN),
                ("ok_contagem", "ok só na contagem", AMBER),
                ("falha", "falhou", RED),
                ("nunca", "nunca feito", GREY),
            ],
        ),
        chart(
            f"{slug}-hist-producao",
            "Produção (atendimentos de todas as equipes)",
            "atendimentos",
            _months(production),
            [("n", "atendimentos", BLUE)],
        ),
        chart(f"{slug}-hist-cds", "CDS por mês de produção", "unidades", _months(trends["cds"]["counts"]), cds),
    ]


def _production_by_month(rows):
    """{month: {n: attendances of every team}} over the rows' 12 months (None where no UBS read its production)."""
    months = next((r["production"]["months"] for r in rows if r["production"]["months"]), [])
    out = {}
    for m in months:
        values = [t["months"][m]["produced"] for r in rows for t in r["production"]["teams"] if m in t["months"]]
        out[m] = {"n": sum(values)} if any(r["production"]["teams"] for r in rows) else None
    return out


# ---------------------------------------------------------------------------------------------------- the pages
_ENVIRONMENTS = {}


def environment(templates=None):
    """The Jinja2 environment of the pages: ``templates`` (a directory) searched before the collection's own."""
    key = templates or ""
    if key not in _ENVIRONMENTS:
        import jinja2

        path = [templates, TEMPLATES] if templates else [TEMPLATES]
        env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(path),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
        )
        env.filters["dia"] = day_text
        env.filters["mes"] = month_text
        env.filters["milhar"] = lambda n: f"{n:,}".replace(",", ".") if isinstance(n, int) else n
        _ENVIRONMENTS[key] = env
    return _ENVIRONMENTS[key]


def render(name, context, templates=None):
    return environment(templates).get_template(name).render(**context)


def _common(model, names, up=""):
    return {
        "date": model["date"],
        "index": up + "index.html",
        "all_regions": up + names["regions"][ALL],
        "all_regions_pdf": (up + names["pdfs"][ALL]) if ALL in names["pdfs"] else "",
    }


def _history_note(history, regions):
    days = sorted({d for r in regions for d in (history["days"].get(r) or {})})
    return {
        "days": len(days),
        "since": days[0] if days else "",
        "skipped": [s for s in history["skipped"] if s.split("/", 1)[0] in regions or "/" not in s],
    }


def _pendency(p, detail_href):
    link = p.get("link") or ""
    return {
        "code": p["code"],
        "nt": p["nt"],
        "due": p["due"],
        "severity": SEVERITY_LABELS.get(p["severity"], p["severity"]),
        "msg": p["msg"],
        "href": (detail_href + link) if link.startswith("#") else link,
    }


def _model_history(model, history):
    return history if history is not None else report_history.load(None, model, _today(model))


def _today(model):
    return datetime.date.fromisoformat(model["date"])


def region_page(model, region, history=None, names=None, templates=None):
    """The page of a region (GPMA) or, for ``region['region'] == 'todas'``, of all regions."""
    names = names or links(model)
    history = _model_history(model, history)
    rows = region["rows"]
    slug = region["region"]
    covered = [r["region"] for r in model["regions"]] if slug == ALL else [slug]
    columns = COLUMNS
    labels = {r["region"]: r["label"] for r in model["regions"]}
    trends = report_history.region_trends(history, covered, _today(model))
    production = _production_by_month(rows)
    context = _common(model, names)
    context.update(
        title=f"Relatório e-SUS APS — {region['label']}",
        region=region,
        ubs_count=len(rows),
        pendencies=region["pendencies"],
        due=region["due"],
        pdf=names["pdfs"].get(slug, ""),
        charts=[_status_chart(rows, f"{slug}-situacao"), _backup_chart(rows, f"{slug}-backup")] if rows else [],
        trends=_trend_charts(slug, trends, production) if rows else [],
        history=_history_note(history, covered),
        headers=[c[0] for c in columns],
        widths={"UBS": "8%", "CNES": "5%", "Pendências": "6.5%"},
        rows=[
            {
                # the page of all regions: a heading line where a region's rows begin
                "group": labels.get(r["region"], r["region"])
                if slug == ALL and (i == 0 or rows[i - 1]["region"] != r["region"])
                else "",
                "host": r["host"],
                "ubs": r["ubs"],
                "cnes": r["cnes"],
                "href": names["ubs"][r["host"]],
                "teams_href": names["equipes"][r["host"]],
                "cells": _cells(r, columns, names["ubs"][r["host"]]),
                "pendencies": [_pendency(p, names["ubs"][r["host"]]) for p in r["pendencias"]],
                "confirmed": [m for m in r.get("manual_steps", []) if m["status"] == "confirmado"],
                "rebuilds": r.get("rebuilds", []),
                "checks": r.get("checks", []),
                "production": [
                    sum(t["months"][m]["produced"] for t in r["production"]["teams"] if m in t["months"])
                    for m in r["production"]["months"]
                ]
                if r["production"]["teams"]
                else [],
                "production_note": r["production"]["unavailable"] or r["production"]["teams_unavailable"],
            }
            for i, r in enumerate(rows)
        ],
        months=list(production),
        any_pendency=any(r["pendencias"] for r in rows),
    )
    return render("regiao.html.j2", context, templates)


def all_page(model, history=None, names=None, templates=None):
    region = {
        "region": ALL,
        "label": "todas as regiões",
        "rows": model["rows"],
        "pendencies": len(model["pendencies"]),
        "due": sum(1 for r in model["rows"] if r["due"]),
    }
    return region_page(model, region, history, names, templates)


def _region_of(model, row):
    return next((r for r in model["regions"] if r["region"] == row["region"]), {"label": row["region"]})


def ubs_page(model, row, history=None, names=None, templates=None):
    """The page of one UBS: every concern, its pendencies, its manual steps, its security detail, its history."""
    names = names or links(model)
    history = _model_history(model, history)
    trends = report_history.ubs_trends(history, row["region"], row["host"], _today(model))
    region = _region_of(model, row)
    pendencies = [_pendency(p, "") for p in row["pendencias"]]
    concerns = []
    for header, field, render_ in COLUMNS[2:-1]:
        concerns.append(
            {
                "field": field,
                "label": header,
                "cls": cell_mark(row, field),
                "text": render_(row),
                "pendencies": [
                    p for p, raw in zip(pendencies, row["pendencias"], strict=True) if raw["field"] == field
                ],
            }
        )
    headers = {field: header for header, field, _r in COLUMNS if field}
    grid = [
        {
            "label": headers[field],
            "months": [_grid_cell(trends["grid"][field][m]) for m in trends["months"]],
        }
        for field in report_history.COLUMNS
    ]
    sev = [(s, SEVERITY_LABELS[s], SEVERITY_COLORS[s]) for s in SEVERITIES]
    host_slug = re.sub(r"[^A-Za-z0-9_-]", "_", row["host"])
    context = _common(model, names, "../")
    hardening = row.get("hardening") or {}
    context.update(
        title=f"{row['ubs']} (CNES {row['cnes']})",
        row=row,
        region_label=region["label"],
        region_href="../" + names["regions"].get(row["region"], names["regions"][ALL]),
        teams_href="../" + names["equipes"][row["host"]],
        concerns=concerns,
        pendencies=pendencies,
        waiting=[m for m in row.get("manual_steps", []) if m["status"] != "confirmado"],
        confirmed=[m for m in row.get("manual_steps", []) if m["status"] == "confirmado"],
        rebuilds=row.get("rebuilds", []),
        checks=row.get("checks", []),
        hardening_mode={"audit": "modo auditoria: nada foi alterado no servidor", "enforce": "modo enforce"}.get(
            hardening.get("mode"), "modo não registrado"
        ),
        hardening_groups=hardening.get("groups") or [],
        hardening_anchor=hardening.get("link") or f"seguranca-{row['host']}",
        months=trends["months"],
        grid=grid,
        history_charts=[
            chart(
                f"{host_slug}-hist-pendencias",
                "Pendências por gravidade",
                "pendências",
                _months(trends["pendencias"]),
                sev,
            ),
            chart(
                f"{host_slug}-hist-backup",
                "Idade do último backup verificado",
                "dias",
                [(m, None if v is None else {"n": v}) for m, v in _months(trends["backup_age"])],
                [("n", "dias", BLUE)],
            ),
        ],
        cds_months=_cds_rows(trends["cds"]),
        history=_history_note(history, [row["region"]]),
    )
    return render("ubs.html.j2", context, templates)


def _grid_cell(counts):
    """One month of one column on the UBS page: its mark (the worst of the month) and the days of each."""
    if not counts:
        return {"cls": "nodata", "text": "—"}
    days = sum(counts.values())
    for mark, cls, word in (("v", "due", "com ação"), ("a", "stale", "desatualizado")):
        if counts[mark]:
            return {"cls": cls, "text": f"{counts[mark]}/{days} d {word}"}
    if counts["o"]:
        return {"cls": "ok", "text": f"ok ({days} d)"}
    return {"cls": "nodata", "text": "sem registro" if counts["-"] else "sem dado"}


def _cds_rows(cds):
    out = []
    for month in cds["months"]:
        counts = cds["counts"][month]
        cls = ""
        if counts:
            cls = (
                "due" if counts["atrasado"] else "stale" if counts["pendente"] + counts["enviado_com_atraso"] else "ok"
            )
        out.append(
            {
                "month": month,
                "cls": cls,
                "counts": None
                if counts is None
                else [{"status": s, "label": CDS_STATUSES[s], "n": counts[s]} for s in CDS_STATUSES if counts[s]],
            }
        )
    return out


def teams_page(model, row, history=None, names=None, templates=None):
    """The page of a UBS's teams (GSAP): production per team (INE) per month, what is pending, the CDS."""
    names = names or links(model)
    history = _model_history(model, history)
    production = row["production"]
    host_slug = re.sub(r"[^A-Za-z0-9_-]", "_", row["host"])
    trends = report_history.ubs_trends(history, row["region"], row["host"], _today(model))
    teams = [
        {
            "ine": t["ine"],
            "name": t["name"] or "sem nome",
            "months": [t["months"][m]["produced"] for m in production["months"]],
            "total": sum(t["months"][m]["produced"] for m in production["months"]),
            "chart": chart(
                f"{host_slug}-prod-{i}",
                f"Produção de {t['name'] or 'equipe'} (INE {t['ine']})",
                "atendimentos",
                [
                    (month_text(m)[:3] + month_text(m)[5:], {"n": t["months"][m]["produced"]})
                    for m in production["months"]
                ],
                [("n", "atendimentos", BLUE)],
            ),
        }
        for i, t in enumerate(production["teams"])
    ]
    context = _common(model, names, "../")
    cds = row.get("cds") or {}
    prev = row["previous_month"]
    context.update(
        title=f"Equipes de {row['ubs']} (CNES {row['cnes']})",
        row=row,
        region_label=_region_of(model, row)["label"],
        region_href="../" + names["regions"].get(row["region"], names["regions"][ALL]),
        ubs_href="../" + names["ubs"][row["host"]],
        months=production["months"],
        teams=teams,
        unavailable=production["unavailable"],
        teams_unavailable=production["teams_unavailable"],
        units=[
            {"cnes": u["cnes"], "months": [u["months"][m] for m in production["months"]]} for u in production["units"]
        ],
        lotes_pending=row.get("lotes_pending"),
        pendencies=[
            _pendency(p, "../" + names["ubs"][row["host"]])
            for p in row["pendencias"]
            if p["field"] in ("lotes", "cnes")
        ],
        cds={
            "month": cds.get("month", ""),
            "deadline": cds.get("deadline", ""),
            "units": [dict(u, label=CDS_STATUSES[u["status"]]) for u in cds.get("units", [])],
            "source": cds.get("source", ""),
        },
        previous=prev,
        cds_months=_cds_rows(trends["cds"]),
    )
    return render("equipes.html.j2", context, templates)


def index_page(model, files=None, pdfs=None, names=None, templates=None):
    """The index: the day's regions with their pages and PDFs, and every UBS with its two pages."""
    names = names or links(model)
    if files is not None:
        names = dict(names, regions=dict(names["regions"], **files), pdfs=pdfs or {})
    labels = {r["region"]: r["label"] for r in model["regions"]}
    context = _common(model, names)
    context.update(
        title="Relatórios e-SUS APS por Região de Saúde",
        regions=[
            {
                "label": r["label"],
                "href": names["regions"][r["region"]],
                "pdf": names["pdfs"].get(r["region"], ""),
                "ubs": len(r["rows"]),
                "pendencies": r["pendencies"],
                "due": r["due"],
            }
            for r in model["regions"]
        ],
        ubs=[
            {
                "region": labels.get(r["region"], r["region"]),
                "ubs": r["ubs"],
                "cnes": r["cnes"],
                "href": names["ubs"][r["host"]],
                "teams_href": names["equipes"][r["host"]],
                "pendencies": len(r["pendencias"]),
                "due": r["due"],
            }
            for r in model["rows"]
        ],
    )
    return render("index.html.j2", context, templates)
