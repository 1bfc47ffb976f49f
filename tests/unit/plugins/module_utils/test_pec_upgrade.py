"""pec_upgrade: the upgrade decision, the gates and the installer run, without a server."""

from __future__ import annotations

import hashlib
import os
import stat
from types import SimpleNamespace

import pytest

from ansible_collections.sesdf.esus.plugins.module_utils.pec_common import PecError
from ansible_collections.sesdf.esus.plugins.module_utils.pec_upgrade import (
    HostRunner,
    adapt_flags,
    check_flags,
    check_sha256,
    diagnose,
    disk_needs,
    find_java,
    installed_version,
    installer_status,
    locale_available,
    plan,
    preflight,
    run_installer,
    supported_flags,
    tree_size,
)


@pytest.mark.nt("NT-ntinf-1")
def test_older_install_is_upgraded():
    assert plan("4.2.8", "4.5.2")[0] == "upgrade"


def test_same_version_is_current_not_an_upgrade():
    decision, msg = plan("4.5.2", "4.5.2")
    assert decision == "current" and "nothing to do" in msg


@pytest.mark.nt("NT-inapta-5")
def test_newer_install_is_never_downgraded():
    decision, msg = plan("4.5.5", "4.5.2")
    assert decision == "refuse" and "downgrade is never done" in msg


def test_no_install_is_refused_with_what_to_do():
    decision, msg = plan(None, "4.5.2")
    assert decision == "refuse" and "install the PEC first" in msg


def test_config_and_database_disagreeing_means_an_interrupted_update():
    version, problem = installed_version("4.5.2", "4.3.2")
    assert version is None and "interrupted" in problem
    assert installed_version("4.2.8", "4.2.8") == ("4.2.8", None)
    assert installed_version("4.2.8", None) == ("4.2.8", None)


@pytest.mark.parametrize("flag", ["-password=s3cret", "--password", "-senha=x", "-url=jdbc:x?password=y"])
def test_a_password_flag_is_refused(flag):
    with pytest.raises(PecError, match="must not carry a password"):
        check_flags(["-console", flag])


def test_ordinary_flags_pass():
    assert check_flags(["-console", "-continue"]) == ["-console", "-continue"]


@pytest.mark.parametrize("value", [None, "", "abc", "g" * 64])
def test_checksum_is_required(value):
    with pytest.raises(PecError, match="SHA-256 checksum of the installer is required"):
        check_sha256(value)


def test_installer_checksum_mismatch_and_missing_file(tmp_path):
    jar = tmp_path / "eSUS-AB-PEC-4.5.2-Linux64.jar"
    jar.write_bytes(b"jar bytes")
    good = hashlib.sha256(b"jar bytes").hexdigest()
    assert installer_status(str(jar), good)["matches"] is True
    bad = installer_status(str(jar), "0" * 64)
    assert bad["exists"] and not bad["matches"] and bad["sha256"] == good
    assert installer_status(str(tmp_path / "missing.jar"), good)["exists"] is False


def test_tree_size_skips_the_database_data_directory(tmp_path):
    (tmp_path / "webserver").mkdir()
    (tmp_path / "webserver" / "pec-bundle.jar").write_bytes(b"x" * 100)
    data = tmp_path / "database" / "pg" / "data"
    data.mkdir(parents=True)
    (data / "base").write_bytes(b"y" * 5000)
    assert tree_size(str(tmp_path), exclude_dirs=[str(data)]) == 100


def test_disk_needs_add_up_per_file_system_and_say_what_to_do(tmp_path):
    def fake_statvfs(_path):
        return SimpleNamespace(f_bavail=1000, f_frsize=1024)  # 1000 KiB free

    def fake_stat(_path):
        return SimpleNamespace(st_dev=1)

    needs = [("backup", str(tmp_path / "b"), 600 * 1024), ("installer", str(tmp_path / "s"), 300 * 1024)]
    fs, problems = disk_needs(needs, 0, statvfs=fake_statvfs, stat=fake_stat)
    assert len(fs) == 1 and fs[0]["required_bytes"] == 900 * 1024 and problems == []
    fs, problems = disk_needs(needs, 200 * 1024, statvfs=fake_statvfs, stat=fake_stat)
    assert len(problems) == 1 and "not enough free disk" in problems[0] and "backup" in problems[0]


