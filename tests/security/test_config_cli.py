"""Issue 12, item 7: ``mister-smith run|demo|config`` with a bad configuration.

The review's case: a bad value made the CLI print a Python traceback. Now every
problem is one ``mister-smith: config error: <key path>: <reason>`` line on stderr and
the exit code is 2, for values from the file or the environment and for a file that is
missing or cannot be read; nothing is started.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mister_smith.cli import main

HUGE = "9" * 400
BAD = f"""
[runtime]
blocking_threads = {HUGE}
thread_stack_size = {1 << 40}

[supervision]
restart_window = {HUGE}
backoff_factor = nan

[events]
history_size = "many"
"""
EXPECTED = [
    "runtime.blocking_threads: integer out of range",
    "runtime.thread_stack_size: must be an integer in [32768, 1073741824]",
    "supervision.restart_window: a duration must be finite",
    "supervision.backoff_factor: must be a finite number",
    "events.history_size: expected an integer",
]
PREFIX = "mister-smith: config error: "

COMMANDS = [
    ["config"],
    ["demo", "--plain", "--no-color"],
    ["run", "survey the source tree", "--plain", "--no-color"],
]


def error_lines(stderr: str) -> list[str]:
    assert "Traceback" not in stderr
    lines = stderr.splitlines()
    assert all(line.startswith(PREFIX) for line in lines), lines
    return [line.removeprefix(PREFIX) for line in lines]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda argv: argv[0])
def test_a_bad_file_prints_one_line_per_problem_and_exits_2(
    command: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(BAD)
    assert main([*command, "--config", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""  # nothing started, nothing printed
    lines = error_lines(captured.err)
    assert len(lines) == len(EXPECTED)
    for line, start in zip(lines, EXPECTED, strict=True):
        assert line.startswith(start), line
        assert len(line) < 200


def test_bad_environment_values_name_their_variables(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MISTER_SMITH__ACTORS__MAILBOX_CAPACITY", "1" * 5000)
    monkeypatch.setenv("MISTER_SMITH__RUNTIME__THREAD_STACK_SIZE", str(1 << 64))
    assert main(["run", "survey the source tree", "--plain"]) == 2
    lines = sorted(error_lines(capsys.readouterr().err))
    assert len(lines) == 2
    assert lines[0].startswith(
        "MISTER_SMITH__ACTORS__MAILBOX_CAPACITY (actors.mailbox_capacity): integer out of range"
    )
    assert lines[1].startswith("MISTER_SMITH__RUNTIME__THREAD_STACK_SIZE (runtime.thread_stack_")


@pytest.mark.parametrize("kind", ["missing", "directory", "fifo", "not-utf8", "deep"])
def test_a_missing_or_unreadable_file_is_one_line_and_exit_2(
    kind: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "config.toml"
    if kind == "directory":
        path.mkdir()
    elif kind == "fifo":
        if not hasattr(os, "mkfifo"):
            pytest.skip("no FIFOs here")
        os.mkfifo(path)  # reading it would block for ever
    elif kind == "not-utf8":
        path.write_bytes(b"\xff\xfe[runtime]\n")
    elif kind == "deep":
        path.write_text("a = " + "[" * 100_000 + "]" * 100_000 + "\n")
    assert main(["demo", "--plain", "--config", str(path)]) == 2
    lines = error_lines(capsys.readouterr().err)
    assert len(lines) == 1
    assert lines[0].startswith(f"{path}: ")


def test_timeout_must_be_finite_and_positive(capsys: pytest.CaptureFixture[str]) -> None:
    for text in ("nan", "inf", "-5", "soon"):
        with pytest.raises(SystemExit) as caught:
            main(["demo", "--plain", "--timeout", text])
        assert caught.value.code == 2
        assert "--timeout" in capsys.readouterr().err


def test_in_a_subprocess_no_traceback_and_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(BAD)
    environment = {**os.environ, "MISTER_SMITH__EVENTS__SUBSCRIBER_BUFFER": "-inf"}
    done = subprocess.run(
        [sys.executable, "-m", "mister_smith.cli", "run", "survey", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        env=environment,
        check=False,
    )
    assert done.returncode == 2
    assert done.stdout == ""
    lines = error_lines(done.stderr)
    assert len(lines) == len(EXPECTED) + 1
    assert any(line.startswith("MISTER_SMITH__EVENTS__SUBSCRIBER_BUFFER") for line in lines)
