"""_job: the contract of the server jobs - config dataclass validated on load, one log, one exit-code vocabulary."""

from __future__ import annotations

import dataclasses
import json
import os

import pytest

from ansible_collections.sesdf.esus.plugins.module_utils import _job
from ansible_collections.sesdf.esus.plugins.module_utils.pec_common import PecError


@dataclasses.dataclass
class DemoConfig(_job.JobConfig):
    dest_dir: str
    keep: int = 7
    ratio: float = 0.5
    enabled: bool = True
    hours: list[int] | None = None
    extra: dict = dataclasses.field(default_factory=dict)


def write(tmp_path, data):
    path = tmp_path / "job.json"
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return str(path)


def test_config_missing_or_not_json_is_a_clear_error(tmp_path):
    with pytest.raises(_job.ConfigError) as err:
        _job.read_config(str(tmp_path / "none.json"))
    assert err.value.path.endswith("none.json") and "No such file" in err.value.reason.strerror
    with pytest.raises(_job.ConfigError, match="not a JSON object"):
        _job.read_config(write(tmp_path, "[1]"))
    assert _job.read_config(write(tmp_path, {"dest_dir": "/b"})) == {"dest_dir": "/b"}


def test_config_defaults_live_in_the_dataclass(tmp_path):
    config = DemoConfig.load(write(tmp_path, {"dest_dir": "/b", "hours": [0, 7], "ratio": 1}))
    assert config.as_dict() == {"dest_dir": "/b", "keep": 7, "ratio": 1, "enabled": True, "hours": [0, 7], "extra": {}}


@pytest.mark.parametrize(
    "data, problem",
    [
        ({}, "missing key 'dest_dir'"),
        ({"dest_dir": "/b", "kep": 3}, "unknown key 'kep'"),
        ({"dest_dir": "/b", "keep": "7"}, "keep: expected an integer, got str"),
        ({"dest_dir": "/b", "keep": True}, "keep: expected an integer, got bool"),
        ({"dest_dir": "/b", "enabled": "yes"}, "enabled: expected true or false, got str"),
        ({"dest_dir": "/b", "hours": [0, "7"]}, "hours: item 1: expected an integer, got str"),
        ({"dest_dir": "/b", "hours": 7}, "hours: expected a list, got int"),
        ({"dest_dir": None}, "dest_dir: expected a string, got NoneType"),
        ({"dest_dir": "/b", "extra": []}, "extra: expected an object, got list"),
    ],
)
def test_a_config_that_does_not_fit_its_dataclass_is_refused_naming_the_field(tmp_path, data, problem):
    with pytest.raises(_job.ConfigError) as err:
        DemoConfig.load(write(tmp_path, data))
    assert problem in str(err.value)


def test_log_is_plain_on_a_terminal_and_carries_the_priority_for_the_journal(capsys, monkeypatch):
    _job.JobLog("sesdf-esus-test", journal=False)("backup ok")
    _job.JobLog("sesdf-esus-test", journal=False, timestamps=True)("lote 1 created")
    _job.JobLog("sesdf-esus-test", journal=True)("BACKUP FAILED: disk full\nsecond line", "err")
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == "backup ok"
    assert lines[1].endswith(" lote 1 created") and lines[1][:4].isdigit()
    assert lines[2:] == ["<3>BACKUP FAILED: disk full", "<3>second line"]
    monkeypatch.setenv("JOURNAL_STREAM", "1:2")  # not this process's stderr: plain lines
    assert _job.JobLog("sesdf-esus-test").journal is False


def test_status_file_is_written_whole_and_a_failure_does_not_fail_the_job(tmp_path):
    path = tmp_path / "facts" / "status.json"
    _job.write_status(str(path), {"ok": True}, create_dir=True)
    assert json.loads(path.read_text()) == {"ok": True} and oct(os.stat(path).st_mode)[-3:] == "644"
    assert _job.write_status_quiet(str(tmp_path / "absent" / "s.json"), {}) is False


def run_job(tmp_path, body, data=None, argv=()):
    path = write(tmp_path, data if data is not None else {"dest_dir": "/b"})
    return _job.job_main("sesdf-esus-demo", "demo", DemoConfig, body, ["--config", path, *argv], role="backup_schedule")


def test_job_main_passes_the_validated_config_and_returns_the_bodys_code(tmp_path):
    seen = []

    def body(config, args, log):
        seen.append(config)
        return _job.EXIT_ATTENTION

    assert run_job(tmp_path, body) == 3 and seen[0].dest_dir == "/b" and seen[0].keep == 7


def test_job_main_bad_config_is_exit_2_naming_the_role_to_run_again(tmp_path, capsys):
    assert run_job(tmp_path, lambda *a: 0, data={"dest_dir": 1}) == _job.EXIT_CONFIG == 2
    err = capsys.readouterr().err
    assert "dest_dir: expected a string" in err and "rode de novo o papel sesdf.esus.backup_schedule" in err


def test_job_main_turns_a_pec_error_into_exit_1_with_its_message(tmp_path, capsys):
    def body(config, args, log):
        raise PecError("banco parado: inicie e-SUS-AB-PostgreSQL.service")

    assert run_job(tmp_path, body) == _job.EXIT_FAILED == 1
    assert "ERRO: banco parado" in capsys.readouterr().err


def test_the_exit_codes_are_one_vocabulary():
    assert sorted(_job.EXIT_MEANING) == [0, 1, 2, 3]
    assert (_job.EXIT_OK, _job.EXIT_FAILED, _job.EXIT_CONFIG, _job.EXIT_ATTENTION) == (0, 1, 2, 3)
