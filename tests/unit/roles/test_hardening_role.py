"""The hardening role's report step (tasks_from report) run by ansible-playbook on localhost: the state it records
is what the managers' report reads (report_states' hardening schema), grouped by the note's item."""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import sys
import textwrap

import pytest

from ansible_collections.sesdf.esus.plugins.module_utils import report_hardening, report_states
from ansible_collections.sesdf.esus.plugins.module_utils.pec_state import read_states

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
CONTROLS = [
    {"id": "whitelist_services", "concern": "whitelist", "status": "fail", "detail": "intruso.service", "items": []},
    {"id": "ssh_config", "concern": "access", "status": "pass", "detail": "", "items": []},
    {"id": "firewall_rules", "concern": "firewall", "status": "fixed", "detail": "", "items": []},
    {
        "id": "cis_1.5.1",
        "cis_id": "1.5.1",
        "concern": "cis_sysctl",
        "title": "ASLR",
        "status": "fail",
        "detail": "ASLR (/etc/sysctl.d/60-sesdf-cis.conf): não conforme",
        "items": [],
    },
    {"id": "cis_2.3.2.2", "concern": "cis_time", "title": "hora", "status": "not_verifiable_here", "items": []},
]


def test_the_recorded_state_passes_the_reports_contract_and_keeps_each_findings_group(tmp_path):
    if not os.path.exists(os.path.join(REPO, "build", "collections", "ansible_collections", "sesdf", "esus")):
        pytest.fail("run `make collection` first (the unit target does)")
    playbook = tmp_path / "play.yml"
    playbook.write_text(
        textwrap.dedent("""\
        - hosts: localhost
          gather_facts: false
          tasks:
            - ansible.builtin.include_role:
                name: sesdf.esus.hardening
                tasks_from: report
    """)
    )
    extra = {
        "hardening_mode": "audit",
        "hardening_facts_dir": str(tmp_path / "facts"),
        "hardening_report_file": str(tmp_path / "state" / "hardening-report.json"),
        "__hardening_controls": CONTROLS,
        "ansible_python_interpreter": sys.executable,
    }
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(REPO, "build", "collections"), ANSIBLE_NOCOLOR="1")
    proc = subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), str(playbook), "-e", json.dumps(extra)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    entry = read_states(str(tmp_path / "facts"), concerns=["hardening"])["hardening"]
    entry["uid"] = 0  # written by the test's user; on a server, root
    record = report_states.classify("hardening", entry, datetime.date.today())
    assert record["status"] == "ok", record
    data = record["data"]
    assert data["summary"] == {"pass": 2, "fail": 2, "not_verifiable_here": 1} and data["mode"] == "audit"
    assert data["findings"] == [
        {"id": "whitelist_services", "concern": "whitelist", "status": "fail"},
        {"id": "cis_1.5.1", "concern": "cis_sysctl", "status": "fail", "title": "ASLR"},
        {"id": "cis_2.3.2.2", "concern": "cis_time", "status": "not_verifiable_here", "title": "hora"},
    ]
    assert "intruso.service" not in json.dumps(data), "no control detail (paths, names) in the state"
    groups = {g["concern"]: (g["nt"], g["failed"], g["unverifiable"]) for g in report_hardening.groups(data)}
    assert groups == {
        "whitelist": ("NT-inapta-1", ["whitelist_services"], []),
        "cis_sysctl": ("NT-inapta-2", ["cis_1.5.1"], []),
        "cis_time": ("NT-inapta-2", [], ["cis_2.3.2.2"]),
    }
