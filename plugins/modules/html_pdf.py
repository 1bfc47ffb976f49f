#!/usr/bin/python
# Copyright: (c) 2026, SES-DF NTINF
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: html_pdf
short_description: Write a simple HTML document (a notice of this collection) as an A4 PDF
version_added: 0.1.0
description:
  - Lays out the text of O(content) (headings C(h1)/C(h2), paragraphs, lists, two-column table rows, bold and
    monospace runs) as an A4 PDF with the PDF's built-in fonts (Helvetica, Courier) and WinAnsiEncoding, which covers
    Portuguese. Pure Python, so nothing to install on the control node or in the execution environment.
  - Meant for the notices the collection renders from its own templates (e.g. the migration notice of
    M(sesdf.esus.migration_notice) role), so the PDF says exactly what the HTML says. Images, styles and scripts are
    ignored.
  - The file is written atomically and only when its bytes differ; the PDF carries no date, so the same HTML gives
    the same file.
author:
  - SES-DF NTINF (@sesdf-ntinf)
extends_documentation_fragment:
  - sesdf.esus.attributes
  - sesdf.esus.attributes.platform
attributes:
  check_mode:
    support: full
    details: Nothing is written; C(changed) says whether a real run would write.
  diff_mode:
    support: none
options:
  content:
    description: The HTML document.
    type: str
    required: true
  dest:
    description: Path of the PDF; its directory must exist.
    type: path
    required: true
  mode:
    description: Permissions of the PDF.
    type: raw
    default: "0640"
"""

EXAMPLES = r"""
- name: The notice as PDF, from the same rendering as the HTML
  sesdf.esus.html_pdf:
    content: "{{ lookup('ansible.builtin.template', 'aviso.html.j2') }}"
    dest: /srv/avisos/aviso-migracao-0030001-2026-03-01.pdf
  delegate_to: localhost
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
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.sesdf.esus.plugins.module_utils._fsutil import atomic_write, sha256_bytes
from ansible_collections.sesdf.esus.plugins.module_utils.notice_pdf import render
from ansible_collections.sesdf.esus.plugins.module_utils.pec_common import PecError


def _mode(value):
    try:
        return int(str(value), 8)
    except ValueError:
        return None


def main():
    module = AnsibleModule(
        argument_spec=dict(
            content=dict(type="str", required=True),
            dest=dict(type="path", required=True),
            mode=dict(type="raw", default="0640"),
        ),
        supports_check_mode=True,
    )
    dest = module.params["dest"]
    mode = _mode(module.params["mode"])
    if mode is None:
        module.fail_json(msg=f"mode must be octal permissions such as 0640, got {module.params['mode']!r}")
    data = render(module.params["content"])
    try:
        with open(dest, "rb") as handle:
            same = handle.read() == data
    except OSError:
        same = False
    changed = not same or (os.stat(dest).st_mode & 0o7777) != mode
    if changed and not module.check_mode:
        if not os.path.isdir(os.path.dirname(os.path.abspath(dest))):
            module.fail_json(msg=f"the directory of {dest} does not exist: create it first (nothing was written)")
        try:
            atomic_write(dest, data, mode)
        except PecError as exc:
            module.fail_json(msg=exc.msg)
    module.exit_json(changed=changed, dest=dest, pages=data.count(b"/Type /Page "), sha256=sha256_bytes(data))


if __name__ == "__main__":
    main()
