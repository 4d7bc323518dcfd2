"""The CLI as a newcomer meets it: usage errors before anything starts, helpful --help,
a report titled after what was surveyed, and a configuration dump without fake values."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from mister_smith.agents import Message, ModelRequest
from mister_smith.cli import main
from mister_smith.cli._survey import render_report, writer_turn
from mister_smith.config import AgentConfig, RuntimeSettings, dump_config, loads_config


def help_of(*argv: str, capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as exited:
        main([*argv, "--help"])
    assert exited.value.code == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("command", ["demo", "run", "mcp"])
@pytest.mark.parametrize(
    ("workspace", "reason"),
    [("/nope/not/here", "does not exist"), ("/etc/hostname", "is not a directory")],
)
def test_a_bad_workspace_is_a_usage_error_before_the_runtime_starts(
    command: str, workspace: str, reason: str, capsys: pytest.CaptureFixture[str]
) -> None:
    if not Path("/etc/hostname").is_file() and reason == "is not a directory":
        pytest.skip("no /etc/hostname file to use as a non-directory")
    argv = {
        "demo": ["demo", "--plain"],
        "run": ["run", "survey the source tree and write a report", "--plain"],
        "mcp": ["mcp", "serve"],
    }[command]
    out = io.StringIO()
    with pytest.raises(SystemExit) as exited:
        main([*argv, "--workspace", workspace], out=out)
    assert exited.value.code == 2
    assert out.getvalue() == ""  # no heading, no supervision tree: nothing started
    error = capsys.readouterr().err
    assert f"argument --workspace: {workspace!r} {reason}" in error


@pytest.mark.parametrize("timeout", ["-1", "0", "nan", "inf", "soon"])
def test_a_bad_timeout_is_a_usage_error(timeout: str) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["run", "survey the source tree", "--timeout", timeout], out=io.StringIO())
    assert exited.value.code == 2


def test_run_help_says_what_the_scripted_model_can_do(capsys: pytest.CaptureFixture[str]) -> None:
    text = help_of("run", capsys=capsys)
    assert "the team can do one thing: survey a source tree" in text
    assert "--model openai or --model anthropic" in text
    assert 'mister-smith run "survey the source tree and write a report"' in text


@pytest.mark.parametrize(
    ("argv", "example"),
    [
        (("demo",), "mister-smith demo --no-faults --plain"),
        (("config",), "mister-smith config --config production.toml"),
        (("render",), "mister-smith render dashboard --output dashboard.json"),
    ],
)
def test_subcommand_help_has_examples(
    argv: tuple[str, ...], example: str, capsys: pytest.CaptureFixture[str]
) -> None:
    text = help_of(*argv, capsys=capsys)
    assert "examples:" in text
    assert example in text


def test_the_report_is_titled_after_the_surveyed_workspace(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "a.py").write_text("def hello() -> None:\n    pass\n")
    (tmp_path / "top.py").write_text("X = 1\n")
    out = io.StringIO()
    code = main(["demo", "--workspace", str(tmp_path), "--no-faults", "--plain"], out=out)
    text = out.getvalue()
    assert code == 0, text[-2000:]
    assert f"Survey of {tmp_path.resolve()}\n" in text
    assert "mister_smith package" not in text  # neither the task nor the title


def test_the_package_survey_keeps_its_title() -> None:
    assert render_report({}, {}).startswith("Survey of the mister_smith package\n")


def test_the_writer_titles_the_report_with_the_subject_it_is_given() -> None:
    data = '{"subject": "/srv/app", "reports": {}, "failed": {}}'
    request = ModelRequest(messages=(Message.user(f"Write it. DATA: {data}"),))
    assert writer_turn(request).text.startswith("Survey of /srv/app\n")


def test_config_does_not_dump_none_as_a_string(capsys: pytest.CaptureFixture[str]) -> None:
    out = io.StringIO()
    assert main(["config"], out=out) == 0
    text = out.getvalue()
    assert '"none"' not in text
    assert "# worker_threads = (not set)" in text
    assert loads_config(text) == AgentConfig()


def test_a_set_value_replaces_its_comment() -> None:
    config = AgentConfig(runtime=RuntimeSettings(worker_threads=4))
    text = dump_config(config)
    assert "worker_threads = 4\n" in text
    assert "# worker_threads" not in text
    assert loads_config(text) == config
