"""Shared fixtures for the unit tests: a real, throw-away PostgreSQL server for client-tool tests."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time

import pytest


def _pg_bin():
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    return found[0] if found else None


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def pg_server():
    """A PostgreSQL cluster on 127.0.0.1 with password (scram) auth, run as the postgres system user.

    Yields a dict: bin_dir, host, port, user, password, name, superuser connection for the tests.
    """
    bin_dir = _pg_bin()
    if bin_dir is None:
        pytest.fail("PostgreSQL server binaries not found under /usr/lib/postgresql: run `make deps`")
    try:
        pg_user = pwd.getpwnam("postgres")
    except KeyError:
        pytest.fail("system user postgres missing: run `make deps` (installs postgresql-15)")
    base = tempfile.mkdtemp(prefix="sesdf-esus-pgtest-")
    os.chmod(base, 0o755)
    data = os.path.join(base, "data")
    pwfile = os.path.join(base, "pw")
    password = "unit-test-superuser-pw"
    with open(pwfile, "w") as handle:
        handle.write(password + "\n")
    os.chown(base, pg_user.pw_uid, pg_user.pw_gid)
    os.chown(pwfile, pg_user.pw_uid, pg_user.pw_gid)
    as_pg = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    subprocess.run(
        [
            *as_pg,
            f"{bin_dir}/initdb",
            "-D",
            data,
            "-U",
            "postgres",
            "--auth=scram-sha-256",
            f"--pwfile={pwfile}",
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
        ],
        check=True,
        capture_output=True,
    )
    os.unlink(pwfile)
    port = _free_port()
    log = os.path.join(base, "server.log")
    subprocess.run(
        [
            *as_pg,
            f"{bin_dir}/pg_ctl",
            "-D",
            data,
            "-l",
            log,
            "-w",
            "-o",
            f"-p {port} -c listen_addresses=127.0.0.1 -k {base}",
            "start",
        ],
        check=True,
        capture_output=True,
    )
    server = {
        "bin_dir": bin_dir,
        "host": "127.0.0.1",
        "port": port,
        "user": "postgres",
        "password": password,
        "name": "postgres",
        "data": data,
        "base": base,
    }
    try:
        deadline = time.time() + 30
        while time.time() < deadline:
            if (
                subprocess.run(
                    [f"{bin_dir}/pg_isready", "-h", "127.0.0.1", "-p", str(port)], capture_output=True, check=False
                ).returncode
                == 0
            ):
                break
            time.sleep(0.2)
        yield server
    finally:
        subprocess.run(
            [*as_pg, f"{bin_dir}/pg_ctl", "-D", data, "-m", "immediate", "stop"], capture_output=True, check=False
        )
        shutil.rmtree(base, ignore_errors=True)
