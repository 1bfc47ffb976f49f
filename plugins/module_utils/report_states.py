# Copyright: (c) 2026, SES-DF NTINF
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The state each concern records on a UBS server, as the regional report reads it: one contract per concern.

A concern's state reaches the report as one entry of ``pec_info``'s ``state`` (:func:`pec_state.read_states`:
``present``, ``path``, ``produced_at``, ``confirmed_at``, ``stale``, ``data``, the file's ``uid``/``gid``/``mode``,
and ``error``/``error_kind`` when it cannot be taken as read). Here, once per concern (:data:`CONCERNS`): what it is
called in Portuguese, which routine writes it, and the schema of the ``data`` the report reads: each field's type
and, for a field with a status vocabulary, its values with their Portuguese labels (:data:`UPGRADE_RESULTS`, ...).
Fields the report does not read are not listed and never checked.

:func:`classify` gives every entry one record status (:data:`RECORD`), the first that applies of:

- ``ilegivel``: the file exists but cannot be read or parsed; ``truncado``: it is empty or ends mid-document;
- ``nao_confiavel``: it could have been written by someone other than root (owner not root, or writable by its group
  or by others); its content is not read at all;
- ``tipo_errado``: a field has the wrong type or a value outside its vocabulary, or a required one is absent (the
  field is named: ``summary.fail``, ``last_import.date``, ...);
- ``data_futura``: a date after the report's day (one day of tolerance: a stamp written in UTC late in the evening
  in Brasília has the next day's date);
- ``desatualizado``: read and valid, but older than its cadence (its content is still shown, marked);
- ``ok``; and ``sem_registro`` only when there is no file at all.

Only ``ok`` and ``desatualizado`` records are read by the concern's summary (report_model's ``STATE_READERS``);
any other is shown as what it is for that UBS, with a pendency, never as "sem registro" nor as ok.
"""

from __future__ import annotations

import datetime
import re

from ansible_collections.sesdf.esus.plugins.module_utils._timeutil import parse_ts

# ---------------------------------------------------------------------------------------------- record statuses
OK = "ok"
STALE = "desatualizado"
MISSING = "sem_registro"
UNREADABLE = "ilegivel"
TRUNCATED = "truncado"
WRONG_TYPE = "tipo_errado"
FUTURE = "data_futura"
UNTRUSTED = "nao_confiavel"

# status -> what the cell says, the pendency's severity (None: no pendency of its own) and, for a pendency, why the
# record is not taken and what to do (Portuguese; {file} is the file on the server).
RECORD = {
    OK: {"label": "", "severity": None},
    STALE: {"label": "desatualizado", "severity": "media"},
    MISSING: {"label": "sem registro", "severity": None},
    UNREADABLE: {
        "label": "registro ilegível",
        "severity": "alta",
        "why": "existe mas não pode ser lido",
        "todo": "inspecionar o arquivo {file} no servidor (não apagar) e rodar de novo {producer}",
    },
    TRUNCATED: {
        "label": "registro truncado",
        "severity": "alta",
        "why": "está truncado (vazio ou cortado no meio: gravado pela metade, disco cheio ou queda de energia?)",
        "todo": (
            "guardar uma cópia do arquivo {file}, conferir o espaço em disco do servidor e rodar de novo {producer}"
        ),
    },
    WRONG_TYPE: {
        "label": "registro com campo inválido",
        "severity": "alta",
        "why": "tem um campo inválido",
        "todo": (
            "o arquivo {file} não foi gravado assim pela coleção (editado à mão ou por outro programa?): conferir "
            "quem o alterou e rodar de novo {producer}"
        ),
    },
    FUTURE: {
        "label": "registro com data no futuro",
        "severity": "alta",
        "why": "tem data no futuro",
        "todo": "conferir o relógio do servidor (e o NTP) e rodar de novo {producer}",
    },
    UNTRUSTED: {
        "label": "registro não confiável",
        "severity": "critica",
        "why": "pode ter sido gravado por outro usuário que não o root",
        "todo": (
            "conferir quem alterou o arquivo {file}, deixá-lo do root e sem escrita para grupo e outros "
            "(chown root:root; chmod 0600) e rodar de novo {producer}"
        ),
    },
}
# The statuses whose content the concern's summary reads.
USABLE = (OK, STALE)
# One day of tolerance for a date after the report's: the report's day is the control node's (Brasília), a stamp
# written in UTC after 21:00 there already has the next day's date.
FUTURE_TOLERANCE_DAYS = 1


# -------------------------------------------------------------------------------------------------- field types
class Field:
    """One field's type: ``kind`` (text, count, number, flag, when, day, one_of, list, object, map, any_of),
    ``required`` (absent or null is then a wrong type), ``values`` (one_of: value -> Portuguese label), ``item``
    (list, map), ``fields`` (object), ``options`` (any_of)."""

    __slots__ = ("fields", "item", "kind", "options", "required", "values")

    def __init__(self, kind, required=False, values=None, item=None, fields=None, options=()):
        self.kind, self.required, self.values = kind, required, values
        self.item, self.fields, self.options = item, fields, options


def text(required=False):
    return Field("text", required)


def count(required=False):
    """A whole number, 0 or more (digits as text are read as the number: older Ansible templated counts as text)."""
    return Field("count", required)


def number(required=False):
    return Field("number", required)


def flag(required=False):
    return Field("flag", required)


def when(required=False):
    """An ISO 8601 time stamp (or date) in the past: a later day than the report's is ``data_futura``."""
    return Field("when", required)


