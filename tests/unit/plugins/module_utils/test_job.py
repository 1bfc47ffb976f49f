"""_job: the config of a server-side job, its log lines and its status file."""

from __future__ import annotations

import json
import os

import pytest

from ansible_collections.sesdf.esus.plugins.module_utils import _job


def test_config_missing_or_not_json_is_a_clear_error(tmp_path):
    with pytest.raises(_job.ConfigError) as err:
        _job.read_config(str(tmp_path / "none.json"))
    assert err.value.path.endswith("none.json") and "No such file" in err.value.reason.strerror
    bad = tmp_path / "bad.json"
    bad.write_text("[1]")
    with pytest.raises(_job.ConfigError, match="not a JSON object"):
        _job.read_config(str(bad))
    good = tmp_path / "good.json"
    good.write_text('{"dest_dir": "/b"}')
    assert _job.read_config(str(good)) == {"dest_dir": "/b"}


def test_log_goes_to_stderr_with_or_without_a_time_stamp(capsys):
    _job.JobLog("sesdf-esus-test", journal=False)("backup ok")
    _job.JobLog("sesdf-esus-test", journal=False, timestamps=True)("lote 1 created")
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == "backup ok"
    assert lines[1].endswith(" lote 1 created") and lines[1][:4].isdigit()


def test_status_file_is_written_whole_and_a_failure_does_not_fail_the_job(tmp_path):
    path = tmp_path / "facts" / "status.json"
    _job.write_status(str(path), {"ok": True}, create_dir=True)
    assert json.loads(path.read_text()) == {"ok": True} and oct(os.stat(path).st_mode)[-3:] == "644"
    assert _job.write_status_quiet(str(tmp_path / "absent" / "s.json"), {}) is False
