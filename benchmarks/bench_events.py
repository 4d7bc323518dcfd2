"""EventBus.emit next to raw Trio memory channels.

Throughput cases time ``emit`` alone: streams are subscribed to the ``Event`` base class
with a buffer of one batch (1,000 events) and drained with ``receive_nowait`` between
batches, outside the timed stretch, so no event is dropped and the figure is the cost of
emitting. The baseline does the same delivery by hand: ``send_nowait`` of the same event
into one buffered memory channel per subscriber (one channel when there are none: the
plain ``send_nowait`` loop), drained the same way. The bus keeps its default 10,000-event
history, which every ``emit`` also feeds.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

import trio

from benchmarks import BenchCase, Latency, Memory, PeakMemory, Stopwatch, Throughput
from mister_smith.events import Event, EventBus, EventStream, LoopBlocked

BATCH = 1_000
"""Emits between drains; also each stream's and channel's buffer."""

SLOW_BUFFER = 100
"""Buffer of the never-drained subscriber in the overflow case."""


def cases(quick: bool) -> Sequence[BenchCase]:
    """Emit throughput by subscriber count, overflow, handlers, latency and memory."""
    deliveries = 50_000 if quick else 200_000
    built: list[BenchCase] = [
        Throughput(
            name=f"emit, {count} stream{'' if count == 1 else 's'}",
            unit="emits/s",
            loops=deliveries // max(count, 1),
            ours=_emit_to_streams(count),
            baseline=_send_to_channels(max(count, 1)),
            baseline_label=f"send_nowait to {max(count, 1)} channel{'s' * (count > 1)}",
            description=f"emit to {count} drained subscription streams",
        )
        for count in (0, 1, 10, 100)
    ]
    built += [
        Throughput(
            name="emit, 1 full stream (drop oldest)",
            unit="emits/s",
            loops=deliveries,
            ours=_emit_to_full_stream,
            baseline=_send_dropping_oldest,
            baseline_label="send_nowait; on WouldBlock receive_nowait and resend",
            description=f"a subscriber that never reads, buffer {SLOW_BUFFER}",
        ),
        Throughput(
            name="emit, 10 handlers",
            unit="emits/s",
            loops=deliveries // 2,
            ours=_emit_to_handlers(10),
            baseline=_call_functions(10),
            baseline_label="10 direct function calls",
            description="handler callbacks registered with add_handler",
        ),
        Latency(
            name="emit -> receive, 1 stream",
            loops=2_000 if quick else 20_000,
            ours=_stream_latency,
            baseline=_channel_latency,
            baseline_label="send_nowait -> receive, 1 channel",
            description="time from emit until a waiting subscriber task has the event",
        ),
        Memory(
            name="open subscription",
            unit="B/subscription",
            loops=1_000 if quick else 10_000,
            ours=_subscription_memory,
            baseline=_channel_memory,
            baseline_label=f"open_memory_channel({BATCH}) pair",
            description="peak tracemalloc bytes per open, empty subscription stream",
        ),
    ]
    return built


def _event() -> Event:
    return LoopBlocked(source="bench", task="bench", duration=0.0)


class _Receiver(Protocol):
    def receive_nowait(self) -> object: ...


def _drain(receiver: _Receiver) -> None:
    while True:
        try:
            receiver.receive_nowait()
        except trio.WouldBlock:
            return


def _batches(loops: int) -> list[int]:
    full, rest = divmod(loops, BATCH)
    return [BATCH] * full + ([rest] if rest else [])


# -- throughput ---------------------------------------------------------------------------


def _emit_to_streams(count: int) -> Callable[[int], Awaitable[float]]:
    async def run(loops: int) -> float:
        bus = EventBus()
        event = _event()
        stopwatch = Stopwatch()
        streams = [bus.subscribe(Event, buffer=BATCH) for _ in range(count)]
        for stream in streams:
            await stream.__aenter__()
        for batch in _batches(loops):
            with stopwatch:
                for _ in range(batch):
                    bus.emit(event)
            for stream in streams:
                _drain(stream)
        for stream in streams:
            stream.close()
        return stopwatch.elapsed

    return run


def _send_to_channels(count: int) -> Callable[[int], Awaitable[float]]:
    async def run(loops: int) -> float:
        event = _event()
        stopwatch = Stopwatch()
        pairs = [trio.open_memory_channel[Event](BATCH) for _ in range(count)]
        senders = [send for send, _ in pairs]
        for batch in _batches(loops):
            with stopwatch:
                for _ in range(batch):
                    for sender in senders:
                        sender.send_nowait(event)
            for _, receiver in pairs:
                _drain(receiver)
        return stopwatch.elapsed

    return run


async def _emit_to_full_stream(loops: int) -> float:
    bus = EventBus()
    event = _event()
    async with bus.subscribe(Event, buffer=SLOW_BUFFER):
        for _ in range(SLOW_BUFFER):
            bus.emit(event)
        started = time.perf_counter()
        for _ in range(loops):
            bus.emit(event)
        return time.perf_counter() - started


async def _send_dropping_oldest(loops: int) -> float:
    event = _event()
    sender, receiver = trio.open_memory_channel[Event](SLOW_BUFFER)
    for _ in range(SLOW_BUFFER):
        sender.send_nowait(event)
    started = time.perf_counter()
    for _ in range(loops):
        try:
            sender.send_nowait(event)
        except trio.WouldBlock:
            receiver.receive_nowait()
            sender.send_nowait(event)
    return time.perf_counter() - started


def _ignore(event: Event) -> None:
    """A handler that does nothing, so the figure is the bus's own cost."""


