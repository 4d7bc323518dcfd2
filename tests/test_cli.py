"""The ``mister-smith`` command: the demo end to end, run, config, exit codes, Ctrl-C."""

from __future__ import annotations

import io
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio
from fake_model_servers import FakeModelServer, openai_reply, openai_responder, serve_fake

from mister_smith.agents import AgentProgress, ModelRequest, ModelResponse
from mister_smith.cli import main
from mister_smith.cli._demo import PACKAGE_ROOT, DemoOptions, run_demo
from mister_smith.cli._display import Display, fit
from mister_smith.cli._survey import coordinator_turn, public_names, surveyor_turn, writer_turn
from mister_smith.config import AgentConfig, loads_config
from mister_smith.events import ToolCalled, ToolOutcome
from mister_smith.supervision import TreeSnapshot
from mister_smith.types import TaskId

INVARIANT = re.compile(
    r"messages accepted = handled \+ dead-lettered: (\d+) = (\d+) \+ (\d+)  (OK|FAILED)"
)


def invariant(output: str) -> tuple[int, int, int, str]:
    match = INVARIANT.search(output)
    assert match is not None, output[-2000:]
    accepted, handled, dead = (int(match.group(i)) for i in (1, 2, 3))
    return accepted, handled, dead, match.group(4)


def report_rows(output: str) -> dict[str, tuple[int, int, int]]:
    rows = {}
    for line in output.splitlines():
        match = re.match(r"\s+(\(top level\)|[a-z_]+)\s+(\d+)\s+(\d+)\s+(\d+)(\s|$)", line)
        if match:
            rows[match.group(1)] = (int(match.group(2)), int(match.group(3)), int(match.group(4)))
    return rows


def python_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*.py") if "__pycache__" not in p.parts]


def tree_figures(root: Path) -> tuple[int, int]:
    files = python_files(root)
    return len(files), sum(len(p.read_text().splitlines()) for p in files)


def test_demo_end_to_end() -> None:
    before = tree_figures(PACKAGE_ROOT), tree_figures(PACKAGE_ROOT / "agents")
    out = io.StringIO()
    started = time.monotonic()
    code = main(["demo", "--no-color", "--plain"], out=out)
    elapsed = time.monotonic() - started
    output = out.getvalue()
    assert code == 0, output[-3000:]
    assert elapsed < 30
    accepted, handled, dead, verdict = invariant(output)
    assert verdict == "OK"
    assert accepted == handled + dead
    assert dead >= 1  # the task the crashed surveyor was working on
    # the injected faults happened and were recovered from
    assert "InjectedFault: injected crash" in output
    assert re.search(r"restarts\s+1\b", output)
    assert re.search(r"read_file\s+\d+ calls\s+ok \d+\s+failed 3\s+timeouts 1", output)
    assert "ran past its 0.5 s deadline" in output
    assert "spawned survey.coordinator (coordinator)" in output
    assert "folded" in output
    # the report is real: its figures match the files on disk
    rows = report_rows(output)
    packages = sorted(
        p.name for p in PACKAGE_ROOT.iterdir() if p.is_dir() and not p.name.startswith("_")
    )
    assert sorted(set(rows) - {"total", "(top level)"}) == packages
    after = tree_figures(PACKAGE_ROOT), tree_figures(PACKAGE_ROOT / "agents")
    assert (rows["total"][:2], rows["agents"][:2]) in (before, after)  # source edited meanwhile?


async def test_demo_without_faults_is_clean() -> None:
    out = io.StringIO()
    code = await run_demo(DemoOptions(faults=False, latency=0.0), out)
    output = out.getvalue()
    assert code == 0, output[-3000:]
    assert re.search(r"restarts\s+0\b", output)
    assert "dead letters 0" in output
    _, _, dead, verdict = invariant(output)
    assert (dead, verdict) == (0, "OK")


