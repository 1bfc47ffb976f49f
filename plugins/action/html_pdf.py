# Copyright: (c) 2026, SES-DF NTINF
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of sesdf.esus.html_pdf: lays out an HTML document as PDF/A on the control node, in the Python that
runs Ansible (the execution environment's), never on a managed host (the logic is in module_utils/html_pdf.py)."""

from __future__ import annotations

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.sesdf.esus.plugins.module_utils import html_pdf
from ansible_collections.sesdf.esus.plugins.module_utils.pec_common import PecError

ARGS = {
    "content": {"type": "str", "required": True},
    "dest": {"type": "path", "required": True},
    "mode": {"type": "raw", "default": "0640"},
}


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        args = self.validate_argument_spec(argument_spec=ARGS)[1]
        raw = args["mode"]
        try:  # an unquoted YAML 0640 arrives as the number 416, already the mode
            mode = raw if isinstance(raw, int) and not isinstance(raw, bool) else int(str(raw), 8)
        except ValueError as exc:
            raise AnsibleActionFail(f"mode must be octal permissions such as 0640, got {raw!r}") from exc
        try:
            written = html_pdf.write(args["dest"], args["content"], mode, check_mode=self._task.check_mode)
        except PecError as exc:
            raise AnsibleActionFail(exc.msg) from exc
        result.update(written, dest=args["dest"], pdf_variant=html_pdf.PDF_VARIANT)
        return result