def _emit_to_handlers(count: int) -> Callable[[int], Awaitable[float]]:
    async def run(loops: int) -> float:
        bus = EventBus()
        event = _event()
        for _ in range(count):
            bus.add_handler(Event, _ignore)
        started = time.perf_counter()
        for _ in range(loops):
            bus.emit(event)
        return time.perf_counter() - started

    return run


def _call_functions(count: int) -> Callable[[int], Awaitable[float]]:
    async def run(loops: int) -> float:
        event = _event()
        handlers = [_ignore] * count
        started = time.perf_counter()
        for _ in range(loops):
            for handler in handlers:
                handler(event)
        return time.perf_counter() - started

    return run


# -- latency ------------------------------------------------------------------------------
# The sender stamps the time, delivers, then waits for the subscriber's acknowledgement
# (same raw channel on both sides), so only delivery and one scheduler hop are timed.


async def _stream_latency(loops: int) -> list[float]:
    bus = EventBus()
    event = _event()
    latencies: list[float] = []
    sent_at = 0.0
    ack_sender, ack_receiver = trio.open_memory_channel[None](1)

    async def subscriber(stream: EventStream[Event]) -> None:
        async for _ in stream:
            latencies.append(time.perf_counter() - sent_at)
            ack_sender.send_nowait(None)

    async with trio.open_nursery() as nursery, bus.subscribe(Event) as stream:
        nursery.start_soon(subscriber, stream)
        for _ in range(loops):
            sent_at = time.perf_counter()
            bus.emit(event)
            await ack_receiver.receive()
    return latencies


async def _channel_latency(loops: int) -> list[float]:
    event = _event()
    latencies: list[float] = []
    sent_at = 0.0
    ack_sender, ack_receiver = trio.open_memory_channel[None](1)
    sender, receiver = trio.open_memory_channel[Event](BATCH)

    async def subscriber() -> None:
        async for _ in receiver:
            latencies.append(time.perf_counter() - sent_at)
            ack_sender.send_nowait(None)

    async with trio.open_nursery() as nursery, sender:
        nursery.start_soon(subscriber)
        for _ in range(loops):
            sent_at = time.perf_counter()
            sender.send_nowait(event)
            await ack_receiver.receive()
    return latencies


# -- memory -------------------------------------------------------------------------------


async def _subscription_memory(loops: int) -> int:
    bus = EventBus()
    with PeakMemory() as memory:
        streams = [bus.subscribe(Event, buffer=BATCH) for _ in range(loops)]
        # Entered directly: an AsyncExitStack would add its own bookkeeping per entry.
        for stream in streams:
            await stream.__aenter__()
    for stream in streams:
        stream.close()
    return memory.peak


async def _channel_memory(loops: int) -> int:
    with PeakMemory() as memory:
        pairs = [trio.open_memory_channel[Event](BATCH) for _ in range(loops)]
    for send, receive in pairs:
        send.close()
        receive.close()
    return memory.peak
