# Copyright: (c) 2026, SES-DF NTINF
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of sesdf.esus.report_write: runs on the control node, reads the UBS's host variables, builds the
report model, reads and keeps the report's history, and writes the pages (rendered with Jinja2 from the report
role's templates), with their PDFs laid out here on the control node (the logic is in module_utils/report_*.py and
html_pdf.py)."""

from __future__ import annotations

import datetime
import json
import os
import traceback

import jinja2
from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.sesdf.esus.plugins.module_utils import report_history, report_model, report_output
from ansible_collections.sesdf.esus.plugins.module_utils.pec_common import PecError

HOST_VARS = {
    "pec": "sesdf_esus_pec",
    "name": "sesdf_esus_ubs_name",
    "cnes": "sesdf_esus_cnes",
    "aptidao": "sesdf_esus_aptidao",
    "migration_date": "sesdf_esus_data_migracao",
    "target_version": "sesdf_esus_versao_alvo",
    "deadline": "sesdf_esus_prazo_atualizacao",
    "failure": "regime_failure",
    "route": "regime_route",
    "read_error": "sesdf_esus_pec_read_error",
}
LEGACY_VARS = ("upgrade_summary", "hardening_report", "lotes_export_deadline")
ARGS = {
    "hosts": {"type": "list", "elements": "str", "required": True},
    "dest": {"type": "path", "required": True},
    "region_prefix": {"type": "str", "default": "regiao_"},
    "backup_max_age_hours": {"type": "int", "default": 26},
    "date": {"type": "str"},
    "pdf": {"type": "bool", "default": True},
    "history_dir": {"type": "path"},
    "templates": {"type": "path"},
}


def _plain(value):
    """A JSON-safe copy of a host variable (no lazy or tagged objects reach the model)."""
    return json.loads(json.dumps(value, default=str))


def _where(exc):
    """' (template, line n)' of a template error, from the error or from the template's frame in its traceback."""
    if getattr(exc, "lineno", None):
        return f" ({os.path.basename(exc.filename or exc.name or '?')}, line {exc.lineno})"
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename.endswith(".j2")]
    return f" ({os.path.basename(frames[-1].filename)}, line {frames[-1].lineno})" if frames else ""


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False

    def _var(self, hostvars, host, name):
        try:
            value = hostvars[host].get(name)
        except Exception:  # an undefined or broken variable is data the report shows as missing
            return None
        try:
            return _plain(self._templar.template(value))
        except Exception:
            return None

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        args = self.validate_argument_spec(argument_spec=ARGS)[1]
        try:
            today = datetime.date.fromisoformat(args["date"]) if args["date"] else datetime.date.today()
        except ValueError as exc:
            raise AnsibleActionFail(f"date must be AAAA-MM-DD, got {args['date']!r}") from exc
        hostvars = task_vars.get("hostvars") or {}
        hosts = []
        for host in args["hosts"]:
            entry = {"host": host, "groups": self._var(hostvars, host, "group_names") or []}
            entry.update({key: self._var(hostvars, host, var) for key, var in HOST_VARS.items()})
            entry["legacy"] = {var: self._var(hostvars, host, var) for var in LEGACY_VARS}
            hosts.append(entry)
        prefix = args["region_prefix"]
        settings = {
            "region_prefix": prefix,
            "backup_max_age_hours": args["backup_max_age_hours"],
            "regions": sorted(g for g in (task_vars.get("groups") or {}) if g.startswith(prefix)),
        }
        if args["templates"] and not os.path.isdir(args["templates"]):
            raise AnsibleActionFail(
                f"templates must be a directory of the control node with the report's templates to replace, got "
                f"{args['templates']!r}"
            )
        model = report_model.build(hosts, settings, today)
        history_dir = args["history_dir"] or f"{args['dest'].rstrip('/')}/historico"
        try:
            history = report_history.load(history_dir, model, today)
            files = report_output.render_files(model, pdf=args["pdf"], history=history, templates=args["templates"])
            changed = report_output.write_files(args["dest"], files, check_mode=self._task.check_mode)
            history_changed = report_history.save(history, check_mode=self._task.check_mode)
        except PecError as exc:
            raise AnsibleActionFail(exc.msg) from exc
        except jinja2.TemplateError as exc:  # a replaced template (templates) that does not render
            raise AnsibleActionFail(
                f"a report template does not render{_where(exc)}: {exc} ({type(exc).__name__}); fix it in "
                f"{args['templates']} or leave templates unset to use the collection's own"
            ) from None
        if history["skipped"]:
            result.setdefault("warnings", []).append(
                "report history: files skipped (the rest was read): " + "; ".join(history["skipped"][:20])
            )
        result.update(
            changed=bool(changed or history_changed),
            dest=args["dest"],
            files=sorted(files),
            changed_files=changed,
            history_dir=history_dir,
            history_changed=history_changed,
            history_skipped=history["skipped"],
            index=f"{args['dest'].rstrip('/')}/index.html",
            summary=report_model.summary_lines(model),
            pendencies=len(model["pendencies"]),
            due=sum(1 for r in model["rows"] if r["due"]),
        )
        return result