def day(required=False):
    """An ISO date (AAAA-MM-DD) that may be in the future (a deadline)."""
    return Field("day", required)


def one_of(values, required=False):
    return Field("one_of", required, values=values)


def list_of(item, required=False):
    return Field("list", required, item=item)


def obj(required=False, **fields):
    return Field("object", required, fields=fields)


def map_of(item, required=False):
    return Field("map", required, item=item)


def any_of(*options, required=False):
    return Field("any_of", required, options=options)


EXPECTED = {
    "text": "texto",
    "count": "número inteiro (0 ou mais)",
    "number": "número",
    "flag": "sim/não (true/false)",
    "when": "data e hora (AAAA-MM-DDTHH:MM:SSZ)",
    "day": "data (AAAA-MM-DD)",
    "list": "lista",
    "object": "objeto",
    "map": "objeto",
}
# Python's type names (pec_state's error_type) and JSON values, in Portuguese.
TYPE_NAMES = {
    "NoneType": "nada",
    "bool": "sim/não",
    "int": "número",
    "float": "número",
    "str": "texto",
    "list": "lista",
    "dict": "objeto",
}
_DAY = re.compile(r"^(\d{4})-(\d{2})-(\d{2})")


def type_name(value):
    return TYPE_NAMES.get(type(value).__name__, type(value).__name__)


def _day_of(value):
    match = _DAY.match(value.strip()) if isinstance(value, str) else None
    if not match:
        return None
    try:
        return datetime.date(*(int(g) for g in match.groups()))
    except ValueError:
        return None


def _dmy(value):
    return value.strftime("%d/%m/%Y")


def _expected(spec):
    if spec.kind == "one_of":
        return "um de: " + ", ".join(sorted(spec.values))
    if spec.kind == "any_of":
        return " ou ".join(_expected(o) for o in spec.options)
    return EXPECTED[spec.kind]


def _shown(path):
    return path or "(documento)"


def _wrong(path, spec, value):
    return (WRONG_TYPE, _shown(path), f"{_shown(path)}: deveria ser {_expected(spec)}, veio {type_name(value)}")


