# Copyright: (c) 2026, SES-DF NTINF
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The regional report as self-contained HTML pages in Portuguese, rendered from :mod:`report_model`'s model.

One file per page: inline CSS (with a print layout), inline SVG charts, no script, no external URL. Every text
from the data is HTML-escaped. Cells where action is due carry ``class="due"`` (red), stale ones ``stale``.
Chart bars carry ``data-value`` (the figure drawn), so what is drawn can be checked against the data.
"""

from __future__ import annotations

from html import escape

from ansible_collections.sesdf.esus.plugins.module_utils.report_model import STATUS_LABELS, day_text

CSS = """
body { font-family: "DejaVu Sans", Arial, sans-serif; margin: 1.5em; color: #111; font-size: 14px; }
h1 { font-size: 1.5em; margin-bottom: .2em; } h2 { font-size: 1.2em; margin-top: 1.6em; }
h3 { font-size: 1.05em; margin: 1em 0 .3em; }
.meta { color: #444; margin-top: 0; }
table { border-collapse: collapse; margin: .5em 0 1em; }
th, td { border: 1px solid #999; padding: .25em .45em; text-align: left; vertical-align: top; }
th { background: #e8eef4; }
td.due { background: #f8d0d0; color: #8b0000; font-weight: bold; }
td.stale { background: #fff1c2; }
li.due { color: #8b0000; font-weight: bold; }
.ok { color: #185c18; }
.empty { font-style: italic; color: #444; }
.charts { display: flex; flex-wrap: wrap; gap: 1.5em; }
figure { margin: 0; } figcaption { font-size: .9em; color: #333; }
svg text { font-family: "DejaVu Sans", Arial, sans-serif; font-size: 10px; }
@media print {
  @page { size: A4 landscape; margin: 10mm 10mm 14mm 10mm; }
  body { margin: 0; font-size: 9px; }
  .charts { display: block; orphans: 1; widows: 1; }
  .charts figure { display: inline-block; vertical-align: top; margin: 0 1.5em .5em 0; }
  a { color: inherit; text-decoration: none; }
  figure, tr, li { break-inside: avoid; }
  .ubs figure svg { width: 180mm; height: auto; }
  h2, h3, .ubs > p { break-after: avoid; }
  td.due { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
  td.stale, th { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
}
""".strip()

DUE_CLASS = ' class="due"'
STATUS_COLORS = {
    "migrada": "#2e7d32",
    "aguardando_migracao": "#1565c0",
    "apta": "#1565c0",
    "inapta": "#ef6c00",
    "sem_classificacao": "#757575",
}


def e(value):
    return escape("" if value is None else str(value), quote=True)


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


def _cell_class(row, field):
    if field and field in row["red_fields"]:
        return DUE_CLASS
    state = row["states"].get(field) if field else None
    if state and (state["stale"] or state["error"]):
        return ' class="stale"'
    return ""


# -------------------------------------------------------------------------------------------------- charts
STEP = 64


def _bars(chart_id, title, items, unit, color="#1565c0", height=140):
    """A vertical bar chart: items = [(label, value or None, color or None)]. None draws no bar ('sem dado')."""
    width = max(220, STEP * len(items) + 40)
    top = max([item[1] for item in items if item[1] is not None] + [1])
    scale = (height - 30) / top
    out = [
        f'<figure><svg id="{e(chart_id)}" role="img" width="{width}" font-family="DejaVu Sans" font-size="10" '
        f'height="{height + 40}" viewBox="0 0 {width} {height + 40}"><title>{e(title)}</title>',
        f'<line x1="30" y1="{height}" x2="{width - 5}" y2="{height}" stroke="#333"/>',
    ]
    for i, (label, value, bar_color) in enumerate(items):
        x = 36 + i * STEP
        if value is None:
            out.append(f'<text x="{x + 15}" y="{height - 4}" text-anchor="middle">sem dado</text>')
        else:
            h = round(value * scale, 2)
            out.append(
                f'<rect class="bar" x="{x}" y="{round(height - h, 2)}" width="30" height="{h}" '
                f'fill="{bar_color or color}" data-label="{e(label)}" data-value="{e(value)}"/>'
                f'<text x="{x + 15}" y="{round(height - h - 3, 2)}" text-anchor="middle">{e(value)}</text>'
            )
        out.append(
            f'<text x="{x + 15}" y="{height + 14}" text-anchor="middle">{e(label[:9])}</text>'
            f'<text x="{x + 15}" y="{height + 27}" text-anchor="middle">{e(label[9:18])}</text>'
        )
    out.append(f"</svg><figcaption>{e(title)} ({e(unit)})</figcaption></figure>")
    return "".join(out)


def _status_chart(rows, chart_id):
    items = [
        (STATUS_LABELS[s], sum(1 for r in rows if r["status"] == s), STATUS_COLORS[s])
        for s in STATUS_LABELS
        if s != "apta"
    ]
    return _bars(chart_id, "UBS por situação", items, "número de UBS")


def _backup_chart(rows, chart_id):
    items = [(r["ubs"], r["backup"]["age_days"], "#c62828" if "backup" in r["red_fields"] else None) for r in rows]
    return _bars(chart_id, "Idade do último backup verificado por UBS", items, "dias")


def _production_chart(row, team, chart_id):
    months = row["production"]["months"]
    items = [(m[2:], team["months"][m]["produced"], None) for m in months]
    return _bars(chart_id, f"Produção de {team['name'] or 'equipe'} (INE {team['ine']})", items, "atendimentos")


# --------------------------------------------------------------------------------------------------- pages
def _page(title, body):
    return (
        '<!DOCTYPE html>\n<html lang="pt-BR">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{e(title)}</title>\n<style>\n{CSS}\n</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n"
    )


def _table(rows, columns=COLUMNS):
    head = "".join(f"<th>{e(h)}</th>" for h in (column[0] for column in columns))
    lines = [f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>"]
    for r in rows:
        cells = "".join(
            f'<td{_cell_class(r, field)} data-field="{e(field or header)}">{e(render(r))}</td>'
            for header, field, render in columns
        )
        lines.append(f'<tr data-host="{e(r["host"])}">{cells}</tr>')
    lines.append("</tbody>\n</table>")
    return "\n".join(lines)


def _details(r):
    """The UBS's detail under its pendencies: the manual steps confirmed (who, when), the checks that cannot
    observe this PEC ("não verificável") and the rebuilds of its server (when, from which backup)."""
    items = [
        f'<li data-step="{e(m["id"])}">Passo manual {e(m["id"])} ({e(m["descricao"])}; {e(m["caminho"])}): '
        f"confirmado por {e(m['confirmado_por'])} em {e(day_text(m['confirmado_em']))}</li>"
        for m in r.get("manual_steps", [])
        if m["status"] == "confirmado"
    ]
    items += [
        f'<li data-check="{e(c["capability"])}">{e(c["label"])}: {e(c["status"])} - {e(c["detail"])}</li>'
        for c in r.get("checks", [])
    ]
    items += [
        f'<li data-rebuild="{e(b["at"])}">Servidor reconstruído em {e(day_text(b["at"]))} a partir do backup de '
        f"{e(day_text(b['backup_day']) or '?')} ({e(b['archive'])}); substituiu {e(b['old_host'] or '?')}</li>"
        for b in r.get("rebuilds", [])
    ]
    return f'<ul class="detalhe">{"".join(items)}</ul>' if items else ""


def _pendencies(rows):
    out = ["<h2>Pendências por UBS</h2>"]
    any_pend = False
    for r in rows:
        details = _details(r)
        if not r["pendencias"] and not details:
            continue
        any_pend = any_pend or bool(r["pendencias"])
        items = "".join(
            f'<li{DUE_CLASS if p["due"] else ""} data-code="{e(p["code"])}" data-nt="{e(p["nt"])}">{e(p["msg"])}'
            + (f' (<a href="{e(p["link"])}">detalhe</a>)' if p.get("link") else "")
            + "</li>"
            for p in r["pendencias"]
        )
        listed = f"<ul>{items}</ul>" if items else '<p class="ok">Nenhuma pendência.</p>'
        out.append(f'<div class="ubs"><h3>{e(r["ubs"])} (CNES {e(r["cnes"])})</h3>{listed}{details}</div>')
    if not any_pend:
        out.append('<p class="ok">Nenhuma pendência.</p>')
    return "\n".join(out)


def _hardening(rows):
    """Per UBS with failing or unverifiable controls: the groups by the note's item, their counts, what to do and
    the control ids (only here, never in the table or the pendencies)."""
    out = ["<h2>Segurança por item da Nota Técnica</h2>"]
    shown = False
    for r in rows:
        hardening = r.get("hardening") or {}
        groups = hardening.get("groups") or []
        if not groups:
            continue
        shown = True
        mode = {"audit": "modo auditoria: nada foi alterado no servidor", "enforce": "modo enforce"}.get(
            hardening.get("mode"), "modo não registrado"
        )
        lines = "".join(
            f'<tr data-nt="{e(g["nt"])}" data-group="{e(g["concern"])}"><td>{e(g["item"])} ({e(g["nt"])})</td>'
            f"<td>{e(g['label'])}</td><td>{len(g['failed'])}</td><td>{len(g['unverifiable'])}</td>"
            f"<td>{e(g['action'])}</td><td>{e(', '.join(g['failed'] + g['unverifiable']))}</td></tr>"
            for g in groups
        )
        out.append(
            f'<div class="ubs" id="{e(hardening["link"])}"><h3>{e(r["ubs"])} (CNES {e(r["cnes"])}): {e(mode)}</h3>'
            "<table><thead><tr><th>Item da Nota Técnica</th><th>Grupo</th><th>Falhas</th><th>Não verificáveis</th>"
            f"<th>O que fazer</th><th>Controles</th></tr></thead><tbody>{lines}</tbody></table></div>"
        )
    if not shown:
        out.append('<p class="ok">Nenhum controle de segurança falhando ou não verificável.</p>')
    return "\n".join(out)


def _production(rows, prefix):
    out = ["<h2>Produção por equipe (últimos 12 meses)</h2>"]
    shown = False
    for r in rows:
        teams = r["production"]["teams"]
        prev = r["previous_month"]
        if not teams and not r["production"]["unavailable"]:
            continue
        shown = True
        out.append(f'<div class="ubs"><h3>{e(r["ubs"])} (CNES {e(r["cnes"])})</h3>')
        if r["production"]["unavailable"]:
            out.append(f'<p class="empty">Produção não disponível: {e(r["production"]["unavailable"])}</p>')
        if r["production"]["pending"]:
            out.append(
                f"<p>{r['production']['pending']} registro(s) da unidade ainda sem envio confirmado (12 meses)</p>"
            )
        if prev["month"]:
            if prev["complete"]:
                status = "completa"
            elif prev["days_left"] is not None and prev["days_left"] < 0:
                status = f"incompleta, prazo vencido há {-prev['days_left']} dia(s)"
            else:
                status = f"incompleta, faltam {prev['days_left']} dia(s) para o prazo"
            out.append(f"<p>Produção de {e(prev['month'])} (prazo {e(day_text(prev['deadline']))}): {e(status)}</p>")
        out.append('<div class="charts">')
        out.extend(_production_chart(r, t, f"{prefix}-prod-{r['host']}-{j}") for j, t in enumerate(teams))
        out.append("</div></div>")
    if not shown:
        out.append('<p class="empty">Nenhum dado de produção por equipe registrado nos servidores.</p>')
    return "\n".join(out)


def _columns(model, region):
    """The table's columns; the page of all regions starts with the region."""
    if region["region"] != "todas":
        return COLUMNS
    labels = {r["region"]: r["label"] for r in model["regions"]}
    return (("Região", "regiao", lambda r: labels.get(r["region"], r["region"])), *COLUMNS)


def region_page(model, region):
    rows = region["rows"]
    title = f"Relatório e-SUS APS — {region['label']}"
    body = [
        f"<h1>{e(title)}</h1>",
        f'<p class="meta">Data: {e(day_text(model["date"]))} · Gerado por sesdf.esus (Nota Técnica N.º 6/2022 - '
        f"SES/SAIS/COAPS) · {len(rows)} UBS, {region['pendencies']} pendência(s), "
        f"{region['due']} UBS com ação necessária</p>",
    ]
    if not rows:
        body.append('<p class="empty">Nenhuma UBS desta região está no inventário: nada a relatar.</p>')
        return _page(title, "\n".join(body))
    slug = region["region"]
    body += [
        '<div class="charts">',
        _status_chart(rows, f"{slug}-situacao"),
        _backup_chart(rows, f"{slug}-backup"),
        "</div>",
        "<h2>UBS</h2>",
        _table(rows, _columns(model, region)),
        _pendencies(rows),
        _hardening(rows),
        _production(rows, slug),
    ]
    return _page(title, "\n".join(body))


def all_page(model):
    region = {
        "region": "todas",
        "label": "todas as regiões",
        "rows": model["rows"],
        "pendencies": len(model["pendencies"]),
        "due": sum(1 for r in model["rows"] if r["due"]),
    }
    return region_page(model, region)


def _pdf_link(pdfs, region):
    return f' (<a class="pdf" href="{e(pdfs[region])}">PDF</a>)' if region in pdfs else ""


def index_page(model, files, pdfs=None):
    """``files``: region name -> file name of its page, plus 'todas'; ``pdfs`` likewise for the pages' PDFs."""
    pdfs = pdfs or {}
    title = "Relatórios e-SUS APS por Região de Saúde"
    items = []
    for region in model["regions"]:
        href = files[region["region"]]
        items.append(
            f'<tr><td><a href="{e(href)}">{e(region["label"])}</a>{_pdf_link(pdfs, region["region"])}</td>'
            f"<td>{len(region['rows'])}</td>"
            f"<td{DUE_CLASS if region['due'] else ''}>{region['pendencies']}</td><td>{region['due']}</td></tr>"
        )
    if not items:
        items.append('<tr><td colspan="4" class="empty">Nenhuma região no inventário.</td></tr>')
    body = (
        f"<h1>{e(title)}</h1>\n"
        f'<p class="meta">Data: {e(day_text(model["date"]))} · <a href="{e(files["todas"])}">Todas as regiões</a>'
        f"{_pdf_link(pdfs, 'todas')}</p>\n"
        "<table><thead><tr><th>Região</th><th>UBS</th><th>Pendências</th><th>UBS com ação necessária</th></tr>"
        "</thead><tbody>\n" + "\n".join(items) + "\n</tbody></table>"
    )
    return _page(title, body)
