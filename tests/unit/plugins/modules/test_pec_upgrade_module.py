"""The pec_upgrade module's installer run as Ansible runs it (arguments file in, JSON out), with a fake installer
that prints the install's passwords in several forms: what the module returns never holds them."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
import sys

MODULES = os.path.join(os.path.dirname(__file__), "..", "..", "..", "..", "plugins", "modules")
DB_PASSWORD = "Db-pw-7731-q"
RO_PASSWORD = "Ro-pw-5512-k"
CONFIG_PASSWORD = "Cfg-pw-2204-m"
NEW_PASSWORD = "New-pw-9043-t"
SECRETS = (DB_PASSWORD, RO_PASSWORD, CONFIG_PASSWORD, NEW_PASSWORD)


def _install(tmp_path):
    root = tmp_path / "e-SUS"
    config = root / "webserver" / "config"
    config.mkdir(parents=True)
    url = "jdbc:postgresql://localhost:5433/esus"
    (config / "application.properties").write_text(
        f"spring.datasource.url={url}\nspring.datasource.username=esus\nspring.datasource.password={DB_PASSWORD}\n"
    )
    (config / "credenciais.txt").write_text(
        f"Url de conexão: {url}\n\nUsuário: esus\nSenha: {DB_PASSWORD}\n\nUsuário: esus_leitura\nSenha: {RO_PASSWORD}\n"
    )
    pec_config = tmp_path / "pec.config"
    pec_config.write_text(json.dumps({"version": "5.3.19", "databaseUrl": url, "databasePassword": CONFIG_PASSWORD}))
    return root, config, pec_config


def _fake_java(tmp_path, config, log, rc):
    """A java that answers -help with its flags, and as the installer prints every password in a few forms, writes
    a new password into application.properties, logs one, and exits ``rc``."""
    java = tmp_path / "java"
    java.write_text(
        "#!/bin/sh\n"
        'if [ "$3" = "-help" ]; then echo "-console -continue"; exit 0; fi\n'
        f'echo "Conectando a jdbc:postgresql://localhost:5433/esus?user=esus&password={DB_PASSWORD}"\n'
        f'echo "Senha: {RO_PASSWORD}"\n'
        f'echo \'{{"databasePassword": "{CONFIG_PASSWORD}"}}\'\n'
        f'echo "conexão com esus/{DB_PASSWORD} recusada"\n'
        f'echo "spring.datasource.password={NEW_PASSWORD}" >> {config}/application.properties\n'
        f'echo "nova senha gravada {NEW_PASSWORD}"\n'
        f'echo "ERRO: java.lang.OutOfMemoryError: Java heap space (senha {DB_PASSWORD})" > {log}\n'
        'echo "ERRO: falha ao atualizar o banco de dados"\n'
        f"exit {rc}\n"
    )
    java.chmod(java.stat().st_mode | stat.S_IXUSR)
    return str(java)


def _run(tmp_path, rc):
    root, config, pec_config = _install(tmp_path)
    jar = tmp_path / "eSUS-AB-PEC-5.4.37-Linux64.jar"
    jar.write_bytes(b"fake installer")
    log = tmp_path / "instalador.log"
    args = {
        "action": "install",
        "target_version": "5.4.37",
        "installer": str(jar),
        "installer_sha256": hashlib.sha256(b"fake installer").hexdigest(),
        "installer_log": str(log),
        "java_bin": _fake_java(tmp_path, config, log, rc),
        "pec_root": str(root),
        "pec_config_path": str(pec_config),
    }
    path = tmp_path / "args.json"
    path.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": args}))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    proc = subprocess.run(
        [sys.executable, os.path.join(MODULES, "pec_upgrade.py"), str(path)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    return proc, json.loads(proc.stdout)


def test_a_failed_installer_that_prints_passwords_returns_none_and_keeps_its_errors(tmp_path):
    proc, out = _run(tmp_path, rc=2)
    assert out["failed"] is True and out["rc"] == 2
    for secret in SECRETS:
        assert secret not in proc.stdout + proc.stderr, f"{secret} reached the module's output"
    assert "failed with exit code 2: ERRO: falha ao atualizar o banco de dados" in out["msg"]
    assert "ERRO: falha ao atualizar o banco de dados" in out["stdout_lines"]
    assert "Senha: ********" in out["stdout_lines"]
    assert out["installer_log_lines"] == ["ERRO: java.lang.OutOfMemoryError: Java heap space (senha ********)"]
    assert [m["code"] for m in out["failure_modes"]] == ["out_of_memory"], "the diagnosis still reads the log"


def test_an_installer_that_exits_0_but_leaves_the_old_version_fails_without_passwords(tmp_path):
    proc, out = _run(tmp_path, rc=0)
    assert out["failed"] is True and "says 5.3.19, not 5.4.37" in out["msg"]
    for secret in SECRETS:
        assert secret not in proc.stdout + proc.stderr
    assert "nova senha gravada ********" in out["stdout_lines"], "a password the installer wrote is masked too"
