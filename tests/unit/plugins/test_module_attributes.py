# Copyright: (c) 2026, SES-DF NTINF
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What each module claims under ``attributes`` (check mode, diff mode, platform), read from its documentation merged
with its fragments the way ansible-doc merges them: every module takes the meaning of the attributes from the
``sesdf.esus.attributes`` fragment and states only its own support, the claims are the ones pinned here, and a
module that claims check mode declares it to Ansible."""

from __future__ import annotations

import ast
import glob
import importlib
import os

import pytest
import yaml
from ansible.utils.plugin_docs import merge_fragment

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
MODULES = sorted(os.path.basename(p)[:-3] for p in glob.glob(os.path.join(REPO, "plugins", "modules", "*.py")))
FRAGMENT = "sesdf.esus.attributes"
PLATFORM = "sesdf.esus.attributes.platform"

# module: (check_mode support, diff_mode support). A change of a claim changes this table, on purpose.
CLAIMS = {
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
    "pec_regime": ("full", "none"),
    "pec_restore": ("full", "none"),
    "pec_state": ("full", "full"),
    "pec_survey": ("full", "none"),
    "pec_upgrade": ("full", "full"),
    "report_write": ("full", "none"),
}


def _source(name):
    with open(os.path.join(REPO, "plugins", "modules", name + ".py"), encoding="utf-8") as handle:
        return handle.read()


def _own_doc(name):
    """The module's DOCUMENTATION as written (before any fragment)."""
    for node in ast.parse(_source(name)).body:
        if isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == ["DOCUMENTATION"]:
            return yaml.safe_load(node.value.value)
    raise AssertionError(f"{name}: no DOCUMENTATION")


def _fragment(slug):
    """The YAML of a fragment named as in extends_documentation_fragment (``ns.coll.file[.var]``)."""
    parts = slug.split(".")
    if parts[:2] == ["sesdf", "esus"]:
        package, rest = "ansible_collections.sesdf.esus.plugins.doc_fragments", parts[2:]
    elif parts[:2] == ["ansible", "builtin"]:
        package, rest = "ansible.plugins.doc_fragments", parts[2:]
    else:
        raise AssertionError(f"fragment {slug} is neither the collection's nor ansible.builtin's")
    variable = rest[1].upper() if len(rest) > 1 else "DOCUMENTATION"
    fragment_class = importlib.import_module(f"{package}.{rest[0]}").ModuleDocFragment
    return yaml.safe_load(getattr(fragment_class, variable))


def _merged_doc(name):
    """The documentation as ansible-doc shows it: the fragments merged in, in order, with ansible's own merge."""
    doc = _own_doc(name)
    for slug in doc.pop("extends_documentation_fragment", []):
        fragment = _fragment(slug)
        for key in ("options", "attributes"):
            if key in fragment:
                if key in doc:
                    merge_fragment(doc[key], fragment.pop(key))
                else:
                    doc[key] = fragment.pop(key)
        for key in ("notes", "seealso"):
            doc.setdefault(key, []).extend(fragment.pop(key, None) or [])
        merge_fragment(doc, fragment)
    return doc


def _declares_check_mode(name):
    """Whether Ansible is told the module supports check mode: ``AnsibleModule(..., supports_check_mode=True)``, or
    for a module run by an action plugin, that plugin not turning check mode off."""
    calls = [
        node
        for node in ast.walk(ast.parse(_source(name)))
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
    doc = _own_doc(name)
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
    attributes = _merged_doc(name)["attributes"]
    check_mode, diff_mode = CLAIMS[name]
    assert attributes["check_mode"]["support"] == check_mode
    assert attributes["diff_mode"]["support"] == diff_mode
    assert attributes["platform"]["support"] == "full" and attributes["platform"]["platforms"] == "posix"
    fragment = _fragment(FRAGMENT)["attributes"]
    for attribute in ("check_mode", "diff_mode"):
        assert attributes[attribute]["description"] == fragment[attribute]["description"]
    for attribute, value in attributes.items():
        assert value.get("description") and value.get("support"), (name, attribute)


@pytest.mark.parametrize("name", MODULES)
def test_a_module_claiming_check_mode_declares_it(name):
    if CLAIMS[name][0] in ("full", "partial"):
        assert _declares_check_mode(name), f"{name} claims check_mode but does not declare supports_check_mode=True"
