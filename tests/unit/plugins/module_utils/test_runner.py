"""_runner: the one way this collection runs a command, with real tiny commands (sh, true, false, sleep)."""

from __future__ import annotations

import os
import re
import sys
import time

import pytest
from fake_runner import FakeRunner

from ansible_collections.sesdf.esus.plugins.module_utils._runner import (
    DEVNULL,
    PIPE,
    STDOUT,
    Result,
    Runner,
    executable,
    run,
)
from ansible_collections.sesdf.esus.plugins.module_utils.pec_common import PecError

PLUGINS = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", "..", "plugins"))
# Files of plugins/ that may name the subprocess module. Only the runner: every command goes through it.
SUBPROCESS_ALLOWED = {os.path.join("module_utils", "_runner.py")}


def test_a_command_that_succeeds_gives_its_rc_and_text_output():
    result = run(["/bin/sh", "-c", "echo out; echo err >&2"], timeout=10)
    assert result.ok and result.rc == 0
    assert result.stdout == "out\n" and result.stderr == "err\n"
    assert result.argv == ["/bin/sh", "-c", "echo out; echo err >&2"] and not result.timed_out


def test_a_failing_command_is_a_result_not_an_exception_and_why_quotes_its_last_lines():
    result = run(["/bin/sh", "-c", "echo first >&2; echo 'the real cause' >&2; exit 3"], timeout=10)
    assert result.rc == 3 and not result.ok
    assert result.why() == "sh failed (rc=3): first / the real cause"
    assert result.why("the dump").startswith("the dump failed (rc=3)")


def test_false_fails_and_check_true_raises_the_reason():
    assert run(["false"], timeout=10).rc == 1
    with pytest.raises(PecError, match=r"false failed \(rc=1\)"):
        run(["false"], timeout=10, check=True)
    assert run(["true"], timeout=10, check=True).ok


def test_a_command_that_outlives_its_timeout_is_killed_reaped_and_keeps_its_partial_output():
    started = time.monotonic()
    result = run(["/bin/sh", "-c", "echo started; exec sleep 30"], timeout=1)
    assert time.monotonic() - started < 10
    assert result.timed_out and result.rc is None and not result.ok
    assert result.stdout == "started\n"
    assert result.why() == "sh did not finish within 1s and was stopped"


def test_a_missing_program_names_itself_and_what_to_install_without_a_traceback():
    result = run(["zstd-that-is-not-there"], timeout=10)
    assert result.missing and result.rc is None
    assert "zstd-that-is-not-there not found (not installed on this server" in result.why()
    assert "install the package that provides zstd-that-is-not-there" in result.why()
    known = run(["/nonexistent/bin/rsync", "-a"], timeout=10)
    assert (
        known.why().startswith("rsync not found at /nonexistent/bin/rsync") and "apt-get install rsync" in known.why()
    )


def test_a_program_that_is_not_executable_is_a_result_that_says_so(tmp_path):
    script = tmp_path / "tool"
    script.write_text("#!/bin/sh\ntrue\n")
    result = run([str(script)], timeout=10)
    assert result.rc is None and not result.missing and "could not be started" in result.why()


def test_why_never_shows_the_environment():
    secret_env = dict(os.environ, PGPASSWORD="s3cr3t-value")
    result = run(["/bin/sh", "-c", "exit 2"], timeout=10, env=secret_env)
    assert result.rc == 2 and "s3cr3t-value" not in result.why() and "s3cr3t-value" not in repr(result)
    assert run(["/bin/sh", "-c", 'test "$PGPASSWORD" = s3cr3t-value'], timeout=10, env=secret_env).ok


def test_stdin_text_is_written_to_the_command_and_no_stdin_means_no_input():
    assert run(["cat"], timeout=10, stdin="linha 1\nlinha 2\n").stdout == "linha 1\nlinha 2\n"
    assert run(["cat"], timeout=10).stdout == "", "without stdin the command reads an empty input, never ours"


def test_binary_output_stays_bytes_and_stderr_can_follow_stdout():
    result = run(["/bin/sh", "-c", "printf '\\000\\377'"], timeout=10, text=False)
    assert result.stdout == b"\x00\xff"
    merged = run(["/bin/sh", "-c", "echo a; echo b >&2"], timeout=10, stderr=STDOUT)
    assert merged.stdout == "a\nb\n" and merged.stderr == ""


def test_output_can_go_to_a_file_and_input_come_from_one(tmp_path):
    src, dst = tmp_path / "in", tmp_path / "out"
    src.write_bytes(b"abc")
    with open(src, "rb") as fin, open(dst, "wb") as fout:
        assert run(["tr", "a-z", "A-Z"], timeout=10, stdin=fin, stdout=fout, text=False).ok
    assert dst.read_bytes() == b"ABC"


