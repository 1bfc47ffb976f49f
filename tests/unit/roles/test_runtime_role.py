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
    entries = _entry_points() + list(_jobs())
    modules = {entry["module"] for _path, entry in entries}
    assert {"pec_backup", "lotes", "maintenance", "audit_rules", "cnes_stage"} <= modules
    for path, entry in entries:
        filename = entry["module"] + ".py"
        assert filename in _package(), (path, entry)
        with open(os.path.join(MODULE_UTILS, filename), encoding="utf-8") as handle:
            tree = ast.parse(handle.read())
        functions = {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}
        assert entry.get("function", "cli_main") in functions, (path, entry)


# ---------------------------------------------------------------------------------------------- the server jobs
def _jobs():
    """(role, runtime_job) of every job a role declares (include_role sesdf.esus.runtime, tasks_from job)."""
    found = []
    for path in sorted(glob.glob(os.path.join(REPO, "roles", "*", "tasks", "*.yml"))):
        for task in _walk(_load(path)):
            include = task.get("ansible.builtin.include_role") or {}
            if include.get("name") == "sesdf.esus.runtime" and include.get("tasks_from") == "job":
                found.append((path.split(os.sep)[-3], task["vars"]["runtime_job"]))
    return found


def _config_keys(role, config):
    """The keys of the configuration a role writes (a dict, or the name of a dict in its vars/main.yml)."""
    if isinstance(config, str):
        name = config.strip("{} ").split("|")[0].strip()
        config = _load(os.path.join(REPO, "roles", role, "vars", "main.yml"))[name]
    return set(config)


def _config_class(module_name):
    import dataclasses
    import importlib

    from ansible_collections.sesdf.esus.plugins.module_utils._job import JobConfig

    module = importlib.import_module(f"{PACKAGE}.{module_name}")
    classes = [
        value
        for value in vars(module).values()
        if isinstance(value, type) and issubclass(value, JobConfig) and value is not JobConfig
    ]
    assert len(classes) == 1, f"{module_name}: one JobConfig dataclass per job, found {classes}"
    return classes[0], {f.name: f for f in dataclasses.fields(classes[0])}


def test_every_server_job_is_declared_through_the_runtime_job_entry_point():
    jobs = {job["name"].strip("{} "): (role, job["module"]) for role, job in _jobs()}
    assert sorted(module for _role, module in jobs.values()) == ["cnes_stage", "lotes", "maintenance", "pec_backup"]
    assert {role for role, _module in jobs.values()} == {"backup_schedule", "cnes_import", "hardening", "lotes_export"}
    # nothing else schedules a program: no cron module, no unit template of its own outside the runtime role
    for path in glob.glob(os.path.join(REPO, "roles", "*", "tasks", "*.yml")):
        for task in _walk(_load(path)):
            assert "ansible.builtin.cron" not in task, path
    timers = glob.glob(os.path.join(REPO, "roles", "*", "templates", "*.timer.j2"))
    assert [os.path.relpath(t, REPO) for t in timers] == ["roles/runtime/templates/job.timer.j2"]


def test_the_configuration_each_role_writes_fits_its_jobs_dataclass():
    import dataclasses

    for role, job in _jobs():
        _cls, fields = _config_class(job["module"])
        keys = _config_keys(role, job["config"])
        assert keys <= set(fields), f"{role}: keys {sorted(keys - set(fields))} are not fields of the job's dataclass"
        required = {
            name
            for name, field in fields.items()
            if field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING
        }
        assert required <= keys, f"{role}: the job needs {sorted(required - keys)}"


def test_every_job_runs_through_job_main():
    for _role, job in _jobs():
        with open(os.path.join(MODULE_UTILS, job["module"] + ".py"), encoding="utf-8") as handle:
            tree = ast.parse(handle.read())
        cli = next(node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name == "cli_main")
        calls = {n.func.id for n in ast.walk(cli) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
        assert "job_main" in calls, f"{job['module']}.cli_main must call _job.job_main"


def _render(runtime_job, names):
    """The runtime role's vars of the `job` entry point, rendered by Ansible for ``runtime_job`` on localhost."""
    import json
    import subprocess
    import sys
    import tempfile
    import textwrap

    home = tempfile.mkdtemp(prefix="sesdf-esus-ansible-")
    playbook = os.path.join(home, "render.yml")
    with open(playbook, "w", encoding="utf-8") as handle:
        handle.write(
            textwrap.dedent(
                f"""\
                - hosts: localhost
                  gather_facts: false
                  vars_files:
                    - {os.path.join(REPO, "roles", "runtime", "defaults", "main.yml")}
                    - {os.path.join(REPO, "roles", "runtime", "vars", "main.yml")}
                  tasks:
                    - ansible.builtin.copy:
                        content: "{{{{ {{{", ".join(f"'{n}': {n}" for n in names)}}} | to_json }}}}"
                        dest: "{home}/out.json"
                        mode: "0600"
                """
            )
        )
    env = dict(os.environ, ANSIBLE_HOME=home, ANSIBLE_LOCAL_TEMP=home, ANSIBLE_NOCOLOR="1")
    env["ANSIBLE_PYTHON_INTERPRETER"] = sys.executable
    playbook_bin = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
    proc = subprocess.run(
        [playbook_bin, "-i", "localhost,", "-c", "local", playbook, "-e", json.dumps({"runtime_job": runtime_job})],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    with open(os.path.join(home, "out.json"), encoding="utf-8") as handle:
        return json.load(handle)


def test_a_cron_schedule_becomes_the_timers_calendar_and_the_cron_line():
    base = {"name": "sesdf-esus-x", "role": "r", "module": "m", "description": "d", "config_path": "/etc/x.json"}
    seen = {}
    for weekday, calendar in (
        ("*", "*-*-* 02:30:00"),
        ("1", "Mon *-*-* 02:30:00"),
        ("0", "Sun *-*-* 02:30:00"),
        ("1,3", "Mon,Wed *-*-* 02:30:00"),
        ("1-5", "Mon..Fri *-*-* 02:30:00"),
    ):
        job = dict(base, schedule={"hour": 2, "minute": "30", "weekday": weekday}, method="cron")
        out = _render(job, ["__runtime_job_on_calendar", "__runtime_job_cron_line", "__runtime_job_stale"])
        seen[weekday] = out["__runtime_job_on_calendar"]
        assert out["__runtime_job_cron_line"] == (
            f"30 2 * * {weekday} root systemd-cat -t sesdf-esus-x /usr/local/sbin/sesdf-esus-x --config /etc/x.json"
        )
        # under cron the units of an earlier timer install go; under a timer the cron file would
        assert out["__runtime_job_stale"] == [
            "/etc/systemd/system/sesdf-esus-x.service",
            "/etc/systemd/system/sesdf-esus-x.timer",
        ]
        assert calendar == seen[weekday]
    timer = _render(dict(base, on_calendar="*-*-* 03:00:00"), ["__runtime_job_on_calendar", "__runtime_job_stale"])
    assert timer == {"__runtime_job_on_calendar": "*-*-* 03:00:00", "__runtime_job_stale": ["/etc/cron.d/sesdf-esus-x"]}
