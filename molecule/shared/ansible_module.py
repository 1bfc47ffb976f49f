"""Run one Ansible module against a Molecule host from a testinfra test, as a technician would.

testinfra's ``host.ansible()`` detects failure from the ``failed`` key of ``ansible --tree`` output, which
ansible-core 2.19 no longer writes there, so a failing module would look like a success. This helper reads
the ``ansible`` exit code instead (0 ok, 2 failed, 4 unreachable) and puts ``failed`` back in the result.

Importable from every scenario's tests (the base Molecule config puts molecule/shared on PYTHONPATH).
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile


def _format_args(args):
    if args is None or isinstance(args, str):
        return args
    return json.dumps(args)  # ansible accepts JSON for --args


def run_module(hostname, module, args=None, become=True, check=False, extra_vars=None):
    """Returns the module's result dict with ``failed`` (bool) and ``rc`` (ansible's exit code) added."""
    with tempfile.TemporaryDirectory() as tree:
        cmd = ["ansible", "--tree", tree, "-i", os.environ["MOLECULE_INVENTORY_FILE"], "-m", module]
        formatted = _format_args(args)
        if formatted:
            cmd += ["--args", formatted]
        if become:
            cmd.append("--become")
        if check:
            cmd.append("--check")
        if extra_vars:
            cmd += ["-e", json.dumps(extra_vars)]
        cmd.append(hostname)
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        path = os.path.join(tree, hostname)
        if not os.path.exists(path):
            output = proc.stdout + proc.stderr
            raise RuntimeError(f"ansible gave no result for {hostname} (rc={proc.returncode}): {output}")
        with open(path, encoding="utf-8") as handle:
            result = json.load(handle)
    result["rc"] = proc.returncode
    result["failed"] = proc.returncode != 0
    return result
