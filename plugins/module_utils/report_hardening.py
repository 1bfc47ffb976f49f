# Copyright: (c) 2026, SES-DF NTINF
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A UBS's hardening findings as the managers read them: grouped by the item of the technical note they are about
and by what to do, in Portuguese, with counts; the control ids only in the detail.

The hardening role records, in the ``hardening`` state (report_states' schema), the mode of the run and each
control that failed or that this server cannot prove (``findings``: id, the role's ``concern``, status, title).
Each concern of the role is one group here (:data:`GROUPS`): the note's item it serves (docs/nt-ids.yml), its name,
what the enforce mode does for it (what an audit run says enforce would change) and what to do when enforce ran and
the control still fails. A record written before ``findings`` existed has only the ids: a group is then guessed
from the id (the allowed applications, the maintenance routine, the CIS base, the rest).
"""

from __future__ import annotations

from ansible_collections.sesdf.esus.plugins.module_utils._paths import STATE_DIR

# The note's items the hardening serves (docs/nt-ids.yml), as a manager reads them.
ITEMS = {
    "NT-inapta-1": "somente aplicações determinadas pela CTINF no servidor",
    "NT-inapta-2": "acesso ao servidor restrito e controlado",
    "NT-inapta-3": "rotina de manutenção periódica",
}
# What to do with a control enforce did not fix, where its group says nothing more precise.
REPORT_FILE = STATE_DIR + "/hardening-report.json"
SEE_DETAIL = f"ver o motivo de cada controle no relatório do hardening no servidor ({REPORT_FILE})"
# the role's concern -> (note's item, group, what enforce does, what to do when enforce did not fix it)
GROUPS = {
    "whitelist": (
        "NT-inapta-1",
        "aplicações no servidor",
        "remove os pacotes proibidos e para, desabilita e mascara os serviços e portas não autorizados",
        "remover o que não é autorizado ou pedir à CTINF que o autorize (hardening_whitelist_*_site); os serviços "
        "do PEC e o SSH nunca são parados: corrigir a configuração deles",
    ),
    "access": (
        "NT-inapta-2",
        "contas do NTINF, SSH e sudo",
        "cria as contas do NTINF e aplica a configuração do SSH e do sudo",
        "conferir hardening_ntinf_users (as contas e chaves do NTINF) e " + SEE_DETAIL,
    ),
    "firewall": (
        "NT-inapta-2",
        "firewall",
        "aplica as regras do firewall (nftables)",
        "definir as redes que podem acessar o PEC e o SSH (hardening_firewall_pec_networks e "
        "hardening_firewall_ssh_networks)",
    ),
    "permissions": (
        "NT-inapta-2",
        "permissões das credenciais e dos backups",
        "restringe as permissões das credenciais do PEC, da sua configuração e dos backups",
        SEE_DETAIL,
    ),
    "cron": ("NT-inapta-2", "agendamento de tarefas (cron)", "limita o cron aos usuários permitidos", SEE_DETAIL),
    "auditd": (
        "NT-inapta-2",
        "registro de auditoria (auditd)",
        "instala e carrega as regras de auditoria",
        "conferir o serviço auditd no servidor (ele não roda dentro de um container)",
    ),
    "banner": ("NT-inapta-2", "aviso de acesso restrito", "grava o aviso de acesso restrito", SEE_DETAIL),
    "pec_unit": (
        "NT-inapta-2",
        "confinamento do serviço do PEC",
        "aplica o confinamento do serviço do PEC (e o retira se o PEC deixar de responder)",
        "o PEC não respondeu com o confinamento, que foi retirado: conferir o serviço do PEC e " + SEE_DETAIL,
    ),
    "maintenance": (
        "NT-inapta-3",
        "rotina de manutenção",
        "instala a rotina de manutenção periódica",
        "conferir o timer sesdf-esus-manutencao.timer no servidor",
    ),
    "cis_sysctl": ("NT-inapta-2", "parâmetros do kernel (CIS)", "grava e aplica os parâmetros do kernel", SEE_DETAIL),
    "cis_modules": (
        "NT-inapta-2",
        "módulos do kernel desnecessários (CIS)",
        "bloqueia e descarrega os módulos do kernel desnecessários",
        SEE_DETAIL,
    ),
    "cis_coredump": ("NT-inapta-2", "core dumps (CIS)", "desliga os core dumps", SEE_DETAIL),
    "cis_accounts": (
        "NT-inapta-2",
        "senhas, bloqueio de contas e umask (CIS)",
        "aplica a política de senhas, o bloqueio após tentativas erradas e o umask",
        SEE_DETAIL,
    ),
    "cis_updates": (
        "NT-inapta-2",
        "atualizações de segurança (CIS)",
        "configura as atualizações de segurança",
        SEE_DETAIL,
    ),
    "cis_time": ("NT-inapta-2", "sincronização de hora (CIS)", "configura e ativa a sincronização de hora", SEE_DETAIL),
    "cis_logging": ("NT-inapta-2", "registro de logs (CIS)", "configura o journal e o rsyslog", SEE_DETAIL),
    "cis_files": (
        "NT-inapta-2",
        "permissões de arquivos de contas e de logs (CIS)",
        "corrige dono e permissões desses arquivos",
        SEE_DETAIL,
    ),
    # guessed from the id of a record written before findings existed
    "cis": ("NT-inapta-2", "configuração de base (CIS)", "aplica a configuração de base do CIS", SEE_DETAIL),
    "": ("NT-inapta-2", "outros controles", "corrige o que for corrigível", SEE_DETAIL),
}
ORDER = {name: i for i, name in enumerate(GROUPS)}
UNVERIFIABLE = (
    "não verificável neste servidor (num container o kernel e alguns serviços são os do hospedeiro): conferir no "
    "hospedeiro"
)
ENFORCE_HOW = "rodar playbooks/harden.yml com hardening_mode=enforce"


def _guess(control_id):
    if control_id.startswith("whitelist"):
        return "whitelist"
    if control_id.startswith("maintenance"):
        return "maintenance"
    return "cis" if control_id.startswith("cis_") else ""


def _findings(data):
    listed = data.get("findings")
    if isinstance(listed, list):
        return [f for f in listed if isinstance(f, dict) and f.get("status") in ("fail", "not_verifiable_here")]
    return [{"id": i, "status": "fail"} for i in data.get("failed") or []] + [
        {"id": i, "status": "not_verifiable_here"} for i in data.get("not_verifiable_here") or []
    ]


def groups(data):
    """The findings of a hardening record (validated by report_states), grouped: a list of {nt, item, concern,
    label, failed (ids), unverifiable (ids), action}, by the note's item and then in the role's order. ``action``
    says what to do: in audit mode what enforce would change, in enforce mode what enforce could not fix."""
    mode = data.get("mode") or ""
    out = {}
    for finding in _findings(data):
        control = str(finding.get("id") or "?")
        concern = finding.get("concern") or _guess(control)
        concern = concern if concern in GROUPS else ""
        nt, label, enforce, manual = GROUPS[concern]
        group = out.setdefault(
            concern,
            {"nt": nt, "item": ITEMS[nt], "concern": concern, "label": label, "failed": [], "unverifiable": []},
        )
        group["failed" if finding.get("status") == "fail" else "unverifiable"].append(control)
        if mode == "audit":
            group["action"] = f"o modo enforce {enforce}"
        elif mode == "enforce":
            group["action"] = manual
        else:
            group["action"] = f"{ENFORCE_HOW} ({enforce})"
    for group in out.values():
        if not group["failed"]:
            group["action"] = UNVERIFIABLE
    return sorted(out.values(), key=lambda g: (g["nt"], ORDER[g["concern"]]))


def pendency_texts(data):
    """{note's item: message} of the items with failing controls: the counts per group and what to do, never the
    ids (they are in the detail)."""
    mode = data.get("mode") or ""
    by_item = {}
    for group in groups(data):
        if group["failed"]:
            by_item.setdefault(group["nt"], []).append(group)
    texts = {}
    for nt, members in by_item.items():
        total = sum(len(g["failed"]) for g in members)
        parts = "; ".join(f"{g['label']} ({len(g['failed'])}): {g['action']}" for g in members)
        head = f"segurança - {ITEMS[nt]} ({nt}): {total} controle(s) falhando"
        if mode == "audit":
            texts[nt] = (
                f"{head} em modo auditoria (nada foi alterado no servidor). {parts}. Para corrigir: {ENFORCE_HOW}"
            )
        elif mode == "enforce":
            texts[nt] = f"{head} que o modo enforce não corrigiu. {parts}"
        else:
            texts[nt] = f"{head}. {parts}"
    return texts
