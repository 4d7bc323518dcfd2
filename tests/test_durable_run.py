"""``mister-smith run --durable`` records the task until it ends; ``run --resume`` takes
up the tasks whose process ended first."""

from __future__ import annotations

import io
import time
from pathlib import Path

import trio

from mister_smith.cli import main
from mister_smith.cli._run import RUN_PREFIX, UnfinishedRun
from mister_smith.config import load_config
from mister_smith.persistence import open_sqlite_store

TASK = "Survey the source tree and write a report"


def setup(tmp_path: Path) -> tuple[Path, Path]:
    workspace = tmp_path / "ws"
    (workspace / "alpha").mkdir(parents=True)
    (workspace / "alpha" / "one.py").write_text("def f():\n    pass\n")
    config = tmp_path / "config.toml"
    config.write_text(f'[persistence]\npath = "{tmp_path / "store.db"}"\n')
    return workspace, config


async def recorded(config: Path) -> list[str]:
    async with open_sqlite_store(load_config(config).persistence) as store:
        return await store.checkpoint_keys(RUN_PREFIX)


def test_resume_runs_a_task_whose_process_ended_and_forgets_it(tmp_path: Path) -> None:
    workspace, config = setup(tmp_path)
    out = io.StringIO()
    assert main(["run", "--resume", "--config", str(config)], out=out) == 0
    assert "no unfinished task to resume" in out.getvalue()

    # a run --durable whose process was killed: its record is all that is left
    record = UnfinishedRun(TASK, "scripted", str(workspace), 45.0, False, time.time())
    trio.run(record.save, load_config(config))
    assert trio.run(recorded, config) == [record.key]

    out = io.StringIO()
    code = main(["run", "--resume", "--config", str(config), "--no-color"], out=out)
    output = out.getvalue()
    assert code == 0, output
    assert f"resuming unfinished task {TASK!r}" in output
    assert "task        completed" in output
    assert trio.run(recorded, config) == []


def test_a_durable_run_that_finishes_leaves_nothing_to_resume(tmp_path: Path) -> None:
    workspace, config = setup(tmp_path)
    out = io.StringIO()
    argv = ["run", TASK, "--durable", "--workspace", str(workspace), "--config", str(config)]
    assert main([*argv, "--no-color"], out=out) == 0, out.getvalue()
    assert trio.run(recorded, config) == []


def test_run_needs_a_task_or_resume_alone() -> None:
    assert main(["run"], out=io.StringIO()) == 2
    assert main(["run", TASK, "--resume"], out=io.StringIO()) == 2
