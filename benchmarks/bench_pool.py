"""ConnectionPool acquire/release next to a bare ``trio.CapacityLimiter``.

The limiter is the least a bounded pool must do (count slots, queue waiters fairly),
so the ratio is the price of what the pool adds: handing out a real object, the
most-recently-used idle stack, lifetime and idle bookkeeping, and statistics. Pools
are opened (and their connections created) before the timed stretch; the factory
returns a plain ``object()``.

* uncontended: one task, ``async with pool.acquire()`` with an empty body, against
  ``async with limiter``;
* contended: 10 tasks sharing 5 connections (5 slots), each holding through one
  scheduling point, so half the acquisitions wait and are handed over FIFO;
* latency: one uncontended acquire + release, p50 and p99.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence

import trio

from benchmarks import BenchCase, Latency, Throughput
from mister_smith.resources import open_pool

TASKS = 10
"""Tasks competing in the contended case."""

SLOTS = 5
"""Connections (limiter slots) they share."""


def cases(quick: bool) -> Sequence[BenchCase]:
    """Uncontended and contended cycles per second, and acquire latency."""
    loops = 20_000 if quick else 200_000
    return [
        Throughput(
            name="acquire/release, uncontended",
            unit="cycles/s",
            loops=loops,
            ours=_pool_cycles(tasks=1, slots=SLOTS, hold=False),
            baseline=_limiter_cycles(tasks=1, slots=SLOTS, hold=False),
            baseline_label=f"async with CapacityLimiter({SLOTS})",
            description="one task acquiring and releasing with nothing in between",
        ),
        Throughput(
            name=f"acquire/release, {TASKS} tasks on {SLOTS}",
            unit="cycles/s",
            loops=loops // 2,
            ours=_pool_cycles(tasks=TASKS, slots=SLOTS, hold=True),
            baseline=_limiter_cycles(tasks=TASKS, slots=SLOTS, hold=True),
            baseline_label=f"{TASKS} tasks on CapacityLimiter({SLOTS})",
            description="each holds through one checkpoint, so acquirers queue and are handed over",
        ),
        Latency(
            name="acquire + release, uncontended",
            loops=2_000 if quick else 20_000,
            ours=_pool_latency,
            baseline=_limiter_latency,
            baseline_label=f"CapacityLimiter({SLOTS}) acquire + release",
            description="one cycle timed with perf_counter",
        ),
    ]


async def _connect() -> object:
    await trio.lowlevel.checkpoint()
    return object()


def _pool_cycles(*, tasks: int, slots: int, hold: bool) -> Callable[[int], Awaitable[float]]:
    async def run(loops: int) -> float:
        per_task = max(1, loops // tasks)
        async with open_pool(
            _connect, min_size=slots, max_size=slots, acquire_timeout=None
        ) as pool:

            async def worker() -> None:
                for _ in range(per_task):
                    async with pool.acquire():
                        if hold:
                            await trio.lowlevel.checkpoint()

            started = time.perf_counter()
            async with trio.open_nursery() as nursery:
                for _ in range(tasks):
                    nursery.start_soon(worker)
            elapsed = time.perf_counter() - started
        return elapsed * loops / (per_task * tasks)

    return run


def _limiter_cycles(*, tasks: int, slots: int, hold: bool) -> Callable[[int], Awaitable[float]]:
    async def run(loops: int) -> float:
        per_task = max(1, loops // tasks)
        limiter = trio.CapacityLimiter(slots)

        async def worker() -> None:
            for _ in range(per_task):
                async with limiter:
                    if hold:
                        await trio.lowlevel.checkpoint()

        started = time.perf_counter()
        async with trio.open_nursery() as nursery:
            for _ in range(tasks):
                nursery.start_soon(worker)
        elapsed = time.perf_counter() - started
        return elapsed * loops / (per_task * tasks)

    return run


async def _pool_latency(loops: int) -> list[float]:
    latencies: list[float] = []
    async with open_pool(_connect, min_size=1, max_size=SLOTS) as pool:
        for _ in range(loops):
            started = time.perf_counter()
            async with pool.acquire():
                pass
            latencies.append(time.perf_counter() - started)
    return latencies


async def _limiter_latency(loops: int) -> list[float]:
    latencies: list[float] = []
    limiter = trio.CapacityLimiter(SLOTS)
    for _ in range(loops):
        started = time.perf_counter()
        async with limiter:
            pass
        latencies.append(time.perf_counter() - started)
    return latencies
