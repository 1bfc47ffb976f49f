# Copyright: (c) 2026, SES-DF NTINF
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Steps done by hand in the PEC's UI where this PEC refuses the collection's write, and who confirmed them.

A capability of :mod:`pec_compat` refused on a server (the profile change, the automatic transmission or the CNES
profile reset: the real schema has other tables and no such ``tb_config_sistema`` keys) becomes a manual step of
the technical note, recorded on the server as ``pendente`` with the path in the PEC's UI. The flow stops there
until an operator says who did it (``decommission_manual_confirmed: {<id>: <name>}``); the next run records the
step ``confirmado`` with ``confirmado_por`` and ``confirmado_em`` and goes on. Nothing in the PEC is read to
confirm it: a confirmed step stays "não verificável automaticamente".

The record is the ``manual_steps`` concern of :mod:`pec_state` (``<facts_dir>/sesdf_esus_manual_steps.fact``,
root-only, written atomically)::

    {"concern": "manual_steps", "produced_at": ..., "confirmed_at": ...,
     "data": {"steps": {"NT-apta-transmissao": {"id": ..., "capability": "transmission_off", "descricao": ...,
              "caminho": ..., "status": "pendente", "solicitado_em": ..., "confirmado_por": null,
              "confirmado_em": null}}}}

