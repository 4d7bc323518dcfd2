"""ToolBus, TaskExecutor and StreamProcessor next to the same work in raw Trio.

- ``ToolBus.call`` on an async no-op tool (lookup, permission check, schema validation,
  deadline scope, metrics, context variable, closing schedule point) against awaiting
  the same function directly inside ``trio.fail_after(30)``. A second pair uses a tool
  that checkpoints once, as real tools do, on both sides. No event bus is attached.
  The bus promises that every call is a checkpoint (a cancel point first, a schedule
  point last, as trio's own ``send`` does), which a no-op awaited directly is not; a
  second latency row keeps the original baseline and adds one that pays that schedule
  point too, so the bus's own overhead can be read beside what the promise costs.
- ``TaskExecutor.run_batch`` of tasks that checkpoint once (concurrency 100; no
  retries, then the default 3-attempt policy whose stamina retry context costs even
  when nothing fails) against a nursery whose tasks take a ``CapacityLimiter`` slot,
  run under ``move_on_after`` and store their result by index.
- ``StreamProcessor`` with two map stages (each checkpointing) and buffers of 100
  against the same pipeline hand-written with memory channels and three tasks.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import trio

from benchmarks import BenchCase, Latency, Throughput
from mister_smith.async_patterns import RetryPolicy, Stage, StreamProcessor, TaskExecutor
from mister_smith.tools import ToolBus, tool

BATCH = 1_000
"""Tasks per executor batch."""

BUFFER = 100
"""Channel buffer of the pipelines."""


def cases(quick: bool) -> Sequence[BenchCase]:
    """Tool call overhead, executor and stream throughput."""
    calls = 2_000 if quick else 20_000
    return [
        Throughput(
            name="ToolBus.call, no-op tool",
            unit="calls/s",
            loops=calls,
            ours=_bus_calls(_noop),
            baseline=_direct_calls(_noop_fn),
            baseline_label="await fn() inside trio.fail_after(30)",
            description="async no-op tool with one int argument; no event bus",
        ),
        Throughput(
            name="ToolBus.call, checkpointing tool",
            unit="calls/s",
            loops=calls,
            ours=_bus_calls(_checkpointing),
            baseline=_direct_calls(_checkpointing_fn),
            baseline_label="await fn() inside trio.fail_after(30)",
            description="tool that awaits one trio checkpoint; no event bus",
        ),
        Latency(
            name="ToolBus.call latency, no-op tool",
            loops=calls,
            ours=_bus_latency,
            baseline=_direct_latency,
            baseline_label="await fn() inside trio.fail_after(30)",
            description="per-call wall time of the no-op tool",
        ),
        Latency(
            name="ToolBus.call latency, no-op tool vs a checkpointing baseline",
            loops=calls,
            ours=_bus_latency,
            baseline=_direct_latency_with_schedule_point,
            baseline_label="the same, then trio.lowlevel.cancel_shielded_checkpoint()",
            description="as above; the baseline also pays the schedule point every call "
            "ends with (the bus's checkpoint promise)",
        ),
        Throughput(
            name="TaskExecutor.run_batch",
            unit="tasks/s",
            loops=(5 if quick else 50) * BATCH,
            ours=_executor_batches,
            baseline=_nursery_batches,
            baseline_label="nursery + CapacityLimiter(100) + move_on_after, results by index",
            description=f"batches of {BATCH} tasks that checkpoint once; concurrency 100",
        ),
        Throughput(
            name="TaskExecutor.run_batch, 3-attempt retry policy",
            unit="tasks/s",
            loops=(5 if quick else 50) * BATCH,
            ours=_executor_batches_retrying,
            baseline=_nursery_batches,
            baseline_label="nursery + CapacityLimiter(100) + move_on_after, results by index",
            description="as above with the default RetryPolicy (stamina retry context per task)",
        ),
        Throughput(
            name="StreamProcessor, 2 stages",
            unit="items/s",
            loops=5_000 if quick else 50_000,
            ours=_stream_processor,
            baseline=_hand_pipeline,
            baseline_label=f"3 tasks joined by memory channels (buffer {BUFFER})",
            description="source -> +1 -> *2 -> consumer, each stage checkpointing",
        ),
    ]


# -- tool calls ---------------------------------------------------------------------------


async def _noop_fn(x: int) -> int:
    return x


async def _checkpointing_fn(x: int) -> int:
    await trio.lowlevel.checkpoint()
    return x


_noop = tool(name="noop")(_noop_fn)
_checkpointing = tool(name="checkpointing")(_checkpointing_fn)


def _bus_calls(tool_: Any) -> Any:
    async def run(loops: int) -> float:
        bus = ToolBus()  # deny by default: the call is checked against a real grant
        caller = bus.identities.mint("bench")
        bus.register_tool(tool_, callers=[caller])
        name = tool_.name
        args = {"x": 1}
        started = time.perf_counter()
        for _ in range(loops):
            await bus.call(caller, name, args)
        return time.perf_counter() - started

    return run


def _direct_calls(fn: Any) -> Any:
    async def run(loops: int) -> float:
        started = time.perf_counter()
        for _ in range(loops):
            with trio.fail_after(30):
                await fn(1)
        return time.perf_counter() - started

    return run


async def _bus_latency(loops: int) -> list[float]:
    bus = ToolBus()
    caller = bus.identities.mint("bench")
    bus.register_tool(_noop, callers=[caller])
    args = {"x": 1}
    latencies = []
    for _ in range(loops):
        started = time.perf_counter()
        await bus.call(caller, "noop", args)
        latencies.append(time.perf_counter() - started)
    return latencies


async def _direct_latency(loops: int) -> list[float]:
    latencies = []
    for _ in range(loops):
        started = time.perf_counter()
        with trio.fail_after(30):
            await _noop_fn(1)
        latencies.append(time.perf_counter() - started)
    return latencies


async def _direct_latency_with_schedule_point(loops: int) -> list[float]:
    latencies = []
    for _ in range(loops):
        started = time.perf_counter()
        with trio.fail_after(30):
            await _noop_fn(1)
        await trio.lowlevel.cancel_shielded_checkpoint()
        latencies.append(time.perf_counter() - started)
    return latencies


# -- executor -----------------------------------------------------------------------------


async def _task() -> int:
    await trio.lowlevel.checkpoint()
    return 1


async def _executor_batches(loops: int) -> float:
    async with TaskExecutor(max_concurrency=100, retry=RetryPolicy.none()) as executor:
        started = time.perf_counter()
        for _ in range(loops // BATCH):
            await executor.run_batch([_task] * BATCH)
        return time.perf_counter() - started


async def _executor_batches_retrying(loops: int) -> float:
    async with TaskExecutor(max_concurrency=100, retry=RetryPolicy()) as executor:
        started = time.perf_counter()
        for _ in range(loops // BATCH):
            await executor.run_batch([_task] * BATCH)
        return time.perf_counter() - started


async def _nursery_batches(loops: int) -> float:
    limiter = trio.CapacityLimiter(100)

    async def run_one(index: int, results: list[object]) -> None:
        async with limiter:
            with trio.move_on_after(30):
                results[index] = await _task()

    started = time.perf_counter()
    for _ in range(loops // BATCH):
        results: list[object] = [None] * BATCH
        async with trio.open_nursery() as nursery:
            for index in range(BATCH):
                nursery.start_soon(run_one, index, results)
    return time.perf_counter() - started


# -- streams ------------------------------------------------------------------------------


async def _add_one(x: int) -> int:
    await trio.lowlevel.checkpoint()
    return x + 1


async def _double(x: int) -> int:
    await trio.lowlevel.checkpoint()
    return x * 2


async def _stream_processor(loops: int) -> float:
    processor = StreamProcessor([Stage(_add_one), Stage(_double)], buffer=BUFFER)
    started = time.perf_counter()
    async with processor.stream(range(loops)) as outputs:
        async for _ in outputs:
            pass
    return time.perf_counter() - started


async def _hand_pipeline(loops: int) -> float:
    async def stage(
        fn: Any, receive: trio.MemoryReceiveChannel[int], send: trio.MemorySendChannel[int]
    ) -> None:
        async with receive, send:
            async for item in receive:
                await send.send(await fn(item))

    async def feed(send: trio.MemorySendChannel[int]) -> None:
        async with send:
            for item in range(loops):
                await send.send(item)

    started = time.perf_counter()
    send0, receive0 = trio.open_memory_channel[int](BUFFER)
    send1, receive1 = trio.open_memory_channel[int](BUFFER)
    send2, receive2 = trio.open_memory_channel[int](0)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(feed, send0)
        nursery.start_soon(stage, _add_one, receive0, send1)
        nursery.start_soon(stage, _double, receive1, send2)
        async with receive2:
            async for _ in receive2:
                pass
    return time.perf_counter() - started
