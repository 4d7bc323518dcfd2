"""Actors next to the same work written with raw Trio tasks and memory channels.

Every actor here is spawned through ``open_actor_system`` (default supervisor, mailbox
capacity 1,000) and every raw "actor" is a task looping over its own
``open_memory_channel(1_000)``, started with ``nursery.start`` so that both sides return
once the receiver runs. Handlers do nothing but count, so the figures are the cost of
the machinery.

* tell: one sender ``await``-s ``ref.tell`` (ours) or ``send_channel.send`` (raw) in a
  loop; the clock stops when the receiver has counted the last message.
* ask: round-trip latency of ``await ref.ask(msg)`` against a raw request channel plus
  reply channel served by one task.
* fan-out: the same tell loop, round-robin over 1,000 actors or 1,000 raw pairs.
* spawn+stop: ``spawn`` N actors then ``stop`` each (awaited), against
  ``nursery.start`` of N raw pairs then cancelling each and awaiting its exit.
* memory: peak ``tracemalloc`` bytes per idle actor against per idle raw pair.
* scaling: tell throughput to one actor, and memory per actor, with 1, 100, 10,000 and
  100,000 live actors (1,000 at most with ``--quick``; the 100,000 cases take minutes,
  most of it spawning).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import trio

from benchmarks import BenchCase, Latency, Memory, PeakMemory, Throughput
from mister_smith.actors import Actor, ActorContext, ActorRef, ActorSystem, open_actor_system

MAILBOX = 1_000
"""Mailbox capacity of every actor and buffer of every raw channel."""

FAN_OUT = 1_000
"""Actors (or raw pairs) in the fan-out case."""

MESSAGE = ("work", 1)


class Tally:
    """Counts handled messages across receivers; ``done`` is set at ``expected``."""

    __slots__ = ("count", "done", "expected")

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.count = 0
        self.done = trio.Event()

    def add(self) -> None:
        self.count += 1
        if self.count == self.expected:
            self.done.set()


class Counting(Actor):
    """Counts each message into a shared :class:`Tally`."""

    def __init__(self, tally: Tally) -> None:
        self.tally = tally

    async def handle(self, message: Any, ctx: ActorContext) -> Any:
        self.tally.add()


class Echo(Actor):
    """Replies with the message."""

    async def handle(self, message: Any, ctx: ActorContext) -> Any:
        return message


class Idle(Actor):
    """Never gets a message."""

    async def handle(self, message: Any, ctx: ActorContext) -> Any:
        return None


def cases(quick: bool) -> Sequence[BenchCase]:
    """Tell, ask, fan-out, spawn+stop, memory, and the live-actor scaling sweep."""
    messages = 20_000 if quick else 200_000
    spawned = 1_000 if quick else 10_000
    sweep = (1, 100, 1_000) if quick else (1, 100, 10_000, 100_000)
    built: list[BenchCase] = [
        Throughput(
            name="tell, 1 sender -> 1 actor",
            unit="msgs/s",
            loops=messages,
            ours=_tell_throughput(live=1),
            baseline=_send_throughput(live=1),
            baseline_label="await send() into a memory channel read by a task",
            description="await ref.tell() loop until the actor has handled every message",
        ),
        Latency(
            name="ask round trip",
            loops=2_000 if quick else 20_000,
            ours=_ask_latency,
            baseline=_request_reply_latency,
            baseline_label="send on a request channel, receive on a reply channel",
            description="perf_counter around each await ref.ask(msg) to an echo actor",
        ),
        Throughput(
            name=f"fan-out to {FAN_OUT:,} actors",
            unit="msgs/s",
            loops=messages,
            ours=_fan_out_tells,
            baseline=_fan_out_sends,
            baseline_label=f"await send() round-robin over {FAN_OUT:,} channel+task pairs",
            description=f"await tell() round-robin over {FAN_OUT:,} actors until all handled",
        ),
        Throughput(
            name=f"spawn+stop {spawned:,} actors",
            unit="actors/s",
            loops=spawned,
            ours=_spawn_and_stop,
            baseline=_start_and_cancel,
            baseline_label="nursery.start() a channel+task pair; cancel each, await its exit",
            description="spawn N idle actors, then await stop() of each",
        ),
        Memory(
            name="idle actor",
            unit="B/actor",
            loops=spawned,
            ours=_actor_memory,
            baseline=_raw_pair_memory,
            baseline_label="task waiting on its own open_memory_channel(1000)",
            description="peak tracemalloc bytes per spawned, idle actor",
        ),
    ]
    for live in sweep:
        built.append(
            Throughput(
                name=f"scaling: tell with {live:,} live actors",
                unit="msgs/s",
                loops=messages // 2,
                ours=_tell_throughput(live=live),
                baseline=_send_throughput(live=live),
                baseline_label=f"await send() with {live:,} live channel+task pairs",
                description=f"tell throughput to one actor while {live:,} actors are alive",
            )
        )
    for live in sweep:
        built.append(
            Memory(
                name=f"scaling: memory with {live:,} live actors",
                unit="B/actor",
                loops=live,
                ours=_actor_memory,
                baseline=_raw_pair_memory,
                baseline_label=f"{live:,} tasks each on its own memory channel",
                description=f"peak tracemalloc bytes per actor with {live:,} idle actors",
            )
        )
    return built


# -- raw "actors": a task looping over its own memory channel ------------------------------


class RawActor:
    """The raw-Trio equivalent of an actor: a channel and a task draining it."""

    __slots__ = ("done", "receive", "scope", "send")

    def __init__(self) -> None:
        self.send, self.receive = trio.open_memory_channel[Any](MAILBOX)
        self.scope = trio.CancelScope()
        self.done = trio.Event()

    async def run(
        self,
        tally: Tally | None,
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        try:
            with self.scope:
                task_status.started()
                async for _ in self.receive:
                    if tally is not None:
                        tally.add()
        finally:
            self.done.set()

    async def stop(self) -> None:
        self.scope.cancel()
        await self.done.wait()


async def _start_raw(nursery: trio.Nursery, count: int, tally: Tally | None) -> list[RawActor]:
    raws = []
    for _ in range(count):
        raw = RawActor()
        await nursery.start(raw.run, tally)
        raws.append(raw)
    return raws


async def _spawn(
    system: ActorSystem, count: int, factory: Callable[..., Actor], *args: Any
) -> list[ActorRef]:
    return [await system.spawn(factory, *args) for _ in range(count)]


# -- tell throughput -----------------------------------------------------------------------


def _tell_throughput(live: int) -> Callable[[int], Awaitable[float]]:
    async def run(loops: int) -> float:
        tally = Tally(loops)
        async with open_actor_system(mailbox_capacity=MAILBOX) as system:
            target = await system.spawn(Counting, tally)
            await _spawn(system, live - 1, Idle)
            started = time.perf_counter()
            for _ in range(loops):
                await target.tell(MESSAGE)
            await tally.done.wait()
            return time.perf_counter() - started

    return run


def _send_throughput(live: int) -> Callable[[int], Awaitable[float]]:
    async def run(loops: int) -> float:
        tally = Tally(loops)
        async with trio.open_nursery() as nursery:
            (target,) = await _start_raw(nursery, 1, tally)
            await _start_raw(nursery, live - 1, None)
            send = target.send
            started = time.perf_counter()
            for _ in range(loops):
                await send.send(MESSAGE)
            await tally.done.wait()
            elapsed = time.perf_counter() - started
            nursery.cancel_scope.cancel()
        return elapsed

    return run


# -- ask latency ---------------------------------------------------------------------------


async def _ask_latency(loops: int) -> list[float]:
    latencies: list[float] = []
    async with open_actor_system(mailbox_capacity=MAILBOX) as system:
        ref = await system.spawn(Echo)
        for _ in range(loops):
            started = time.perf_counter()
            await ref.ask(MESSAGE)
            latencies.append(time.perf_counter() - started)
    return latencies


async def _request_reply_latency(loops: int) -> list[float]:
    latencies: list[float] = []
    request_send, request_receive = trio.open_memory_channel[Any](MAILBOX)
    reply_send, reply_receive = trio.open_memory_channel[Any](1)

    async def server() -> None:
        async for message in request_receive:
            await reply_send.send(message)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(server)
        for _ in range(loops):
            started = time.perf_counter()
            await request_send.send(MESSAGE)
            await reply_receive.receive()
            latencies.append(time.perf_counter() - started)
        nursery.cancel_scope.cancel()
    return latencies


# -- fan-out -------------------------------------------------------------------------------


async def _fan_out_tells(loops: int) -> float:
    tally = Tally(loops)
    async with open_actor_system(mailbox_capacity=MAILBOX) as system:
        refs = await _spawn(system, FAN_OUT, Counting, tally)
        started = time.perf_counter()
        for index in range(loops):
            await refs[index % FAN_OUT].tell(MESSAGE)
        await tally.done.wait()
        return time.perf_counter() - started


async def _fan_out_sends(loops: int) -> float:
    tally = Tally(loops)
    async with trio.open_nursery() as nursery:
        raws = await _start_raw(nursery, FAN_OUT, tally)
        sends = [raw.send for raw in raws]
        started = time.perf_counter()
        for index in range(loops):
            await sends[index % FAN_OUT].send(MESSAGE)
        await tally.done.wait()
        elapsed = time.perf_counter() - started
        nursery.cancel_scope.cancel()
    return elapsed


# -- spawn and stop ------------------------------------------------------------------------


async def _spawn_and_stop(loops: int) -> float:
    async with open_actor_system(mailbox_capacity=MAILBOX) as system:
        started = time.perf_counter()
        refs = await _spawn(system, loops, Idle)
        for ref in refs:
            await ref.stop()
        return time.perf_counter() - started


async def _start_and_cancel(loops: int) -> float:
    async with trio.open_nursery() as nursery:
        started = time.perf_counter()
        raws = await _start_raw(nursery, loops, None)
        for raw in raws:
            await raw.stop()
        return time.perf_counter() - started


# -- memory --------------------------------------------------------------------------------


async def _actor_memory(loops: int) -> int:
    async with open_actor_system(mailbox_capacity=MAILBOX) as system:
        with PeakMemory() as memory:
            refs = await _spawn(system, loops, Idle)
        del refs
    return memory.peak


async def _raw_pair_memory(loops: int) -> int:
    async with trio.open_nursery() as nursery:
        with PeakMemory() as memory:
            raws = await _start_raw(nursery, loops, None)
        del raws
        nursery.cancel_scope.cancel()
    return memory.peak