def check(spec, value, path, today, out):
    """Append to ``out`` every (status, field, detail) of ``value`` against ``spec``: ``tipo_errado`` or
    ``data_futura``, the field as a dotted path (``units[0].status``)."""
    if value is None:
        if spec.required:
            out.append((WRONG_TYPE, _shown(path), f"{_shown(path)}: ausente (deveria ser {_expected(spec)})"))
        return
    kind = spec.kind
    if kind == "text":
        if not isinstance(value, str):
            out.append(_wrong(path, spec, value))
    elif kind == "count":
        if isinstance(value, str) and value.strip().isdigit():
            return
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            out.append(_wrong(path, spec, value))
    elif kind == "number":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            out.append(_wrong(path, spec, value))
    elif kind == "flag":
        if not isinstance(value, bool):
            out.append(_wrong(path, spec, value))
    elif kind in ("when", "day"):
        _check_date(spec, value, path, today, out)
    elif kind == "one_of":
        if not isinstance(value, str):
            out.append(_wrong(path, spec, value))
        elif value not in spec.values:
            out.append((WRONG_TYPE, path, f"{path}: valor desconhecido '{value[:40]}' ({_expected(spec)})"))
    elif kind == "list":
        if not isinstance(value, list):
            out.append(_wrong(path, spec, value))
            return
        for i, item in enumerate(value):
            _item(spec.item, item, f"{path}[{i}]", today, out)
    elif kind == "object":
        if not isinstance(value, dict):
            out.append(_wrong(path, spec, value))
            return
        for name, field in spec.fields.items():
            check(field, value.get(name), f"{path}.{name}" if path else name, today, out)
    elif kind == "map":
        if not isinstance(value, dict):
            out.append(_wrong(path, spec, value))
            return
        for key, item in sorted(value.items(), key=lambda kv: str(kv[0])):
            _item(spec.item, item, f"{path}.{key}" if path else str(key), today, out)
    elif kind == "any_of":
        tries = []
        for option in spec.options:
            found = []
            check(option, value, path, today, found)
            if not found:
                return
            tries.append(found)
        # the option of the value's own shape says the most (a list with a bad item, not "should be a number")
        shaped = [t for t in tries if not (len(t) == 1 and t[0][1] == _shown(path) and "deveria ser" in t[0][2])]
        out.extend(shaped[0] if shaped else [_wrong(path, spec, value)])


def _item(spec, value, path, today, out):
    """An item of a list or a map: null is never one."""
    if value is None:
        out.append((WRONG_TYPE, path, f"{path}: deveria ser {_expected(spec)}, veio nada"))
    else:
        check(spec, value, path, today, out)


def _check_date(spec, value, path, today, out):
    if not isinstance(value, str):
        out.append(_wrong(path, spec, value))
        return
    found = _day_of(value)
    if found is None or (spec.kind == "when" and parse_ts(value) is None):
        out.append(
            (WRONG_TYPE, _shown(path), f"{_shown(path)}: deveria ser {_expected(spec)}, veio texto que não é data")
        )
    elif spec.kind == "when" and (found - today).days > FUTURE_TOLERANCE_DAYS:
        out.append((FUTURE, _shown(path), f"{_shown(path)}: {_dmy(found)}, depois do dia do relatório ({_dmy(today)})"))


# -------------------------------------------------------------------------------------- vocabularies and schemas
HARDENING_MODES = {"audit": "modo auditoria", "enforce": "modo enforce"}
CONTROL_STATUSES = {
    "pass": "ok",
    "fixed": "corrigido",
    "fail": "falha",
    "not_verifiable_here": "não verificável neste servidor",
}
MAINTENANCE_RESULTS = {"ok": "sem alarmes", "alarme": "em alarme", "erro": "com erro"}
MAINTENANCE_STEP_STATUSES = {
    "ok": "ok",
    "alarme": "alarme",
    "erro": "erro",
    "adiado": "adiado (fora da janela)",
    "desabilitado": "desabilitado",
}
CNES_METHODS = {
    "api": "pela API",
    "api_confirmada": "pela API (conclusão conferida no PEC)",
    "manual": "pela tela do PEC",
}
CNES_PENDING_METHODS = {
    "manual": "aguardando importação pela tela do PEC",
    "api_nao_verificada": "importação enviada pela API sem conclusão verificável",
}
CDS_STATUSES = {
    "em_dia": "enviado no prazo",
    "enviado_com_atraso": "enviado com atraso",
    "pendente": "pendente",
    "atrasado": "atrasado",
}
UPGRADE_RESULTS = {
    "at_target": "na versão alvo",
    "upgraded": "atualizado",
    "current": "já na versão alvo",
    "pending": "não concluída",
    "refused": "recusada (nada alterado)",
    "not_started": "não iniciada (nada alterado)",
    "rolled_back": "falhou e foi revertida",
    "rollback_failed": "falhou e a reversão falhou: intervenção manual",
    "failed": "falhou",
}
UPGRADE_OK = ("at_target", "upgraded", "current")
SOAK_STATES = {"soaking": "em observação", "committed": "confirmada"}
READINESS_VERDICTS = {"apta": "apta", "inapta": "inapta"}
MANUAL_STEP_STATUSES = {"pendente": "pendente", "confirmado": "confirmado"}
BACKUP_CHECKS = {
    "ok": "confere",
    "mismatch": "não confere com o manifesto",
    "missing_manifest": "manifesto apagado",
    "missing_archive": "arquivo apagado",
}
OFFHOST_STATES = {
    "ok": "em dia",
    "pending": "pendente",
    "failed": "falhando",
    "failing": "falhando",
    "stale": "atrasada",
    "disabled": "desativada",
}
# the backup host's retention of a UBS's borg repository (borg_retention, recorded on the UBS by backup_schedule)
RETENTION_STATUSES = {"ok": "nada alterado pela UBS", "critical": "cópias alteradas pela UBS"}
RETENTION_HOW = {"deleted": "apagada", "replaced": "substituída", "unlisted": "retirada da lista"}
RETENTION_WHY = {"future": "com data no futuro", "backdated": "com data anterior à da cópia mais nova"}