def test_demo_ctrl_c_shuts_down_gracefully() -> None:
    with subprocess.Popen(
        [sys.executable, "-m", "mister_smith.cli", "demo", "--no-color"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    ) as process:
        assert process.stdout is not None
        for line in process.stdout:  # wait until the team is at work
            if "spawned survey.writer" in line:
                break
        time.sleep(0.3)
        process.send_signal(signal.SIGINT)
        rest = process.stdout.read()
        code = process.wait(timeout=30)
    assert code == 130, rest
    assert "interrupted" in rest
    _, _, _, verdict = invariant(rest)
    assert verdict == "OK"


def test_config_prints_toml_that_loads_back(tmp_path: Path) -> None:
    out = io.StringIO()
    assert main(["config"], out=out) == 0
    assert loads_config(out.getvalue()) == AgentConfig()
    path = tmp_path / "c.toml"
    path.write_text("[actors]\nmailbox_capacity = 7\n")
    out = io.StringIO()
    assert main(["config", "--config", str(path)], out=out) == 0
    assert loads_config(out.getvalue()).actors.mailbox_capacity == 7
    path.write_text("[actors]\nmailbox_capacity = -1\n")
    assert main(["config", "--config", str(path)]) == 2


def test_usage_errors() -> None:
    with pytest.raises(SystemExit) as caught:
        main(["frobnicate"])
    assert caught.value.code == 2
    assert main(["run", "Write a poem"]) == 2  # the embedded model only surveys


def test_missing_api_key_is_a_usage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    out = io.StringIO()
    assert main(["run", "Write a poem", "--model", "openai", "--no-color"], out=out) == 2
    assert "OPENAI_API_KEY" in out.getvalue()


def test_run_surveys_a_user_workspace(tmp_path: Path) -> None:
    (tmp_path / "alpha").mkdir()
    (tmp_path / "alpha" / "one.py").write_text("def f():\n    pass\n\nX = 1\n_hidden = 2\n")
    (tmp_path / "beta" / "deep").mkdir(parents=True)
    (tmp_path / "beta" / "__init__.py").write_text('__all__ = ["A", "B"]\nA = B = 1\n')
    (tmp_path / "beta" / "deep" / "two.py").write_text("class C:\n    pass\n")
    (tmp_path / "notes.txt").write_text("not python\n")
    out = io.StringIO()
    code = main(
        [
            "run",
            "Survey the source tree and write a report",
            "--workspace",
            str(tmp_path),
            "--no-color",
        ],
        out=out,
    )
    output = out.getvalue()
    assert code == 0, output
    rows = report_rows(output)
    assert rows["alpha"] == (1, 5, 2)
    assert rows["beta"] == (2, 4, 2)
    assert rows["total"] == (3, 9, 4)


@pytest.fixture
def fake_openai(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeModelServer]:
    """A fake OpenAI endpoint served from another thread (main() runs its own trio.run)."""
    app = FakeModelServer()
    urls: queue.Queue[str] = queue.Queue()
    stop: list[trio.Event] = []
    token: list[trio.lowlevel.TrioToken] = []

    async def serve() -> None:
        stop.append(trio.Event())
        token.append(trio.lowlevel.current_trio_token())
        async with serve_fake(app) as url:
            urls.put(url)
            await stop[0].wait()

    thread = threading.Thread(target=trio.run, args=(serve,), daemon=True)
    thread.start()
    url = urls.get(timeout=10)
    monkeypatch.setenv("OPENAI_BASE_URL", url)
    try:
        yield app
    finally:
        trio.from_thread.run_sync(stop[0].set, trio_token=token[0])
        thread.join(timeout=10)


def survey_brain(request: ModelRequest) -> ModelResponse:
    """What the fake endpoint thinks: the survey's own reasoning, picked by the prompt."""
    prompt = request.system_prompt
    if prompt.startswith("You coordinate"):
        return coordinator_turn(request)
    if prompt.startswith("You survey one package"):
        return surveyor_turn(request)
    return writer_turn(request)


def test_demo_on_an_openai_endpoint(
    fake_openai: FakeModelServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """--model openai: the same team, every turn over HTTP (tool calls on the wire)."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-fake-for-tests")
    fake_openai.responder = openai_responder(survey_brain)
    out = io.StringIO()
    workspace = tmp_path / "mister_smith"
    shutil.copytree(PACKAGE_ROOT, workspace, ignore=shutil.ignore_patterns("__pycache__"))
    code = main(["demo", "--model", "openai", "--no-color", "--workspace", str(workspace)], out=out)
    output = out.getvalue()
    assert code == 0, output[-3000:]
    assert "model          openai" in output
    rows = report_rows(output)
    assert rows["total"][:2] == tree_figures(workspace)
    assert "InjectedFault" in output
    _, _, _, verdict = invariant(output)
    assert verdict == "OK"
    assert len(fake_openai.requests) > 20
    assert all(r.path == "/chat/completions" for r in fake_openai.requests)


def test_run_on_a_real_model_endpoint(
    fake_openai: FakeModelServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-fake-for-tests")
    fake_openai.push(openai_reply("A short report: all good."))
    out = io.StringIO()
    code = main(
        [
            "run",
            "Write a short report about this folder",
            "--model",
            "openai",
            "--workspace",
            str(tmp_path),
            "--no-color",
        ],
        out=out,
    )
    output = out.getvalue()
    assert code == 0, output
    assert "A short report: all good." in output
    [request] = fake_openai.requests
    assert request.headers["authorization"] == "Bearer sk-fake-for-tests"
    tools = sorted(t["function"]["name"] for t in request.body["tools"])
    assert tools == ["list_directory", "read_file"]
    assert "sk-fake-for-tests" not in output


# --- pieces -------------------------------------------------------------------------


def test_public_names() -> None:
    assert public_names("def f(): pass\nclass _P: pass\nX: int = 1\n") == (["X", "f"], False)
    assert public_names('__all__ = ("b", "a")\ndef c(): pass\n') == (["a", "b"], True)
    assert public_names("def (:\n") == ([], False)


def test_fit_keeps_escapes_and_cuts_visible_text() -> None:
    assert fit("abcdef", 3) == "abc"
    assert fit("abc", 10) == "abc"
    cut = fit("\x1b[32mhello\x1b[0m world", 7)
    assert re.sub(r"\x1b\[[0-9;]*m", "", cut) == "hello w"


def test_live_display_redraws_in_place() -> None:
    out = io.StringIO()
    tree = TreeSnapshot("root", "supervisor", "running")
    display = Display(out, color=True, live=True, tree=lambda: tree, started=0.0)
    display.event(
        AgentProgress(
            agent="a",
            role="r",
            task_id=TaskId.new(),
            turn=1,
            max_turns=4,
            tool_calls=2,
            progress=0.5,
            timestamp=1.0,
        )
    )
    display.event(
        ToolCalled(tool="t", caller="a", outcome=ToolOutcome.TIMEOUT, error="late", timestamp=2.0)
    )
    display.finish()
    text = out.getvalue()
    assert "F\x1b[J" in text  # cursor up and clear: redrawn in place
    assert "tool timeout" in text
    assert "50%" in text
    plain = io.StringIO()
    display = Display(plain, color=False, live=False, tree=lambda: tree, started=0.0)
    display.event(ToolCalled(tool="t", caller="a", outcome=ToolOutcome.OK, timestamp=2.0))
    display.finish()
    assert "\x1b" not in plain.getvalue()
    assert plain.getvalue().startswith("supervision tree")
