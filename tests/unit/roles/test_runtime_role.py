# Copyright: (c) 2026, SES-DF NTINF
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The runtime role installs programs that import the collection's module_utils on servers without Ansible:
the package it copies must hold every module those programs import, directly or not, and every entry point a
role declares must name a function that exists."""

from __future__ import annotations

import ast
import glob
import os

import yaml

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
MODULE_UTILS = os.path.join(REPO, "plugins", "module_utils")
PACKAGE = "ansible_collections.sesdf.esus.plugins.module_utils"


def _load(path):
    with open(path, encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def _package():
    return _load(os.path.join(REPO, "roles", "runtime", "defaults", "main.yml"))["runtime_module_utils"]


def _imports(filename):
    """The collection's module_utils files a module imports (``from PACKAGE.x import ...`` and
    ``from PACKAGE import x, y``), anywhere in it (functions included)."""
    with open(os.path.join(MODULE_UTILS, filename), encoding="utf-8") as handle:
        tree = ast.parse(handle.read())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == PACKAGE:
                found.update(f"{alias.name}.py" for alias in node.names)
            elif node.module.startswith(PACKAGE + "."):
                found.add(node.module[len(PACKAGE) + 1 :].split(".")[0] + ".py")
    return found


def _walk(tasks):
    for task in tasks or []:
        yield task
        for key in ("block", "rescue", "always"):
            yield from _walk(task.get(key))


def _entry_points():
    """(role file, entry point) of every include of sesdf.esus.runtime in the roles."""
    found = []
    for path in glob.glob(os.path.join(REPO, "roles", "*", "tasks", "*.yml")):
        for task in _walk(_load(path)):
            include = task.get("ansible.builtin.include_role") or {}
            if include.get("name") == "sesdf.esus.runtime":
                for entry in (task.get("vars") or {}).get("runtime_entry_points", []):
                    found.append((os.path.relpath(path, REPO), entry))
    return found


def test_package_is_closed_under_imports():
    package = set(_package())
    for filename in sorted(package):
        assert os.path.isfile(os.path.join(MODULE_UTILS, filename)), filename
        missing = _imports(filename) - package
        assert not missing, f"{filename} imports {sorted(missing)}: add them to runtime_module_utils"


def test_argument_spec_default_is_the_defaults_list():
    spec = _load(os.path.join(REPO, "roles", "runtime", "meta", "argument_specs.yml"))
    assert spec["argument_specs"]["main"]["options"]["runtime_module_utils"]["default"] == _package()


def test_every_declared_entry_point_exists_in_the_package():
    entries = _entry_points()
    modules = {entry["module"] for _path, entry in entries}
    assert {"pec_backup", "lotes", "maintenance", "audit_rules"} <= modules
    for path, entry in entries:
        filename = entry["module"] + ".py"
        assert filename in _package(), (path, entry)
        with open(os.path.join(MODULE_UTILS, filename), encoding="utf-8") as handle:
            tree = ast.parse(handle.read())
        functions = {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}
        assert entry.get("function", "cli_main") in functions, (path, entry)
