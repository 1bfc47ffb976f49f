# Copyright: (c) 2026, SES-DF NTINF
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What each module claims under ``attributes`` (check mode, diff mode, platform), read from its documentation merged
with its fragments the way ansible-doc merges them: every module takes the meaning of the attributes from the
``sesdf.esus.attributes`` fragment and states only its own support, the claims are the ones pinned here, and a
module that claims check mode declares it to Ansible."""

from __future__ import annotations

import ast
import os

import pytest
from module_docs import MODULES, REPO, fragment, merged_doc, own_doc, source

FRAGMENT = "sesdf.esus.attributes"
PLATFORM = "sesdf.esus.attributes.platform"

# module: (check_mode support, diff_mode support). A change of a claim changes this table, on purpose.
CLAIMS = {
    "borg_retention": ("full", "none"),
    "cnes_xml": ("full", "none"),
    "host_inventory": ("full", "none"),
    "html_pdf": ("full", "none"),
    "managed_files": ("full", "full"),
    "pec_backup": ("full", "none"),
    "pec_backup_verify": ("full", "none"),
    "pec_cnes_import": ("partial", "none"),
    "pec_config": ("full", "full"),
    "pec_decommission_check": ("full", "none"),
    "pec_info": ("full", "none"),
    "pec_lotes": ("full", "none"),
    "pec_manual_steps": ("full", "full"),
    "pec_municipio": ("full", "none"),
    "pec_profile_audit": ("full", "none"),
    "pec_profiles": ("full", "full"),
    "pec_readiness": ("full", "none"),
    "pec_rebuild": ("full", "none"),
    "pec_regime": ("full", "none"),
    "pec_restore": ("full", "none"),
    "pec_state": ("full", "full"),
    "pec_survey": ("full", "none"),
    "pec_upgrade": ("full", "full"),
    "report_write": ("full", "none"),
}


def _declares_check_mode(name):
    """Whether Ansible is told the module supports check mode: ``AnsibleModule(..., supports_check_mode=True)``, or
    for a module run by an action plugin, that plugin not turning check mode off."""
    calls = [
        node
        for node in ast.walk(ast.parse(source(name)))
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "AnsibleModule"
    ]
    if calls:
        return all(
            any(kw.arg == "supports_check_mode" and getattr(kw.value, "value", None) is True for kw in call.keywords)
            for call in calls
        )
    action = os.path.join(REPO, "plugins", "action", name + ".py")
    assert os.path.isfile(action), f"{name}: neither an AnsibleModule call nor an action plugin"
    with open(action, encoding="utf-8") as handle:
        return "_supports_check_mode = False" not in handle.read()


def test_the_pinned_claims_cover_every_module():
    assert sorted(CLAIMS) == MODULES


@pytest.mark.parametrize("name", MODULES)
def test_module_extends_the_attributes_fragment_and_states_only_its_support(name):
    doc = own_doc(name)
    fragments = doc.get("extends_documentation_fragment", [])
    assert FRAGMENT in fragments and PLATFORM in fragments, name
    # ansible.builtin's common attributes would repeat the meanings the collection's fragment states
    assert "ansible.builtin.action_common_attributes" not in fragments, name
    own = doc["attributes"]
    for attribute in ("check_mode", "diff_mode"):
        assert own[attribute]["support"] in ("full", "partial", "none"), (name, attribute)
        assert "description" not in own[attribute], (name, attribute)
        if own[attribute]["support"] == "partial":
            assert own[attribute].get("details"), f"{name}: partial {attribute} says what is left out"


@pytest.mark.parametrize("name", MODULES)
def test_merged_attributes_are_the_pinned_claims(name):
    attributes = merged_doc(name)["attributes"]
    check_mode, diff_mode = CLAIMS[name]
    assert attributes["check_mode"]["support"] == check_mode
    assert attributes["diff_mode"]["support"] == diff_mode
    assert attributes["platform"]["support"] == "full" and attributes["platform"]["platforms"] == "posix"
    meanings = fragment(FRAGMENT)["attributes"]
    for attribute in ("check_mode", "diff_mode"):
        assert attributes[attribute]["description"] == meanings[attribute]["description"]
    for attribute, value in attributes.items():
        assert value.get("description") and value.get("support"), (name, attribute)


@pytest.mark.parametrize("name", MODULES)
def test_a_module_claiming_check_mode_declares_it(name):
    if CLAIMS[name][0] in ("full", "partial"):
        assert _declares_check_mode(name), f"{name} claims check_mode but does not declare supports_check_mode=True"