class FakeRunner(HostRunner):
    """The host as the gates see it: canned command output and a PATH without java (files stay real)."""

    def __init__(self, outputs=None, path=None):
        self.outputs = outputs or {}
        self.path = path or {}
        self.calls = []

    def run(self, argv, timeout=30):
        self.calls.append(list(argv))
        if argv[0] not in self.outputs:
            raise FileNotFoundError(argv[0])
        return 0, self.outputs[argv[0]]

    def which(self, name):
        return self.path.get(name)


def test_locale_names_are_compared_like_glibc():
    assert locale_available("pt_BR.UTF-8", runner=FakeRunner({"locale": "C\nC.utf8\npt_BR.utf8\n"}))
    assert not locale_available("pt_BR.UTF-8", runner=FakeRunner({"locale": "C\nC.utf8\nen_US.utf8\n"}))


def _fake_java(tmp_path, body):
    java = tmp_path / "java"
    java.write_text("#!/bin/sh\n" + body)
    java.chmod(java.stat().st_mode | stat.S_IXUSR)
    return str(java)


def test_find_java_prefers_the_configured_one_then_the_pec_jre(tmp_path):
    java = _fake_java(tmp_path, "exit 0\n")
    assert find_java(java, None, runner=FakeRunner()) == java
    jre = tmp_path / "jre"
    (jre / "bin").mkdir(parents=True)
    os.symlink(java, jre / "bin" / "java")
    assert find_java(None, str(jre), runner=FakeRunner()) == str(jre / "bin" / "java")
    assert find_java(None, None, runner=FakeRunner()) is None


def test_installer_runs_without_stdin_and_reports_its_exit_code(tmp_path):
    java = _fake_java(tmp_path, 'echo "args: $*"; read answer || echo "no prompt answered"; exit 3\n')
    rc, out, cmd = run_installer(java, "/srv/x.jar", ["-console", "-continue"], str(tmp_path), 30)
    assert rc == 3
    assert "args: -jar /srv/x.jar -console -continue" in out and "no prompt answered" in out
    assert cmd[-2:] == ["-console", "-continue"]


def test_hung_installer_times_out_with_a_clear_message(tmp_path):
    java = _fake_java(tmp_path, "echo waiting; sleep 30\n")
    with pytest.raises(PecError, match="did not finish within 1s"):
        run_installer(java, "/srv/x.jar", [], str(tmp_path), 1)


PASSWORD = "pw-Kd83-xz"


def test_installer_output_is_returned_with_its_passwords_masked(tmp_path):
    java = _fake_java(
        tmp_path,
        f'echo "Conectando jdbc:postgresql://localhost:5433/esus?password={PASSWORD}"; '
        f'echo "Senha: {PASSWORD}"; echo "usando {PASSWORD} do arquivo"; echo "ERRO: falha na migração"; exit 1\n',
    )
    rc, out, cmd = run_installer(java, "/srv/x.jar", ["-console"], str(tmp_path), 30, secrets={PASSWORD})
    assert rc == 1 and PASSWORD not in out and PASSWORD not in " ".join(cmd)
    assert "ERRO: falha na migração" in out and "Senha: ********" in out


def test_a_hung_installer_message_has_its_passwords_masked(tmp_path):
    java = _fake_java(tmp_path, f'echo "password={PASSWORD}"; echo "{PASSWORD}"; sleep 30\n')
    with pytest.raises(PecError) as err:
        run_installer(java, "/srv/x.jar", [], str(tmp_path), 1, secrets={PASSWORD})
    assert "did not finish within 1s" in err.value.msg and "password=********" in err.value.msg
    assert PASSWORD not in err.value.msg + " ".join(err.value.details["stdout_lines"])


def _preflight_params(tmp_path, **over):
    p = {
        "target_version": "4.5.2",
        "checks": ["disk", "locale", "installer", "java"],
        "installer": str(tmp_path / "eSUS-AB-PEC-4.5.2-Linux64.jar"),
        "installer_sha256": None,
        "installer_size_bytes": 0,
        "java_bin": None,
        "backup_dir": str(tmp_path / "backups"),
        "backup_size_factor": 1.0,
        "keep_aside_dir": str(tmp_path / "aside"),
        "staging_dir": str(tmp_path / "staging"),
        "margin_bytes": 0,
        "locale": "pt_BR.UTF-8",
        "version_key": "VERSAOBANCODADOS",
    }
    p.update(over)
    return p


def _install(tmp_path, version="4.2.8"):
    return SimpleNamespace(present=True, root=str(tmp_path / "opt"), config=lambda: {"version": version})


