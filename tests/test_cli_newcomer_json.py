"""``--json`` where scripts need it: the run summary and the configuration."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from mister_smith.cli import main
from mister_smith.config import AgentConfig, loads_config
from mister_smith.config._converter import config_converter


def workspace(root: Path) -> Path:
    (root / "pkg").mkdir()
    (root / "pkg" / "a.py").write_text("def hello() -> None:\n    pass\n")
    (root / "top.py").write_text("X = 1\n")
    return root


def test_demo_json_is_the_only_thing_on_stdout(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = io.StringIO()
    argv = ["demo", "--workspace", str(workspace(tmp_path)), "--no-faults", "--plain", "--json"]
    code = main(argv, out=out)
    human = capsys.readouterr().err
    assert code == 0, human[-2000:]
    summary = json.loads(out.getvalue())  # one JSON object, nothing else
    assert out.getvalue().count("\n") == 1
    assert summary["status"] == "completed"
    assert summary["exit_code"] == 0
    assert summary["team"] == "survey"
    assert summary["result"].startswith(f"Survey of {tmp_path.resolve()}\n")
    assert summary["error"] is None
    assert summary["restarts"] == 0
    assert summary["failures"] == []
    assert summary["tool_calls"]["read_file"]["succeeded"] == 2
    messages = summary["messages"]
    assert messages["accepted"] == messages["handled"] + messages["dead_lettered"]
    assert messages["invariant_holds"] is True
    # the readable progress and summary went to standard error
    assert "== summary" in human
    assert "messages accepted = handled + dead-lettered" in human


def test_json_is_refused_with_nodes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["demo", "--nodes", "2", "--json"], out=io.StringIO())
    assert exited.value.code == 2
    assert "--json is not available with --nodes" in capsys.readouterr().err


def test_config_json_has_null_for_unset_settings(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text("[supervision]\nmax_restart_attempts = 7\n")
    out = io.StringIO()
    assert main(["config", "--config", str(path), "--json"], out=out) == 0
    data = json.loads(out.getvalue())
    assert data["runtime"]["worker_threads"] is None
    assert data["supervision"]["max_restart_attempts"] == 7
    expected = loads_config(path.read_text())
    assert data == json.loads(json.dumps(config_converter.unstructure(expected)))
    assert expected != AgentConfig()
