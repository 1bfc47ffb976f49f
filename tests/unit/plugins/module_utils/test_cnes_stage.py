"""cnes_stage: the weekly CNES staging job (newest valid file of the distribution directory, staged once)."""

from __future__ import annotations

import json
import os

from test_cnes import CNES, cnes_xml

from ansible_collections.sesdf.esus.plugins.module_utils import cnes_stage


def config(tmp_path, **overrides):
    cfg = {
        "source": str(tmp_path / "ncais"),
        "patterns": ["*.xml"],
        "cnes": CNES,
        "staging_dir": str(tmp_path / "semanal"),
        "status_file": str(tmp_path / "status.json"),
    }
    cfg.update(overrides)
    path = tmp_path / "cnes-stage.json"
    path.write_text(json.dumps(cfg))
    return str(path)


def publish(tmp_path, name, data, mtime):
    (tmp_path / "ncais").mkdir(exist_ok=True)
    path = tmp_path / "ncais" / name
    path.write_bytes(data)
    os.utime(path, (mtime, mtime))


def test_newest_valid_file_is_staged_and_reported(tmp_path):
    publish(tmp_path, "old.xml", cnes_xml(), 1_000)
    publish(tmp_path, "new.xml", cnes_xml(), 2_000)
    assert cnes_stage.cli_main(["--config", config(tmp_path)]) == 0
    status = json.loads((tmp_path / "status.json").read_text())
    assert status["result"] == "ok" and status["staged"].endswith("semanal/new.xml")
    assert (tmp_path / "semanal" / "new.xml").read_bytes() == cnes_xml()


def test_another_units_file_is_not_staged(tmp_path):
    publish(tmp_path, "x.xml", cnes_xml(cnes="7777777"), 1_000)
    assert cnes_stage.cli_main(["--config", config(tmp_path)]) == 1
    assert not (tmp_path / "semanal").exists() or not os.listdir(tmp_path / "semanal")
    assert "0010001" in json.loads((tmp_path / "status.json").read_text())["message"]


def test_missing_distribution_directory_says_to_check_the_mount(tmp_path):
    assert cnes_stage.cli_main(["--config", config(tmp_path)]) == 1
    assert "montada" in json.loads((tmp_path / "status.json").read_text())["message"]


def test_unreadable_config_is_exit_2(tmp_path):
    assert cnes_stage.cli_main(["--config", str(tmp_path / "none.json")]) == 2
