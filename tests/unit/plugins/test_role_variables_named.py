# Copyright: (c) 2026, SES-DF NTINF
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A message, docstring or documentation text in plugins/ that names a role variable (a name with a role's prefix or
``sesdf_esus_``) names one that exists: a role's default, var or argument spec option, a fact a role or playbook sets
(``set_fact``, ``register``), or an inventory variable of ``inventories/example``. Option and return names of the
modules, role and plugin names and the ``sesdf_esus_<concern>.fact`` files are not role variables."""

from __future__ import annotations

import ast
import glob
import os
import re

import yaml
from module_docs import REPO

ROLES = sorted(os.path.basename(p) for p in glob.glob(os.path.join(REPO, "roles", "*")) if os.path.isdir(p))
PREFIXES = sorted([*ROLES, "sesdf_esus"], key=len, reverse=True)
NAME = re.compile(r"(?<![\w./-])(?:" + "|".join(map(re.escape, PREFIXES)) + r")_\w*[a-z0-9](?![\w-])(?!\.fact\b)")
DOC_BLOCKS = ("DOCUMENTATION", "RETURN")


def _load(path):
    with open(path, encoding="utf-8") as handle:
        return yaml.safe_load(handle) or {}


def _tasks(node):
    """Every task (dict) under a list of tasks or plays, blocks included."""
    if isinstance(node, list):
        for item in node:
            yield from _tasks(item)
    elif isinstance(node, dict):
        yield node
        for key in ("block", "rescue", "always", "tasks", "pre_tasks", "post_tasks", "handlers"):
            yield from _tasks(node.get(key))


def _inventory_names(node):
    """Variable names of an inventory file (hosts.yml: vars and host variables; group_vars: the keys)."""
    if not isinstance(node, dict):
        return set()
    names = set()
    for key, value in node.items():
        if key == "hosts" and isinstance(value, dict):
            for host_vars in value.values():
                names |= set(host_vars or {})
        elif key == "vars" and isinstance(value, dict):
            names |= set(value)
        elif isinstance(value, dict):  # children, or a group under children
            names |= _inventory_names(value)
    return names


def defined_names():
    names = set()
    for pattern in ("roles/*/defaults/main.yml", "roles/*/vars/main.yml"):
        for path in glob.glob(os.path.join(REPO, pattern)):
            names |= set(_load(path))
    for path in glob.glob(os.path.join(REPO, "roles", "*", "meta", "argument_specs.yml")):
        for entry in (_load(path).get("argument_specs") or {}).values():
            names |= set(entry.get("options") or {})
    for pattern in ("roles/*/tasks/**/*.yml", "roles/*/handlers/*.yml", "playbooks/*.yml"):
        for path in glob.glob(os.path.join(REPO, pattern), recursive=True):
            for task in _tasks(_load(path) or []):
                names |= set(task.get("ansible.builtin.set_fact") or task.get("set_fact") or {})
                if isinstance(task.get("register"), str):
                    names.add(task["register"])
    for path in glob.glob(os.path.join(REPO, "inventories", "example", "group_vars", "*.yml")):
        names |= set(_load(path))
    for path in glob.glob(os.path.join(REPO, "inventories", "example", "*.yml")):  # one file per health region
        names |= _inventory_names(_load(path))
    return names


def _doc_keys(node):
    """Every key of a module's DOCUMENTATION options and RETURN values (suboptions and contains included)."""
    keys = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if isinstance(value, dict) and ("description" in value or "type" in value):
                keys.add(key)
            keys |= _doc_keys(value)
    elif isinstance(node, list):
        for item in node:
            keys |= _doc_keys(item)
    return keys


def not_variables():
    """Names that take a role prefix but are no role variable: roles, plugins, module options and return values."""
    names = set(ROLES)
    for path in glob.glob(os.path.join(REPO, "plugins", "*", "*.py")):
        names.add(os.path.basename(path)[:-3])
    for path in glob.glob(os.path.join(REPO, "plugins", "modules", "*.py")):
        with open(path, encoding="utf-8") as handle:
            tree = ast.parse(handle.read())
        for node in tree.body:
            if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) in DOC_BLOCKS:
                names |= _doc_keys(yaml.safe_load(node.value.value))
    return names


def _texts(path):
    """(line, text) of the prose of a Python file: string constants with a blank, the EXAMPLES aside (an example
    registers variables of its own)."""
    with open(path, encoding="utf-8") as handle:
        tree = ast.parse(handle.read())
    examples = set()
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == "EXAMPLES":
            examples.add(id(node.value))
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in examples:
            if re.search(r"\s", node.value):
                yield node.lineno, node.value


def unknown_names():
    known = defined_names() | not_variables()
    found = []
    for path in sorted(glob.glob(os.path.join(REPO, "plugins", "**", "*.py"), recursive=True)):
        for line, text in _texts(path):
            for match in NAME.finditer(text):
                if match.group(0) not in known:
                    found.append(f"{os.path.relpath(path, REPO)}:{line}: {match.group(0)}")
    return found


def test_texts_in_plugins_name_only_variables_that_exist():
    found = unknown_names()
    assert not found, "a text names a role variable no role, playbook or example inventory defines:\n" + "\n".join(
        found
    )


def test_the_scan_sees_the_variables_a_text_names():
    names = {m.group(0) for m in NAME.finditer("set C(lotes_export_all) or sesdf_esus_cnes; see sesdf_esus_lotes.fact")}
    assert names == {"lotes_export_all", "sesdf_esus_cnes"}
    known = defined_names()
    assert "lotes_export_all" not in known and "lotes_export_all_pending" in known
    assert {"sesdf_esus_cnes", "hardening_report", "sesdf_esus_facts_dir", "cnes_import_municipio_query"} <= known
