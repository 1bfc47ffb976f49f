#!/usr/bin/python
# Copyright: (c) 2026, SES-DF NTINF
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: report_write
short_description: Write the regional report of the UBS servers (HTML, PDF, CSV, JSON) on the control node
version_added: 0.1.0
description:
  - Runs on the control node (an action plugin). For each host in O(hosts) it reads the host variables
    C(sesdf_esus_pec) (from M(sesdf.esus.pec_info)), C(sesdf_esus_ubs_name), C(sesdf_esus_cnes), C(group_names),
    C(sesdf_esus_data_migracao), C(sesdf_esus_versao_alvo) and C(sesdf_esus_prazo_atualizacao), builds one model
    (a row and one list of pendencies per UBS) and renders from it every output, so they agree.
  - Writes per health region and for all regions a self-contained HTML page in Portuguese (inline CSS and SVG
    charts, no script, no external URL, 1366 pixels wide, printable on A4 landscape) with the UBS table, the
    pendencies and the trends of the last 12 months, a CSV (UTF-8 with BOM, C(;) separator) and the JSON, named
    C(relatorio-<region>-<date>.<ext>) (C(todas) for all regions); per UBS a page of its own (every concern, its
    pendencies, its manual steps, its security detail, its history) and a page of its teams for the GSAP
    (production per team and month, what is pending, the CDS), in C(detalhe-<date>/); and C(index.html) linking
    the day's pages.
  - The pages are rendered with Jinja2 on the control node from the templates of the role C(sesdf.esus.report)
    (C(templates/relatorio/)); O(templates) names a directory whose templates replace those of the same name.
  - Keeps the report's history in O(history_dir) (one small gzip'd JSON file per region and day, versioned, 400 days
    kept) and reads it back for the trends; a history file that cannot be read is skipped and said (warnings,
    RV(history_skipped) and the pages), never fatal.
  - With O(pdf), each region's page (and the page of all regions) also as an A4 landscape PDF/A beside it
    (C(relatorio-<region>-<date>.pdf), fonts embedded), laid out from the same HTML on the control node as
    M(sesdf.esus.html_pdf) does, and linked from the index.
  - A host with no C(sesdf_esus_pec) (unreachable, or failed earlier in the run) is listed as unreachable; one
    with C(sesdf_esus_pec_read_error) (its reading failed in C(playbooks/report.yml)) as answering with its state
    not read. Each concern's state is checked against its schema (module_utils C(report_states)); a state file
    missing, stale, unreadable, truncated, with a field of the wrong type, with a date in the future or that could
    have been written by someone other than root is shown as such for that UBS, never as ok. Every inventory group
    named with O(region_prefix) has a page, also one with no UBS.
  - Each file is written atomically and only when its content differs; the content carries the date, never
    the time, so a second run the same day on the same state changes nothing (the day's history file included).
author:
  - SES-DF NTINF (@sesdf-ntinf)
extends_documentation_fragment:
  - sesdf.esus.attributes
  - sesdf.esus.attributes.platform
  - ansible.builtin.action_common_attributes.flow
attributes:
  action:
    support: full
  async:
    support: none
  bypass_host_loop:
    support: none
  check_mode:
    support: full
    details: Nothing is written; RV(changed_files) lists what a real run would write.
  diff_mode:
    support: none
options:
  hosts:
    description: Inventory hosts (UBS servers) the report covers.
    type: list
    elements: str
    required: true
  dest:
    description: Absolute directory on the control node for the report files; created when missing.
    type: path
    required: true
  region_prefix:
    description: Prefix of the inventory groups that are health regions.
    type: str
    default: regiao_
  backup_max_age_hours:
    description: A verified backup older than this many hours is late.
    type: int
    default: 26
  date:
    description: The report's date (AAAA-MM-DD); today on the control node when not set.
    type: str
  pdf:
    description:
      - Write each page as PDF/A too. Needs WeasyPrint, Pango and the DejaVu fonts on the control node (see
        M(sesdf.esus.html_pdf)); without them the task fails saying what to install, and nothing is written.
    type: bool
    default: true
  history_dir:
    description:
      - Absolute directory on the control node for the report's history (C(<region>/<AAAA-MM-DD>.json.gz)); it
        must outlive the run for the trends to have more than today. Default C(<dest>/historico).
    type: path
  templates:
    description:
      - A directory of the control node with templates that replace the collection's ones of the same name (those
        of C(roles/report/templates/relatorio/), namely C(regiao.html.j2), C(ubs.html.j2), C(equipes.html.j2),
        C(index.html.j2), C(base.html.j2), C(macros.html.j2) and C(estilo.css.j2)); the others are the collection's.
    type: path
"""

EXAMPLES = r"""
- name: Write the regional reports
  sesdf.esus.report_write:
    hosts: "{{ groups['ubs'] }}"
    dest: /var/lib/sesdf-esus/relatorios
"""

RETURN = r"""
files:
  description: Names of the report's files in O(dest).
  returned: always
  type: list
  elements: str
changed_files:
  description: Names of the files written (or that would be, in check mode).
  returned: always
  type: list
  elements: str
history_dir:
  description: The directory of the report's history.
  returned: always
  type: str
history_changed:
  description: History files written or removed (older than 400 days), relative to RV(history_dir).
  returned: always
  type: list
  elements: str
history_skipped:
  description: History files that could not be read and were skipped, each with why (Portuguese).
  returned: always
  type: list
  elements: str
index:
  description: Path of the index page.
  returned: always
  type: str
summary:
  description: The summary in Portuguese (a line per region, UBS and pendency), from the same model as the pages.
  returned: always
  type: list
  elements: str
pendencies:
  description: Number of pendencies in all regions.
  returned: always
  type: int
due:
  description: Number of UBS where action is due.
  returned: always
  type: int
"""
