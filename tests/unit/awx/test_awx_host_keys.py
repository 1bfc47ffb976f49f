"""Host keys checked in AWX jobs. AWX puts ANSIBLE_HOST_KEY_CHECKING=False in every job's environment (its ANSIBLE_*
settings, awx/main/tasks/jobs.py build_env) and ignores ANSIBLE_* variables in a credential's env injector; the
credential type "chaves de host das UBS" of awx/config.yml injects the region's known_hosts lines as a file and, as
extra vars, the ssh connection's own variables (host key checking on, that file, StrictHostKeyChecking=yes).

Proven against a real OpenSSH server on 127.0.0.1 (a UBS as a job reaches it: the EE's ansible.cfg, a fresh
ControlPath directory per job, AWX's environment), the credential injected as AWX injects it (awx_data.awx_inject):
the job reaches the UBS whose key the file holds, and is refused by one that presents another key or is not in the
file; without the credential, AWX's default connects to any of them."""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from awx_data import BIN, CONFIG, REPO, ansible_env, awx_inject, run

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"
HOST_KEYS = next(
    t for t in CONFIG["awx_credential_types"] if "known_hosts" in t["injectors"].get("file", {}).get("template", "")
)


def _keygen(path: Path) -> str:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    return path.with_suffix(".pub").read_text().split()[:2]


@pytest.fixture(scope="module")
def ubs(tmp_path_factory):
    """An sshd on a free loopback port with its own host key; the client key authorized for this user."""
    if not os.path.exists(SSHD):
        pytest.fail("install openssh-server (make deps): the host key tests run a real sshd on 127.0.0.1")
    work = tmp_path_factory.mktemp("sshd")
    host_key = _keygen(work / "host_key")
    other_key = _keygen(work / "other_key")
    client = _keygen(work / "client_key")
    (work / "authorized_keys").write_text(" ".join(client) + "\n")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    (work / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {work / 'host_key'}\nPidFile {work / 'sshd.pid'}\n"
        f"AuthorizedKeysFile {work / 'authorized_keys'}\nPermitRootLogin prohibit-password\n"
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n"
    )
    os.makedirs("/run/sshd", exist_ok=True)  # the privilege separation directory sshd requires
    server = subprocess.Popen([SSHD, "-D", "-e", "-f", str(work / "sshd_config")], stderr=subprocess.PIPE, text=True)
    for _attempt in range(100):
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.05)
    else:
        server.kill()
        pytest.fail(f"sshd did not listen: {server.stderr.read()}")
    yield {"work": work, "port": port, "host_key": host_key, "other_key": other_key}
    server.terminate()
    server.wait(timeout=10)


def job(ubs, tmp_path, known_hosts: str | None):
    """One job's ping of the UBS as AWX runs it: the EE's ansible.cfg, AWX's environment, its own ControlPath dir,
    the host keys credential injected when known_hosts is given. Returns the completed ansible-playbook."""
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(
        "ubs:\n  hosts:\n    ubs-1:\n"
        f"      ansible_host: 127.0.0.1\n      ansible_port: {ubs['port']}\n      ansible_user: {getpass.getuser()}\n"
        f"      ansible_ssh_private_key_file: {ubs['work'] / 'client_key'}\n"
        f"      ansible_python_interpreter: {sys.executable}\n"
    )
    (tmp_path / "ping.yml").write_text("- hosts: ubs\n  gather_facts: false\n  tasks:\n    - ansible.builtin.ping:\n")
    (tmp_path / "cp").mkdir()
    env = ansible_env(
        ANSIBLE_CONFIG=str(REPO / "ee" / "ansible.cfg"),
        ANSIBLE_HOST_KEY_CHECKING="False",  # AWX's setting, in every job's environment
        ANSIBLE_SSH_CONTROL_PATH_DIR=str(tmp_path / "cp"),
        HOME=str(tmp_path),  # no ~/.ssh/known_hosts of this machine's user
    )
    args = []
    if known_hosts is not None:
        cred_env, args = awx_inject(HOST_KEYS, {"known_hosts": known_hosts}, tmp_path / "pdd")
        env.update(cred_env)
    return run(
        [str(BIN / "ansible-playbook"), "-vvv", "-i", str(inventory), str(tmp_path / "ping.yml"), *args], env=env
    )


def _line(ubs, key):
    return f"[127.0.0.1]:{ubs['port']} {key[0]} {key[1]}\n"


def test_a_job_with_the_regions_host_keys_reaches_the_ubs_whose_key_it_holds(ubs, tmp_path):
    proc = job(ubs, tmp_path, "# UBS da região\n" + _line(ubs, ubs["host_key"]))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr
    assert "ok=1" in proc.stdout and "unreachable=0" in proc.stdout
    command = next(line for line in proc.stdout.splitlines() if "SSH: EXEC" in line)
    assert "StrictHostKeyChecking=yes" in command and "UserKnownHostsFile=" in command
    assert "StrictHostKeyChecking=no" not in command


def test_a_ubs_presenting_another_key_is_refused(ubs, tmp_path):
    proc = job(ubs, tmp_path, _line(ubs, ubs["other_key"]))
    assert proc.returncode != 0 and "unreachable=1" in proc.stdout
    assert "REMOTE HOST IDENTIFICATION HAS CHANGED" in proc.stdout or "Host key verification failed" in proc.stdout


def test_a_ubs_missing_from_the_file_is_refused_not_learned(ubs, tmp_path):
    proc = job(ubs, tmp_path, f"[127.0.0.2]:{ubs['port']} {' '.join(ubs['host_key'])}\n")
    assert proc.returncode != 0 and "unreachable=1" in proc.stdout
    assert "Host key verification failed" in proc.stdout
    injected = [p for p in (tmp_path / "pdd" / "env").iterdir() if "127.0.0.2" in p.read_text()]
    assert [p.read_text().count("\n") for p in injected] == [1], "the job must not add the key it was shown"


def test_without_the_credential_awxs_default_checks_no_key(ubs, tmp_path):
    """What the credential changes: AWX's own environment connects to a server whatever key it presents."""
    proc = job(ubs, tmp_path, None)
    assert proc.returncode == 0 and "StrictHostKeyChecking=no" in proc.stdout


def test_every_template_reaching_the_ubs_checks_their_host_keys():
    key = next(k for k, c in CONFIG["awx_credentials"].items() if c["type"] == HOST_KEYS["name"])
    assert CONFIG["awx_credentials"][key]["per_region"] is True
    for jt in CONFIG["awx_job_templates"]:
        assert "machine" in jt["credentials"] and key in jt["credentials"], jt["key"]