A second run with the same refusals and the same confirmations changes nothing; a confirmation never replaces an
earlier one. The name is whatever the operator gave (a CPF-shaped one is refused: the notice and the report print
it).
"""

from __future__ import annotations

import re

from ansible_collections.sesdf.esus.plugins.module_utils._fsutil import read_json
from ansible_collections.sesdf.esus.plugins.module_utils._timeutil import iso, parse_ts, utcnow
from ansible_collections.sesdf.esus.plugins.module_utils.pec_common import PecError
from ansible_collections.sesdf.esus.plugins.module_utils.pec_compat import CAPABILITIES, FLOW_CAPABILITIES
from ansible_collections.sesdf.esus.plugins.module_utils.pec_state import state_path, write_state

CONCERN = "manual_steps"
PENDING = "pendente"
CONFIRMED = "confirmado"
UNVERIFIABLE = "não verificável"

# id -> the capability it stands in for and what the technician does (Portuguese: operators read it). The path in
# the PEC's UI is the capability's ``manual`` (pec_compat), unless the inventory gives another one.
STEPS = {
    "NT-apta-perfis": {
        "capability": "change_profiles",
        "descricao": (
            "deixar cada lotação só com o perfil de visualização e tirar os papéis de administrador, "
            "menos o da conta de emergência"
        ),
    },
    "NT-apta-transmissao": {
        "capability": "transmission_off",
        "descricao": "desligar a transmissão automática de lotes",
    },
    "NT-cnes-perfis": {
        "capability": "cnes_profile_reset_off",
        "descricao": "impedir que a importação do CNES redefina os perfis",
    },
    # the rebuild of a lost server (docs/rebuild.md): the restored base keeps the old server's address
    "NT-inapta-link": {
        "capability": "installation_link",
        "descricao": (
            "apontar o Link da instalação do PEC para o novo servidor (a base restaurada guarda o endereço do servidor "
            "perdido)"
        ),
        "confirmar": "rebuild_manual_confirmed (playbooks/rebuild.yml)",
    },
}
BY_CAPABILITY = {spec["capability"]: step_id for step_id, spec in STEPS.items()}

NAME_MAX = 120
_CPF = re.compile(r"\d{3}\.?\d{3}\.?\d{3}-?\d{2}")


def step_id(capability):
    """The manual step of a capability, or PecError for a capability that has none."""
    try:
        return BY_CAPABILITY[capability]
    except KeyError:
        raise PecError(
            f"capability {capability!r} has no manual step; known: {', '.join(sorted(BY_CAPABILITY))}"
        ) from None


def default_path(step):
    capability = STEPS[step]["capability"]
    return {**CAPABILITIES, **FLOW_CAPABILITIES}[capability]["manual"]


def _check_ids(ids, what):
    unknown = sorted(str(i) for i in ids if i not in STEPS)
    if unknown:
        raise PecError(
            f"{what}: unknown manual step {', '.join(unknown)}; nothing was recorded. The manual steps are "
            f"{', '.join(sorted(STEPS))} (the message that stopped the run names the ones pending on this server)"
        )


def _name(step, value):
    name = " ".join(str(value if value is not None else "").split())
    if not name:
        raise PecError(
            f"confirmation of {step} has no name; nothing was recorded. Give the name of the person who did it in "
            f'the PEC: decommission_manual_confirmed: {{"{step}": "Nome Sobrenome"}}'
        )
    if _CPF.search(name):
        raise PecError(
            f"confirmation of {step} looks like a CPF; nothing was recorded. Give the person's name, not a CPF or "
            "login (the name is printed in the migration notice and the report)"
        )
    if len(name) > NAME_MAX:
        raise PecError(f"confirmation of {step}: the name is longer than {NAME_MAX} characters; give just the name")
    return name


def read_steps(facts_dir):
    """The steps recorded on this server: {id: entry}. Raises PecError on a file that cannot be read (it holds
    who confirmed what: it is never overwritten on a guess)."""
    path = state_path(facts_dir, CONCERN)
    document = read_json(path, "manual steps record")
    if document is None:
        return {}
    steps = (document.get("data") or {}).get("steps") if isinstance(document, dict) else None
    if not isinstance(steps, dict) or not all(isinstance(e, dict) for e in steps.values()):
        raise PecError(
            f"manual steps record {path} has an unknown layout; nothing was changed. Inspect it (it holds who "
            "confirmed each step) and restore it from the server backup"
        )
    return steps


def update(steps, refused=(), confirmed=None, paths=None, now=None):
    """The steps after this run (pure): ``(steps, confirmed_now, ignored)``.

    ``refused``: capabilities this run found refused (each becomes its step, ``pendente``, when not recorded yet);
    ``confirmed``: {id: name} given by the operator; ``paths``: {id: path in the PEC's UI} replacing the default
    for steps recorded now. Unknown ids and empty or CPF-shaped names raise PecError before anything changes.
    """
    confirmed = dict(confirmed or {})
    paths = dict(paths or {})
    _check_ids(confirmed, "decommission_manual_confirmed")
    _check_ids(paths, "decommission_manual_step_paths")
    names = {step: _name(step, value) for step, value in confirmed.items()}
    stamp = iso(now or utcnow())
    steps = {k: dict(v) for k, v in steps.items()}
    for capability in refused:
        step = step_id(capability)
        if step not in steps:
            steps[step] = {
                "id": step,
                "capability": capability,
                "descricao": STEPS[step]["descricao"],
                "caminho": paths.get(step) or default_path(step),
                "status": PENDING,
                "solicitado_em": stamp,
                "confirmado_por": None,
                "confirmado_em": None,
            }
            if STEPS[step].get("confirmar"):
                steps[step]["confirmar"] = STEPS[step]["confirmar"]
    confirmed_now, ignored = [], []
    for step in sorted(names):
        entry = steps.get(step)
        if entry is None:
            ignored.append(
                f"{step} confirmed but no such manual step was asked on this server (the collection did it, or it "
                "was not needed): the confirmation is not recorded"
            )
        elif entry.get("status") != CONFIRMED:
            entry.update(status=CONFIRMED, confirmado_por=names[step], confirmado_em=stamp)
            confirmed_now.append(step)
        elif entry.get("confirmado_por") != names[step]:
            ignored.append(
                f"{step} was already confirmed by {entry.get('confirmado_por')} at {entry.get('confirmado_em')}: "
                "that confirmation stands"
            )
    return steps, confirmed_now, ignored


def check_text(entry):
    """What a check that cannot observe the PEC says about a step (Portuguese)."""
    if not entry:
        return "sem passo manual registrado: conferir na tela do PEC"
    day = parse_ts(entry.get("confirmado_em"))
    if entry.get("status") == CONFIRMED:
        when = day.strftime("%d/%m/%Y") if day else "data desconhecida"
        return (
            f"confirmado manualmente por {entry.get('confirmado_por') or '?'} em {when} "
            "(não verificável automaticamente)"
        )
    asked = parse_ts(entry.get("solicitado_em"))
    return (
        f"passo manual {entry.get('id', '?')} pendente desde {asked.strftime('%d/%m/%Y') if asked else '?'}: "
        f"no PEC, {entry.get('caminho') or '?'}"
    )


def run(params, check_mode=False, now=None):
    """Record the refused steps and the confirmations: the module's result (changed, path, steps, pending, ...)."""
    facts_dir = params["facts_dir"]
    before = read_steps(facts_dir)
    steps, confirmed_now, ignored = update(
        before, params.get("refused") or (), params.get("confirmed"), params.get("paths"), now=now
    )
    changed = steps != before
    if changed:
        write_state(facts_dir, CONCERN, {"steps": steps}, now=now, refresh_hours=float("inf"), check_mode=check_mode)
    pending = [steps[k] for k in sorted(steps) if steps[k].get("status") != CONFIRMED]
    return {
        "changed": changed,
        "path": state_path(facts_dir, CONCERN),
        "steps": steps,
        "pending": pending,
        "confirmed_now": confirmed_now,
        "ignored": ignored,
        "by_capability": {
            e.get("capability"): dict(e, verificacao=check_text(e)) for e in steps.values() if e.get("capability")
        },
        "diff": {"before": {"steps": before}, "after": {"steps": steps}},
    }
