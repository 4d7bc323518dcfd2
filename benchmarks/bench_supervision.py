"""Supervisors next to hand-written raw Trio: restart latency, child start/stop, memory.

Restart latency is the time from a child raising to its restarted run executing its
first line. Ours: a permanent child under ``open_supervisor`` (one-for-one, no backoff,
intensity high enough never to trip), so the figure includes the decision, its events
and the restart through ``nursery.start``. The baseline is the smallest raw-Trio
restart loop: the task catches its own error, reports it on a memory channel, and a
loop ``start_soon``-s a fresh task. Both stamp ``time.perf_counter`` just before the
``raise`` and at the top of the next run.

Start/stop cases run N children that sleep until cancelled: ``start_child`` for each
(ours, which returns once the child is running) against ``nursery.start`` (the same
contract) or ``start_soon`` (the raw floor); stopping is ``Supervisor.stop`` (reverse
start order, each child awaited) against cancelling the nursery.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

import trio
import trio.testing

from benchmarks import BenchCase, Latency, Memory, PeakMemory, Throughput
from mister_smith.supervision import Restart, Supervisor, open_supervisor

NO_LIMIT = 10**9
"""``max_restarts`` for the latency case: the intensity must never trip."""


def cases(quick: bool) -> Sequence[BenchCase]:
    """Restart latency, start/stop of many children, and memory per child."""
    children = 1_000 if quick else 10_000
    return [
        Latency(
            name="restart latency (crash -> restarted child running)",
            loops=200 if quick else 2_000,
            ours=_supervised_restarts,
            baseline=_raw_restarts,
            baseline_label="task catches, reports on a channel; loop start_soon()s it again",
            description="perf_counter from the raise to the first line of the next run",
        ),
        Throughput(
            name=f"start {children:,} children",
            unit="children/s",
            loops=children,
            ours=_start_supervised,
            baseline=_start_with_nursery_start,
            baseline_label="await nursery.start(fn) each",
            description="start_child of children that sleep until cancelled",
        ),
        Throughput(
            name=f"stop {children:,} children",
            unit="children/s",
            loops=children,
            ours=_stop_supervised,
            baseline=_cancel_nursery,
            baseline_label="nursery.cancel_scope.cancel() and exit",
            description="Supervisor.stop(): reverse start order, each child awaited",
        ),
        Throughput(
            name=f"start+stop {children:,} children",
            unit="children/s",
            loops=children,
            ours=_start_and_stop_supervised,
            baseline=_start_soon_and_cancel,
            baseline_label="start_soon each, then cancel the nursery",
            description="open a supervisor, start N children, stop it",
        ),
        Memory(
            name="supervised child",
            unit="B/child",
            loops=children,
            ours=_supervised_memory,
            baseline=_task_memory,
            baseline_label="a nursery task (start_soon)",
            description="peak tracemalloc bytes per running child that sleeps",
        ),
        Memory(
            name="supervised child vs a task in its own cancel scope",
            unit="B/child",
            loops=children,
            ours=_supervised_memory,
            baseline=_scoped_task_memory,
            baseline_label="a nursery task inside its own CancelScope (start_soon)",
            description="the floor for a child that can be stopped alone: trio's cancel "
            "scope and its CancelStatus",
        ),
    ]


# -- restart latency ----------------------------------------------------------------------


async def _supervised_restarts(loops: int) -> list[float]:
    latencies: list[float] = []
    crashed_at = math.nan
    done = trio.Event()

    async def child() -> None:
        nonlocal crashed_at
        now = time.perf_counter()
        if crashed_at == crashed_at:  # not NaN: this is a restart
            latencies.append(now - crashed_at)
        if len(latencies) >= loops:
            done.set()
            await trio.sleep_forever()
        crashed_at = time.perf_counter()
        raise ValueError("crash")

    async with open_supervisor(
        "bench", max_restarts=NO_LIMIT, restart_window=1.0, default_restart=Restart.PERMANENT
    ) as sup:
        await sup.start_child(child, name="crashy")
        await done.wait()
        await sup.stop()
    return latencies


async def _raw_restarts(loops: int) -> list[float]:
    latencies: list[float] = []
    crashed_at = math.nan
    exits_send, exits_receive = trio.open_memory_channel[None](math.inf)

    async def child() -> None:
        nonlocal crashed_at
        now = time.perf_counter()
        if crashed_at == crashed_at:
            latencies.append(now - crashed_at)
        if len(latencies) >= loops:
            return
        crashed_at = time.perf_counter()
        raise ValueError("crash")

    async def supervised() -> None:
        try:
            await child()
        except ValueError:
            exits_send.send_nowait(None)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(supervised)
        async for _ in exits_receive:
            nursery.start_soon(supervised)
            if len(latencies) >= loops - 1:
                break
    return latencies


# -- start / stop -------------------------------------------------------------------------


async def _sleeper(*, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    task_status.started()
    await trio.sleep_forever()


async def _idle() -> None:
    await trio.sleep_forever()


async def _open_background(nursery: trio.Nursery) -> Supervisor:
    async def run(*, task_status: trio.TaskStatus[Supervisor] = trio.TASK_STATUS_IGNORED) -> None:
        async with open_supervisor("bench", keep_alive=True) as sup:
            task_status.started(sup)

    sup: Supervisor = await nursery.start(run)
    return sup


async def _start_supervised(loops: int) -> float:
    async with trio.open_nursery() as nursery:
        sup = await _open_background(nursery)
        started = time.perf_counter()
        for _ in range(loops):
            await sup.start_child(_idle)
        elapsed = time.perf_counter() - started
        await sup.stop()
    return elapsed


async def _start_with_nursery_start(loops: int) -> float:
    async with trio.open_nursery() as nursery:
        started = time.perf_counter()
        for _ in range(loops):
            await nursery.start(_sleeper)
        elapsed = time.perf_counter() - started
        nursery.cancel_scope.cancel()
    return elapsed


async def _stop_supervised(loops: int) -> float:
    async with trio.open_nursery() as nursery:
        sup = await _open_background(nursery)
        for _ in range(loops):
            await sup.start_child(_idle)
        started = time.perf_counter()
        await sup.stop()
    return time.perf_counter() - started


async def _cancel_nursery(loops: int) -> float:
    async with trio.open_nursery() as nursery:
        for _ in range(loops):
            await nursery.start(_sleeper)
        started = time.perf_counter()
        nursery.cancel_scope.cancel()
    return time.perf_counter() - started


async def _start_and_stop_supervised(loops: int) -> float:
    started = time.perf_counter()
    async with open_supervisor("bench", keep_alive=True) as sup:
        for _ in range(loops):
            await sup.start_child(_idle)
        await sup.stop()
    return time.perf_counter() - started


async def _start_soon_and_cancel(loops: int) -> float:
    started = time.perf_counter()
    async with trio.open_nursery() as nursery:
        for _ in range(loops):
            nursery.start_soon(_idle)
        await trio.lowlevel.checkpoint()
        nursery.cancel_scope.cancel()
    return time.perf_counter() - started


# -- memory -------------------------------------------------------------------------------


# Each side waits until every task sleeps: a task that has not run yet has not made
# its frames, and counting it would understate that side.


async def _supervised_memory(loops: int) -> int:
    async with trio.open_nursery() as nursery:
        sup = await _open_background(nursery)
        with PeakMemory() as memory:
            for _ in range(loops):
                await sup.start_child(_idle)
            await trio.testing.wait_all_tasks_blocked()
        await sup.stop()
    return memory.peak


async def _task_memory(loops: int) -> int:
    async with trio.open_nursery() as nursery:
        with PeakMemory() as memory:
            for _ in range(loops):
                nursery.start_soon(_idle)
            await trio.testing.wait_all_tasks_blocked()
        nursery.cancel_scope.cancel()
    return memory.peak


async def _idle_in_scope(scope: trio.CancelScope) -> None:
    with scope:
        await trio.sleep_forever()


async def _scoped_task_memory(loops: int) -> int:
    async with trio.open_nursery() as nursery:
        with PeakMemory() as memory:
            for _ in range(loops):
                nursery.start_soon(_idle_in_scope, trio.CancelScope())
            await trio.testing.wait_all_tasks_blocked()
        nursery.cancel_scope.cancel()
    return memory.peak