def test_check_mode_skips_a_command_that_changes_state_and_runs_a_read_only_one(tmp_path):
    marker = tmp_path / "touched"
    runner = Runner(check_mode=True)
    skipped = runner.run(["touch", str(marker)], timeout=10, changes=True)
    assert skipped.skipped and skipped.rc is None and not marker.exists()
    assert skipped.why() == "touch was not run (check mode)"
    assert not runner.run(["touch", str(marker)], timeout=10, changes=True, check=True).ok, "check=True does not raise"
    assert runner.run(["/bin/sh", "-c", "echo read"], timeout=10).stdout == "read\n"
    with pytest.raises(PecError, match="not run in check mode"):
        runner.spawn(["touch", str(marker)], changes=True)
    assert Runner().run(["touch", str(marker)], timeout=10, changes=True).ok and marker.exists()


def test_a_pipeline_streams_from_one_stage_to_the_next_and_both_are_reaped():
    runner = Runner(pdeathsig=True)
    first = runner.spawn(["/bin/sh", "-c", "printf 'b\\na\\n'"], stdout=PIPE, stdin=DEVNULL)
    second = runner.run(["sort"], timeout=10, stdin=first.stdout)
    first.stdout.close()
    assert runner.stop(first, grace=10) == 0
    assert second.stdout == "a\nb\n"
    assert first.returncode == 0, "reaped: no zombie left"


def test_stop_kills_a_stage_that_does_not_end_and_reaps_it():
    runner = Runner(pdeathsig=True)
    proc = runner.spawn(["sleep", "30"])
    started = time.monotonic()
    assert runner.stop(proc, grace=0.2) == -9
    assert time.monotonic() - started < 5 and proc.returncode == -9


def test_wait_gives_none_for_a_stage_still_running_and_kills_nothing():
    proc = Runner().spawn(["sleep", "30"])
    assert Runner.wait(proc, 0.1) is None and proc.poll() is None
    assert Runner.stop(proc) == -9


def test_spawning_a_missing_program_is_a_clear_error():
    with pytest.raises(PecError, match=r"^pg_dump not found at /nonexistent/pg_dump .*PostgreSQL client tools"):
        Runner().spawn(["/nonexistent/pg_dump", "-Fc"])


def test_a_child_of_a_pdeathsig_runner_dies_with_its_parent(tmp_path):
    pidfile = tmp_path / "pid"
    # a parent python starts sleep through a pdeathsig runner, then the parent is killed
    code = (
        "import sys, time\n"
        "sys.path[:0] = " + repr([p for p in sys.path if p]) + "\n"
        "from ansible_collections.sesdf.esus.plugins.module_utils._runner import Runner\n"
        f"proc = Runner(pdeathsig=True).spawn(['sleep', '60'])\nopen({str(pidfile)!r}, 'w').write(str(proc.pid))\n"
        "time.sleep(60)\n"
    )
    parent = Runner().spawn([sys.executable, "-c", code])
    deadline = time.monotonic() + 20
    while not (pidfile.exists() and pidfile.read_text()) and time.monotonic() < deadline:
        time.sleep(0.05)
    child = int(pidfile.read_text())
    Runner.stop(parent)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{child}/stat") as handle:
                if handle.read().split(") ", 1)[1].startswith("Z"):
                    break  # dead, waiting for init to reap it
        except FileNotFoundError:
            break
        time.sleep(0.05)
    else:
        os.kill(child, 9)
        pytest.fail("the child outlived its parent")


def test_executable_is_true_only_for_an_executable_regular_file(tmp_path):
    script = tmp_path / "x"
    script.write_text("#!/bin/sh\n")
    assert not executable(str(script))
    script.chmod(0o755)
    assert executable(str(script)) and not executable(str(tmp_path)) and not executable(None)


def test_the_fake_runner_answers_by_program_records_calls_and_keeps_check_mode():
    fake = FakeRunner({"borg": (0, "{}", ""), ("systemctl", "stop"): (5, "", "denied")}, timed_out={"iperf3"})
    assert fake.run(["/usr/bin/borg", "info"], timeout=5).stdout == "{}"
    assert fake.run(["systemctl", "stop", "x"], timeout=5).why() == "systemctl failed (rc=5): denied"
    assert fake.run(["iperf3"], timeout=5).timed_out
    assert fake.run(["age"], timeout=5).missing
    assert fake.argvs[0] == ["/usr/bin/borg", "info"]
    checked = FakeRunner({"touch": (0, "", "")}, check_mode=True)
    assert checked.run(["touch", "f"], timeout=5, changes=True).skipped and checked.calls == []
    assert isinstance(checked.run(["touch", "f"], timeout=5), Result) and len(checked.calls) == 1


def test_no_subprocess_outside_the_runner():
    offenders = []
    for root, _dirs, files in os.walk(PLUGINS):
        for name in files:
            if not name.endswith(".py"):
                continue
            path = os.path.join(root, name)
            rel = os.path.relpath(path, PLUGINS)
            with open(path, encoding="utf-8") as handle:
                text = handle.read()
            if rel not in SUBPROCESS_ALLOWED and re.search(r"\bsubprocess\b|\bPopen\b|os\.system|os\.popen", text):
                offenders.append(rel)
    assert offenders == [], f"run commands through module_utils/_runner.py, not directly: {offenders}"