def test_preflight_gates_through_one_fake_runner(tmp_path):
    jar = tmp_path / "eSUS-AB-PEC-4.5.2-Linux64.jar"
    jar.write_bytes(b"jar")
    runner = FakeRunner({"locale": "C\nC.utf8\n"})
    p = _preflight_params(tmp_path, installer_sha256=hashlib.sha256(b"jar").hexdigest())
    result = preflight(p, _install(tmp_path), runner=runner, read_database=lambda _i, _k: ("4.2.8", 1000, ["q"]))
    assert result["decision"] == "upgrade" and result["installer"]["matches"]
    assert result["database_size_bytes"] == 1000 and result["executed_queries"] == ["q"]
    assert sorted(b["code"] for b in result["blockers"]) == ["java8", "locale"]  # a 4.x installer needs Java 8
    assert runner.calls == [["locale", "-a"]]
    java = _fake_java(tmp_path, "echo 'openjdk version \"1.8.0_352\"' >&2\n")
    ok = preflight(
        p,
        _install(tmp_path),
        runner=FakeRunner({"locale": "pt_BR.utf8\n"}, path={"java": java}),
        read_database=lambda _i, _k: ("4.2.8", 1000, []),
    )
    assert ok["blockers"] == [] and ok["java"] == java and ok["locale"]["present"]


def test_preflight_refuses_when_config_and_database_disagree(tmp_path):
    result = preflight(
        _preflight_params(tmp_path),
        _install(tmp_path),
        runner=FakeRunner(),
        read_database=lambda _i, _k: ("4.3.2", 1, []),
    )
    assert result["decision"] == "refuse" and result["blockers"][0]["code"] == "inconsistent"


def test_preflight_without_installer_path_is_an_error(tmp_path):
    with pytest.raises(PecError, match="installer is required"):
        preflight(
            _preflight_params(tmp_path, installer=None),
            _install(tmp_path),
            runner=FakeRunner(),
            read_database=lambda _i, _k: ("4.2.8", 1, []),
        )


def test_database_down_is_a_blocker_that_says_the_backup_needs_it(tmp_path):
    def down(_install, _key):
        raise PecError("database localhost:5433/esus is not accepting connections")

    result = preflight(
        _preflight_params(tmp_path, checks=[]), _install(tmp_path), runner=FakeRunner(), read_database=down
    )
    assert result["decision"] == "upgrade"
    assert result["blockers"][0]["code"] == "database" and "needs the database up" in result["blockers"][0]["msg"]


HELP_5X = """Uso: java -jar eSUS-AB-PEC-5.2.28-Linux64.jar [-url= -username= -password=] [-restore=<dump>] [-backup]
 [-console] [-continue] [-help] [-treinamento]"""
HELP_4X = "Uso: java -jar eSUS-AB-PEC-4.5.2-Linux64.jar -console -url=<jdbc> -username=<usuário> -password=<senha>"


def test_continue_is_passed_only_when_the_installers_help_lists_it():
    listed = supported_flags("java", "pec.jar", runner=FakeRunner({"java": HELP_5X}))
    assert {"-console", "-continue", "-backup", "-url"} <= listed and "-jar" not in listed
    assert adapt_flags(["-console", "-continue"], listed) == (["-console", "-continue"], [])
    old = supported_flags("java", "pec.jar", runner=FakeRunner({"java": HELP_4X}))
    assert adapt_flags(["-console", "-continue"], old) == (["-console"], ["-continue"])


def test_an_installer_whose_help_says_nothing_gets_the_configured_flags():
    assert supported_flags("java", "pec.jar", runner=FakeRunner({})) is None
    assert supported_flags("java", "pec.jar", runner=FakeRunner({"java": "erro"})) is None
    assert adapt_flags(["-console", "-continue"], None) == (["-console", "-continue"], [])


@pytest.mark.parametrize(
    ("output", "code"),
    [
        ("ERRO: O PEC e o seu banco de dados não estão na mesma versão", "version_mismatch"),
        ("versões diferentes entre aplicação e banco", "version_mismatch"),
        ("/opt/e-SUS/instalar.sh: line 3: 4242 Killed java -jar", "out_of_memory"),
        ("setlocale: LC_ALL: cannot change locale (pt_BR.UTF-8)", "locale"),
        ("fuso horário inválido: use America/Sao_Paulo", "time_zone"),
    ],
)
def test_known_failure_modes_are_named_with_what_to_do(output, code):
    found = diagnose(output)
    assert [f["code"] for f in found][:1] == [code]
    assert found[0]["hint"]
    assert diagnose("Instalação concluída") == []