_UPGRADE_ENTRY = obj(
    version=text(),
    target_version=text(),
    result=one_of(UPGRADE_RESULTS, required=True),
    message=text(),
    soak=obj(state=one_of(SOAK_STATES), since=when(), version=text(), committed_at=when()),
)
_MISMATCH = obj(tipo=text())


class Concern:
    """A concern of the server's state: its Portuguese name, the routine that writes it (for "what to do") and the
    schema of its ``data`` (an object's fields)."""

    __slots__ = ("label", "producer", "schema")

    def __init__(self, label, producer, **fields):
        self.label, self.producer, self.schema = label, producer, obj(required=True, **fields)


# In report order. backup and migration keep their own layout (pec_state.CONCERNS): the report reads the backup
# status pec_info re-checked and the migration record, with the file's facts from the state entry.
CONCERNS = {
    "backup": Concern(
        "backup do banco",
        "o backup diário (sesdf-esus-backup ou playbooks/backup.yml)",
        last_success=when(),
        verified=flag(),
        check=one_of(BACKUP_CHECKS),
        path=text(),
        verified_at=when(),
        offhost=obj(
            state=one_of(OFFHOST_STATES),
            method=text(),
            last_success=when(),
            last_push=when(),
            pending_days=count(),
            error=text(),
            escrow=obj(escrowed=flag()),
        ),
        repo_check=obj(result=text(), checked_at=when()),
        restore_drill=obj(result=text(), finished_at=when(), hashes_compared=flag()),
    ),
    "migration": Concern("migração", "a migração (playbooks/migrate.yml)", migrated=flag(), date=when()),
    # the archives' own dates are text here: a future-dated archive is the finding, not a record in the future
    "borg_retention": Concern(
        "conferência das cópias no servidor de backup",
        "o backup_schedule (a retenção no servidor de backup)",
        status=one_of(RETENTION_STATUSES, required=True),
        critical=flag(required=True),
        repository=text(),
        lost=list_of(obj(name=text(True), how=one_of(RETENTION_HOW, required=True), transaction=count())),
        suspicious=list_of(obj(name=text(True), why=one_of(RETENTION_WHY, required=True), transaction=count())),
        objects_removed=count(),
        transactions=list_of(obj(id=count(True), time=text())),
        rollback_to=number(),
        recoverable=list_of(text(True)),
        last_transaction=number(),
    ),
    "hardening": Concern(
        "segurança (hardening)",
        "o hardening (playbooks/harden.yml ou o site.yml)",
        mode=one_of(HARDENING_MODES),
        summary=obj(required=True, **{"pass": count(True), "fail": count(True), "not_verifiable_here": count()}),
        failed=list_of(text(True)),
        not_verifiable_here=list_of(text(True)),
        findings=list_of(
            obj(id=text(True), concern=text(), status=one_of(CONTROL_STATUSES, required=True), title=text())
        ),
    ),
    "maintenance": Concern(
        "manutenção",
        "a rotina de manutenção (sesdf-esus-manutencao)",
        result=one_of(MAINTENANCE_RESULTS),
        finished_at=when(required=True),
        steps=map_of(obj(status=one_of(MAINTENANCE_STEP_STATUSES, required=True), detail=text())),
    ),
    "cnes": Concern(
        "importação do CNES",
        "a importação do CNES (playbooks/weekly.yml)",
        last_import=obj(date=when(), method=one_of(CNES_METHODS), file=text()),
        pending_manual=obj(file=text(), staged_at=when(), method=one_of(CNES_PENDING_METHODS), path=text()),
    ),
    "profiles": Concern(
        "auditoria de perfis",
        "a auditoria de perfis (playbooks/weekly.yml)",
        mismatches=any_of(list_of(_MISMATCH), count()),
    ),
    "central_profiles": Concern(
        "perfis no servidor central",
        "o relatório (playbooks/report.yml) com o servidor central no inventário",
        checked=flag(required=True),
        central=text(),
        reason=text(),
        mismatches=list_of(_MISMATCH),
    ),
    "lotes": Concern(
        "lotes e prazo do CDS",
        "a exportação de lotes (sesdf-esus-lotes ou playbooks/weekly.yml)",
        pending_lotes=count(),
        deadline=obj(
            month=text(),
            deadline=day(),
            units=list_of(obj(cnes=text(), status=one_of(CDS_STATUSES), pending_records=count())),
        ),
    ),
    "upgrade": Concern(
        "atualização do PEC",
        "a atualização (playbooks/upgrade.yml ou o site.yml)",
        last=_UPGRADE_ENTRY,
        history=list_of(_UPGRADE_ENTRY),
    ),
    "readiness": Concern(
        "medição de aptidão",
        "a medição de aptidão (playbooks/readiness.yml)",
        verdict=one_of(READINESS_VERDICTS),
        measured_mbps=number(),
        measured_at=when(),
        group=text(),
        agrees=flag(),
    ),
    "manual_steps": Concern(
        "passos manuais no PEC",
        "a migração ou a reconstrução (playbooks/migrate.yml, playbooks/rebuild.yml)",
        steps=map_of(
            obj(
                capability=text(),
                descricao=text(),
                caminho=text(),
                status=one_of(MANUAL_STEP_STATUSES),
                solicitado_em=when(),
                confirmado_por=text(),
                confirmado_em=when(),
                confirmar=text(),
            )
        ),
    ),
}


