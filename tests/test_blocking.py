"""The blocking detector: steps that hold the loop are named, counted and can fail tests.

These tests block the loop for real (``time.sleep``), ~0.15 s each, on Trio's real clock.
"""

from __future__ import annotations

import time

import pytest
import trio

from mister_smith.events import EventBus, LoopBlocked
from mister_smith.tools import (
    BlockingDetector,
    LoopBlockedError,
    ToolBus,
    monitor_blocking,
    tool,
)

BLOCK = 0.15


@tool
async def sleepy_sync_body(seconds: float) -> str:
    """Blocks the loop: a sync sleep inside an async tool, no checkpoint at all."""
    time.sleep(seconds)
    return "done"


@tool
async def sleepy_after_checkpoint(seconds: float) -> str:
    """Blocks the loop between two checkpoints."""
    await trio.lowlevel.checkpoint()
    time.sleep(seconds)
    await trio.lowlevel.checkpoint()
    return "done"


@tool(blocking=True)
def sleepy_in_thread(seconds: float) -> str:
    """Sleeps in a worker thread: the loop stays free."""
    time.sleep(seconds)
    return "done"


def bus_with_tools() -> ToolBus:
    bus = ToolBus(default_policy="open")
    for item in (sleepy_sync_body, sleepy_after_checkpoint, sleepy_in_thread):
        bus.register_tool(item)
    return bus


@pytest.mark.parametrize("tool_name", ["sleepy_sync_body", "sleepy_after_checkpoint"])
async def test_blocking_tool_is_named(tool_name: str) -> None:
    events = EventBus()
    bus = bus_with_tools()

    async def agent_task() -> None:
        await bus.call("agent-7", tool_name, {"seconds": BLOCK})

    async with (
        monitor_blocking(events, threshold=0.1) as detector,
        trio.open_nursery() as nursery,
    ):
        nursery.start_soon(agent_task, name="agent-7-loop")
    [event] = [e for e in events.history(LoopBlocked) if e.tool == tool_name]
    assert event.task == "agent-7-loop"
    assert event.duration >= BLOCK
    assert detector.statistics().blocked >= 1
    assert detector.statistics().worst >= BLOCK
    assert any(step.tool == tool_name for step in detector.offenders)


async def test_thread_tool_does_not_block() -> None:
    bus = bus_with_tools()
    async with monitor_blocking(threshold=0.1, strict=True) as detector:
        assert await bus.call("a", "sleepy_in_thread", {"seconds": BLOCK}) == "done"
    assert detector.statistics().blocked == 0
    assert detector.statistics().steps > 0


async def test_blocking_outside_tools_names_the_task() -> None:
    events = EventBus()

    async def hog() -> None:
        await trio.lowlevel.checkpoint()
        time.sleep(BLOCK)

    async with monitor_blocking(events), trio.open_nursery() as nursery:
        nursery.start_soon(hog, name="hog")
    [event] = [e for e in events.history(LoopBlocked) if e.task == "hog"]
    assert event.tool is None
    assert event.source == "blocking_detector"


async def test_strict_mode_fails() -> None:
    bus = bus_with_tools()
    with pytest.raises(
        LoopBlockedError, match="in tool 'sleepy_sync_body' blocked the loop"
    ) as caught:
        async with monitor_blocking(threshold=0.1, strict=True):
            await bus.call("a", "sleepy_sync_body", {"seconds": BLOCK})
    assert any(step.tool == "sleepy_sync_body" for step in caught.value.offenders)


async def test_check_reports_once_and_instrument_is_removed() -> None:
    detector = BlockingDetector(threshold=0.1)
    trio.lowlevel.add_instrument(detector)
    try:
        await trio.lowlevel.checkpoint()
        time.sleep(BLOCK)
        await trio.lowlevel.checkpoint()
    finally:
        trio.lowlevel.remove_instrument(detector)
    with pytest.raises(LoopBlockedError):
        detector.check()
    detector.check()  # already reported
    steps = detector.statistics().steps
    await trio.lowlevel.checkpoint()
    assert detector.statistics().steps == steps  # no longer installed
    with pytest.raises(ValueError, match="threshold"):
        BlockingDetector(threshold=0)


async def test_fake_clock_threshold() -> None:
    """With an injected clock the detector's arithmetic is exact."""
    now = [0.0]
    detector = BlockingDetector(threshold=1.0, clock=lambda: now[0])
    task = trio.lowlevel.current_task()
    detector.before_task_step(task)
    now[0] = 0.5
    detector.after_task_step(task)
    detector.before_task_step(task)
    now[0] = 2.0
    detector.after_task_step(task)
    stats = detector.statistics()
    assert (stats.steps, stats.blocked, stats.worst, stats.threshold) == (2, 1, 1.5, 1.0)
    assert str(detector.offenders[0]) == f"task {task.name!r} blocked the loop for 1500 ms"
