#!/usr/bin/python
# Copyright: (c) 2026, SES-DF NTINF
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: html_pdf
short_description: Write an HTML document as an A4 PDF/A on the control node (WeasyPrint)
version_added: 0.1.0
description:
  - Runs on the control node (an action plugin), whatever the task's host. Lays out O(content) with WeasyPrint as
    an A4 PDF/A-3u, every font it uses embedded, and writes it to O(dest) on the control node. It is the
    collection's one HTML-to-PDF path, which the migration notice of the C(sesdf.esus.migration_notice) role and
    the regional report's pages of M(sesdf.esus.report_write) take.
  - The document's own print stylesheet (C(@media print), C(@page)) applies over a base one (A4 portrait, margins,
    C(Página n de m) at the foot, DejaVu Sans); a page that wants landscape sets the C(size) of its C(@page) rule
    to C(A4 landscape). Nothing is fetched while laying out (only C(data) URLs are read), so the document must be
    self-contained.
  - The file is written atomically and only when its bytes or mode differ; the PDF carries no date, so the same HTML
    gives the same file. A failure leaves nothing under O(dest) but what was there before.
requirements:
  - On the control node (the execution environment has them), never on the managed hosts, WeasyPrint (Python,
    C(meta/requirements.txt) of the collection), Pango, HarfBuzz and fontconfig, and the DejaVu Sans and DejaVu
    Sans Mono fonts (C(meta/bindep.txt); Debian C(libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0
    fonts-dejavu-core)). A missing one ends in a message saying what to install.
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
    details: The PDF is laid out but nothing is written; C(changed) says whether a real run would write.
  diff_mode:
    support: none
options:
  content:
    description: The HTML document (UTF-8 text), self-contained.
    type: str
    required: true
  dest:
    description: Path of the PDF on the control node; its directory must exist.
    type: path
    required: true
  mode:
    description: Permissions of the PDF, octal (quote it in YAML, "0640").
    type: raw
    default: "0640"
"""

EXAMPLES = r"""
- name: The notice as PDF, from the same rendering as the HTML
  sesdf.esus.html_pdf:
    content: "{{ lookup('ansible.builtin.template', 'aviso.html.j2') }}"
    dest: /srv/avisos/aviso-migracao-0030001-2026-03-01.pdf
"""

RETURN = r"""
dest:
  description: Path of the PDF.
  returned: always
  type: str
pages:
  description: Number of pages.
  returned: always
  type: int
sha256:
  description: sha256 of the PDF's bytes.
  returned: always
  type: str
pdf_variant:
  description: The PDF variant written.
  returned: always
  type: str
  sample: pdf/a-3u
"""