# ------------------------------------------------------------------------------------------------ classification
_UNSET = object()
# pec_state's error_kind of a file that is empty or ends mid-document.
TRUNCATED_KIND = "truncated"


def _required(spec, dotted):
    """Whether the schema requires the field at ``dotted`` (every object on the way required too)."""
    for part in dotted.split("."):
        if spec is None or spec.kind != "object" or not spec.required:
            return False
        spec = spec.fields.get(part)
    return bool(spec and spec.required)


def _record(concern, status, detail="", field="", entry=None, data=None, day_value=None):
    entry = entry if isinstance(entry, dict) else {}
    return {
        "concern": concern,
        "status": status,
        "label": RECORD[status]["label"],
        "detail": detail,
        "field": field,
        "usable": status in USABLE,
        "present": status != MISSING,
        "stale": status == STALE,
        "day": day_value.isoformat() if day_value else "",
        "path": entry.get("path") if isinstance(entry.get("path"), str) else "",
        "data": data if status in USABLE and isinstance(data, dict) else {},
    }


def _mode(value):
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    try:
        return int(str(value), 8)
    except (TypeError, ValueError):
        return None


def untrusted(entry):
    """Why a state file could have been written by someone other than root ('' when it could not, or when the
    entry does not say its owner and mode)."""
    uid, mode = entry.get("uid"), _mode(entry.get("mode"))
    why = []
    if isinstance(uid, int) and not isinstance(uid, bool) and uid != 0:
        why.append(f"dono uid {uid}, não o root")
    if mode is not None and mode & 0o002:
        why.append(f"gravável por qualquer usuário, modo {mode:04o}")
    elif mode is not None and mode & 0o020:
        why.append(f"gravável pelo grupo, modo {mode:04o}")
    return "; ".join(why)


