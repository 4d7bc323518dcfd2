"""One-for-one restarts and retries run in the task of the run that exited.

They must still behave like a fresh start: a scheduling point before each run (a child
crashing at once cannot starve its siblings), stoppable while they wait, announced as
recoveries, with a clean supervision context.
"""

from __future__ import annotations

import trio
import trio.testing

from mister_smith.events import ChildStarted, ComponentRecovered, EventBus
from mister_smith.supervision import (
    Backoff,
    ChildState,
    OneForAll,
    current_child,
    open_supervisor,
)
from mister_smith.types import Restart


async def test_a_child_crashing_at_once_does_not_starve_its_siblings() -> None:
    runs = 0
    ticks_when_done: list[int] = []
    ticks = 0
    done = trio.Event()

    async def crashy() -> None:
        nonlocal runs
        runs += 1
        if runs == 200:
            ticks_when_done.append(ticks)
            done.set()
            await trio.sleep_forever()
        raise ValueError("at once")  # no checkpoint of its own

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await trio.lowlevel.checkpoint()

    async with open_supervisor(
        "s", max_restarts=None, default_restart=Restart.PERMANENT, keep_alive=True
    ) as sup:
        await sup.start_child(ticker, name="ticker")
        await sup.start_child(crashy, name="crashy")
        await done.wait()
        assert sup.child("crashy").restarts == 199
        await sup.stop()
    # The ticker ran between the restarts, not only after them.
    assert ticks_when_done[0] >= 100


async def test_restarts_in_place_are_announced_and_see_their_own_run() -> None:
    bus = EventBus()
    seen: list[tuple[object, object]] = []

    async def crash_twice() -> None:
        child = current_child()
        assert child is not None
        seen.append((child.restarts, trio.lowlevel.current_task()))
        if child.restarts < 2:
            raise ValueError("again")
        await trio.sleep_forever()

    async with open_supervisor(
        "s", events=bus, default_restart=Restart.PERMANENT, keep_alive=True
    ) as sup:
        await sup.start_child(crash_twice, name="c")
        await trio.testing.wait_all_tasks_blocked()
        assert [restarts for restarts, _ in seen] == [0, 1, 2]
        assert len({task for _, task in seen}) == 1  # one task for the child's runs
        assert sup.child("c").state is ChildState.RUNNING
        await sup.stop()
    assert [e.child for e in bus.history(ChildStarted)] == ["c", "c", "c"]
    assert [e.restarts for e in bus.history(ComponentRecovered)] == [1, 2]


async def test_a_restart_waiting_out_its_backoff_in_place_stops_at_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    runs = 0

    async def crashy() -> None:
        nonlocal runs
        runs += 1
        raise ValueError("crash")

    async with open_supervisor(
        "s",
        backoff=Backoff(initial=60.0, jitter=0.0),
        default_restart=Restart.PERMANENT,
        keep_alive=True,
    ) as sup:
        child = await sup.start_child(crashy, name="c")
        await trio.sleep(1)
        waiting = child.state
        assert waiting is ChildState.WAITING
        before = trio.current_time()
        await sup.stop_child(child)
        assert trio.current_time() == before
        assert child.state is ChildState.STOPPED
        await trio.sleep(120)
        assert runs == 1
        await sup.stop()


async def test_group_restarts_still_start_fresh_tasks() -> None:
    tasks: dict[str, list[trio.lowlevel.Task]] = {"a": [], "b": []}
    crashed = False

    async def member(name: str) -> None:
        nonlocal crashed
        tasks[name].append(trio.lowlevel.current_task())
        if name == "b" and not crashed:
            crashed = True
            raise ValueError("b fails once")
        await trio.sleep_forever()

    async with open_supervisor(
        "s", strategy=OneForAll(), default_restart=Restart.PERMANENT, keep_alive=True
    ) as sup:
        await sup.start_child(member, "a", name="a")
        await sup.start_child(member, "b", name="b")
        await trio.testing.wait_all_tasks_blocked()
        assert [len(tasks["a"]), len(tasks["b"])] == [2, 2]
        assert tasks["a"][0] is not tasks["a"][1]
        await sup.stop()
