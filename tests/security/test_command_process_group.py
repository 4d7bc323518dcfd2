"""Issue 12, item 3: at the deadline the whole process group dies, within timeout + grace.

With the old tool, grandchildren survived a timeout (and held the output pipes), and a
child ignoring ``SIGTERM`` turned a 1 s timeout into 6 s (``trio.run_process`` waits 5 s
before ``SIGKILL``). These tests run real processes on the real clock, kept short:
timeout 0.3 s, grace 0.2 s.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import trio

from mister_smith.errors import ToolTimeout
from mister_smith.tools import AllowedCommand, CommandTool, Workspace

pytestmark = pytest.mark.skipif(
    not all(shutil.which(program) for program in ("sh", "sleep", "head")),
    reason="needs sh, sleep and head",
)
TIMEOUT = 0.3
GRACE = 0.2
SLACK = 0.4  # scheduling noise on a busy machine


def is_gone(pid: int) -> bool:
    """Whether ``pid`` has exited (a zombie waiting for init to reap it counts)."""
    try:
        with open(f"/proc/{pid}/stat") as status:
            return status.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True


async def wait_gone(pid: int) -> bool:
    with trio.move_on_after(1.0):
        while not is_gone(pid):
            await trio.sleep(0.01)
    return is_gone(pid)


def tool_for(workspace: Workspace, script: str) -> CommandTool:
    return CommandTool(
        {"run": AllowedCommand(("sh", "-c", script))},
        workspace=workspace,
        timeout=TIMEOUT,
        kill_grace=GRACE,
        max_output=1_000,
    )


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    return Workspace(tmp_path)


async def test_grandchildren_are_killed_at_the_deadline(workspace: Workspace) -> None:
    tool = tool_for(workspace, "sleep 30 & echo $! > grandchild.pid; wait")
    with pytest.raises(ToolTimeout, match="whole process group"):
        await tool.execute({"command": "run"})
    grandchild = int(Path(workspace.root, "grandchild.pid").read_text())
    assert await wait_gone(grandchild)


async def test_sigterm_ignoring_child_returns_within_timeout_and_grace(
    workspace: Workspace,
) -> None:
    tool = tool_for(workspace, "trap '' TERM; sleep 5 & echo $! > child.pid; wait")
    started = trio.current_time()
    with pytest.raises(ToolTimeout):
        await tool.execute({"command": "run"})
    elapsed = trio.current_time() - started
    assert TIMEOUT + GRACE - 0.05 <= elapsed <= TIMEOUT + GRACE + SLACK, elapsed
    assert await wait_gone(int(Path(workspace.root, "child.pid").read_text()))


async def test_leftovers_holding_the_pipes_do_not_hold_the_call(workspace: Workspace) -> None:
    """The command exits at once but leaves a background child holding stdout: the call
    returns without waiting for it, with the output, and the child is killed."""
    tool = tool_for(workspace, "sleep 30 & echo $!")
    started = trio.current_time()
    result = await tool.execute({"command": "run"})
    assert trio.current_time() - started <= GRACE + SLACK
    assert result["exit_code"] == 0
    assert await wait_gone(int(result["stdout"]))


async def test_outside_cancellation_kills_the_group(workspace: Workspace) -> None:
    """A deadline of the caller (the tool bus's) shorter than the command's own."""
    tool = tool_for(workspace, "sleep 30 & echo $! > grandchild.pid; wait")
    tool.command_timeout = 30.0
    started = trio.current_time()
    with trio.move_on_after(0.2) as scope:
        await tool.execute({"command": "run"})
    assert scope.cancelled_caught
    assert trio.current_time() - started <= 0.2 + GRACE + SLACK
    assert await wait_gone(int(Path(workspace.root, "grandchild.pid").read_text()))


async def test_output_is_capped_without_blocking_the_child(workspace: Workspace) -> None:
    tool = CommandTool(
        {"flood": AllowedCommand(("head", "-c", "20000000", "/dev/zero"))},
        workspace=workspace,
        max_output=1_000,
    )
    result = await tool.execute({"command": "flood"})
    assert result["exit_code"] == 0
    assert (len(result["stdout"]), result["stdout_truncated"]) == (1_000, True)