def classify(concern, entry, today, data=_UNSET):
    """The record of ``concern`` as the report reads it: {concern, status, label, detail, field, usable, present,
    stale, day, path, data}; ``data`` is the validated content of a usable record, ``{}`` otherwise.

    ``entry`` is pec_info's state entry for the concern (None when pec_info gave none); ``data``, when given,
    stands for the entry's data (the backup status pec_info re-checked, the migration record, the same run's facts).
    Never raises, whatever ``entry`` and ``data`` hold.
    """
    spec = CONCERNS[concern]
    given = data is not _UNSET and data is not None
    if entry is None and not given:
        return _record(concern, MISSING)
    if entry is not None and not isinstance(entry, dict):
        return _record(concern, UNREADABLE, f"a entrada do estado chegou como {type_name(entry)}, não objeto")
    entry = entry or {}
    error = entry.get("error")
    kind = entry.get("error_kind")
    if not error and entry and entry.get("present") is False and not given:
        return _record(concern, MISSING, entry=entry)
    # the server's own message (English, for the technician) stays in pec_info's result, not in the report
    if error and kind == TRUNCATED_KIND:
        return _record(concern, TRUNCATED, entry=entry)
    if error and kind not in ("not_object", "date"):
        return _record(concern, UNREADABLE, entry=entry)
    why = untrusted(entry)
    if why:
        return _record(concern, UNTRUSTED, why, entry=entry)
    if kind == "not_object":
        got = TYPE_NAMES.get(str(entry.get("error_type")), "outra coisa")
        return _record(concern, WRONG_TYPE, f"(documento): deveria ser objeto, veio {got}", "(documento)", entry)
    if kind == "date":
        field = str(entry.get("error_field") or "produced_at")
        got = TYPE_NAMES.get(str(entry.get("error_type")), "")
        # an absent date the schema does not require (a migration record before its end) is no error of its own
        if got != "nada" or field == "produced_at" or _required(spec.schema, field):
            got = "texto que não é data" if got in ("texto", "") else got
            detail = f"{field}: ausente" if got == "nada" else f"{field}: deveria ser data e hora, veio {got}"
            return _record(concern, WRONG_TYPE, detail, field, entry)
    content = data if given else entry.get("data")
    if isinstance(content, dict) and set(content) == {"error"}:
        return _record(concern, UNREADABLE, entry=entry)
    found = []
    check(spec.schema, content, "", today, found)
    for name in ("produced_at", "confirmed_at"):
        check(when(), entry.get(name), name, today, found)
    for status in (WRONG_TYPE, FUTURE):
        first = next(((f, d) for s, f, d in found if s == status), None)
        if first:
            return _record(concern, status, first[1], first[0], entry)
    produced = _day_of(entry.get("produced_at")) if isinstance(entry.get("produced_at"), str) else None
    status = STALE if entry.get("stale") is True else OK
    return _record(concern, status, entry=entry, data=content, day_value=produced)


def problem_text(record):
    """What a pendency about a record that is not taken says: which record, why, what (field) and what to do."""
    spec = CONCERNS[record["concern"]]
    meta = RECORD[record["status"]]
    detail = f" ({record['detail']})" if record["detail"] else ""
    todo = meta["todo"].format(file=record["path"] or "de estado", producer=spec.producer)
    return (
        f"o registro de {spec.label} no servidor {meta['why']}{detail}: {todo}; até lá a situação é desconhecida "
        "(o registro não é levado em conta)"
    )


def cell_text(record, summary):
    """What a cell shows for a record: the summary of a usable one (with its day, 'desatualizado' when stale), the
    record status otherwise, with the field for a wrong type."""
    if record["usable"]:
        text_ = summary
        if record["day"]:
            text_ += f" ({_dmy(datetime.date.fromisoformat(record['day']))})"
        return "desatualizado: " + text_ if record["stale"] else text_
    if record["status"] in (WRONG_TYPE, FUTURE) and record["field"]:
        return f"{record['label']} ({record['field']})"
    return record["label"]
