# Copyright: (c) 2026, SES-DF NTINF
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The profile audit: the PEC's lotações and profiles compared with the CNES XML (module_utils cnes_xml).

Python stdlib only. Used by the ``sesdf.esus.pec_profile_audit`` module (role ``profile_audit``).
"""

from __future__ import annotations

import json

from ansible_collections.sesdf.esus.plugins.module_utils.pec_schema import LiveSchema

# The lotações and their profiles, one JSON object per lotação; {name}, {active}, {profile_type} are the live columns
# (module_utils pec_schema: the double's 4.x names or those seen on 5.5). The CPF and name are read for the
# comparison with the CNES XML, as before 5.5 support: nothing more is read on either schema.
AUDIT_SQL_TEMPLATE = """
SELECT json_build_object(
    'ator_papel', l.co_ator_papel, 'cpf', p.nu_cpf, 'cns', p.nu_cns, 'name', {name},
    'cnes', u.nu_cnes, 'cbo', b.co_cbo_2002, 'active', {active},
    'profiles', coalesce((
        SELECT json_agg(json_build_object(
            'name', pf.no_perfil, 'type', {profile_type},
            'allowed_for_cbo', EXISTS (SELECT 1 FROM rl_perfil_cbo_padrao r
                                       WHERE r.co_perfil = pf.co_seq_perfil AND r.co_cbo = l.co_cbo))
            ORDER BY pf.no_perfil)
        FROM rl_ator_papel_perfil rp JOIN tb_perfil pf ON pf.co_seq_perfil = rp.co_perfil
        WHERE rp.co_ator_papel = l.co_ator_papel), '[]'::json))::text
FROM tb_lotacao l
JOIN tb_ator_papel ap ON ap.co_seq_ator_papel = l.co_ator_papel
JOIN tb_prof p ON p.co_seq_prof = ap.co_prof
JOIN tb_unidade_saude u ON u.co_seq_unidade_saude = l.co_unidade_saude
JOIN tb_cbo b ON b.co_cbo = l.co_cbo
ORDER BY p.nu_cpf, l.co_ator_papel
"""
AUDIT_FIELDS = ("professional_name", "lotacao_active", "profile_type")
AUDIT_COLUMNS = {
    "tb_lotacao": ["co_ator_papel", "co_unidade_saude", "co_cbo"],
    "tb_ator_papel": ["co_seq_ator_papel", "co_prof"],
    "tb_prof": ["co_seq_prof", "nu_cpf", "nu_cns"],
    "tb_unidade_saude": ["co_seq_unidade_saude", "nu_cnes"],
    "tb_cbo": ["co_cbo", "co_cbo_2002"],
    "rl_ator_papel_perfil": ["co_ator_papel", "co_perfil"],
    "tb_perfil": ["co_seq_perfil", "no_perfil"],
    "rl_perfil_cbo_padrao": ["co_perfil", "co_cbo"],
}


def audit_sql(resolved):
    """AUDIT_SQL_TEMPLATE on the live schema (a pec_schema Resolved of AUDIT_FIELDS)."""
    return AUDIT_SQL_TEMPLATE.format(
        name=resolved.expr("professional_name", "p"),
        active=resolved.expr("lotacao_active", "l"),
        profile_type=resolved.expr("profile_type", "pf"),
    )


def read_lotacoes(client, schema=None):
    """The PEC's lotações as audit_profiles takes them, read on the 4.x or the 5.x schema (``active`` a boolean on
    both). Raises pec_schema.SchemaUnsupported, naming the missing column, before any row is read."""
    resolved = (schema or LiveSchema(client)).resolve("the profile audit", AUDIT_FIELDS, AUDIT_COLUMNS)
    return [json.loads(r[0]) for r in client.query(audit_sql(resolved))]


def audit_profiles(cnes_data, lotacoes, extra_allowed_profiles=(), include_inactive=False):
    """Compare the PEC's lotações (read_lotacoes) with the CNES XML (parse_cnes output).

    A lotação is right when the CNES XML places the professional (by CPF) in the same unit CNES with
    the same CBO, and each of its profiles is a default profile of that CBO (rl_perfil_cbo_padrao) or
    one of ``extra_allowed_profiles``. Returns the list of mismatches, each a dict with ``tipo``.
    """
    by_cpf = {p["cpf"]: p for p in cnes_data["all_professionals"] if p["cpf"]}
    extra = set(extra_allowed_profiles or ())
    mismatches = []
    for lot in lotacoes:
        if not lot.get("active", True) and not include_inactive:
            continue
        base = {
            "cpf": lot["cpf"],
            "nome": lot["name"],
            "cnes": lot["cnes"],
            "cbo": lot["cbo"],
            "ator_papel": lot["ator_papel"],
        }
        xml_prof = by_cpf.get(lot["cpf"])
        if xml_prof is None:
            mismatches.append(
                {**base, "tipo": "profissional_ausente_do_cnes", "detalhe": "o profissional não consta do XML do CNES"}
            )
        else:
            places = {(x["cnes"], x["cbo"]) for x in xml_prof["lotacoes"]}
            units = {x["cnes"] for x in xml_prof["lotacoes"]}
            if lot["cnes"] not in units:
                mismatches.append(
                    {
                        **base,
                        "tipo": "lotacao_em_outro_cnes",
                        "detalhe": f"lotação no CNES {lot['cnes']}; o CNES lota o profissional em "
                        + ", ".join(sorted(units)),
                    }
                )
            elif (lot["cnes"], lot["cbo"]) not in places:
                cbos = sorted(x["cbo"] for x in xml_prof["lotacoes"] if x["cnes"] == lot["cnes"])
                mismatches.append(
                    {
                        **base,
                        "tipo": "cbo_divergente",
                        "detalhe": f"CBO {lot['cbo']} no PEC; no CNES: {', '.join(cbos)}",
                    }
                )
        for prof in lot.get("profiles") or []:
            if prof["allowed_for_cbo"] or prof["name"] in extra:
                continue
            mismatches.append(
                {
                    **base,
                    "tipo": "perfil_nao_permitido_para_cbo",
                    "perfil": prof["name"],
                    "detalhe": f"perfil '{prof['name']}' não é perfil padrão do CBO {lot['cbo']}",
                }
            )
    return mismatches


def central_audit(cnes_data, lotacoes, cnes, extra_allowed_profiles=(), include_inactive=False):
    """The central server's side of a migrated UBS: its lotações of unit ``cnes`` checked as audit_profiles does,
    plus every professional the CNES XML places in that unit with no active lotação there with that CBO
    (``profissional_sem_lotacao_no_central``). The central server holds many units: the others are ignored.
    """
    here = [lot for lot in lotacoes if lot.get("cnes") == cnes]
    mismatches = audit_profiles(cnes_data, here, extra_allowed_profiles, include_inactive)
    present = {(lot["cpf"], lot["cbo"]) for lot in here if lot.get("active", True)}
    for prof in cnes_data["professionals"]:
        if (prof["cpf"], prof["cbo"]) in present:
            continue
        mismatches.append(
            {
                "cpf": prof["cpf"],
                "nome": prof["name"],
                "cnes": cnes,
                "cbo": prof["cbo"],
                "ator_papel": None,
                "tipo": "profissional_sem_lotacao_no_central",
                "detalhe": f"o CNES lota o profissional nesta unidade com o CBO {prof['cbo']}; o servidor central "
                "não tem essa lotação ativa (importar o CNES no servidor central ou cadastrar a lotação)",
            }
        )
    return mismatches
