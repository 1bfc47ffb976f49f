# Copyright: (c) 2026, SES-DF NTINF
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A module's documentation as written and as ansible-doc shows it (its fragments merged in with ansible's own
merge), and the argument_spec its AnsibleModule call really gets, for the tests that compare them."""

from __future__ import annotations

import ast
import glob
import importlib
import os

import yaml
from ansible.utils.plugin_docs import merge_fragment

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
MODULES = sorted(os.path.basename(p)[:-3] for p in glob.glob(os.path.join(REPO, "plugins", "modules", "*.py")))


def source(name):
    with open(os.path.join(REPO, "plugins", "modules", name + ".py"), encoding="utf-8") as handle:
        return handle.read()


def own_doc(name):
    """The module's DOCUMENTATION as written (before any fragment)."""
    for node in ast.parse(source(name)).body:
        if isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == ["DOCUMENTATION"]:
            return yaml.safe_load(node.value.value)
    raise AssertionError(f"{name}: no DOCUMENTATION")


def fragment(slug):
    """The YAML of a fragment named as in extends_documentation_fragment (``ns.coll.file[.var]``)."""
    parts = slug.split(".")
    if parts[:2] == ["sesdf", "esus"]:
        package = "ansible_collections.sesdf.esus.plugins.doc_fragments"
    elif parts[:2] == ["ansible", "builtin"]:
        package = "ansible.plugins.doc_fragments"
    else:
        raise AssertionError(f"fragment {slug} is neither the collection's nor ansible.builtin's")
    rest = parts[2:]
    variable = rest[1].upper() if len(rest) > 1 else "DOCUMENTATION"
    fragment_class = importlib.import_module(f"{package}.{rest[0]}").ModuleDocFragment
    return yaml.safe_load(getattr(fragment_class, variable))


def merged_doc(name):
    """The documentation as ansible-doc shows it: the fragments merged in, in order, with ansible's own merge."""
    doc = own_doc(name)
    for slug in doc.pop("extends_documentation_fragment", []):
        part = fragment(slug)
        for key in ("options", "attributes"):
            if key in part:
                if key in doc:
                    merge_fragment(doc[key], part.pop(key))
                else:
                    doc[key] = part.pop(key)
        for key in ("notes", "seealso"):
            doc.setdefault(key, []).extend(part.pop(key, None) or [])
        merge_fragment(doc, part)
    return doc


class _Captured(Exception):
    pass


def argument_spec(name, monkeypatch):
    """The argument_spec the module's main() hands to AnsibleModule (None for a module run by an action plugin)."""
    module = importlib.import_module(f"ansible_collections.sesdf.esus.plugins.modules.{name}")
    if not hasattr(module, "AnsibleModule"):
        return None

    def capture(*args, **kwargs):
        raise _Captured(kwargs.get("argument_spec", args[0] if args else None))

    monkeypatch.setattr(module, "AnsibleModule", capture)
    try:
        module.main()
    except _Captured as captured:
        return captured.args[0]
    raise AssertionError(f"{name}: main() did not build an AnsibleModule")
