"""Routed delivery through the MessageBus next to raw Trio delivery.

Each case times ``bus.route(group, message, strategy=...)`` plus ``tell_nowait`` to the
chosen actor, over live actors (10 or 1,000 members), against the raw baseline of
picking ``channels[i % n]`` from a list and ``send_nowait`` into that memory channel:
the price of a real decision (live load read from each mailbox, capability filtering, a
hash-ring lookup) on top of delivery. Actors are spawned, and each strategy's caches
warmed by one decision, outside the timed stretch; mailboxes are large enough that
nothing blocks.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import trio

from benchmarks import BenchCase, Throughput
from mister_smith.actors import Actor, ActorContext, ActorRef, open_actor_system
from mister_smith.transport import MessageBus, Routed


class _Idle(Actor):
    async def handle(self, message: Any, ctx: ActorContext) -> Any:
        return None


_MESSAGES: dict[str, Callable[[int], Any]] = {
    "load_balanced": lambda i: i,
    "round_robin": lambda i: i,
    "capability": lambda i: Routed(i, requires={"python"}),
    "consistent_hash": lambda i: Routed(i, key=f"conversation-{i % 97}"),
}


def _ours(strategy: str, members: int) -> Callable[[int], Awaitable[float]]:
    make = _MESSAGES[strategy]

    async def run(loops: int) -> float:
        async with open_actor_system(mailbox_capacity=loops + 1) as system:
            refs: list[ActorRef] = [
                await system.spawn(_Idle, capabilities=["python"] if i % 2 else [])
                for i in range(members)
            ]
            bus = MessageBus()
            bus.join("group", *refs)
            messages = [make(i) for i in range(loops)]
            bus.route("group", make(0), strategy=strategy)  # warm the caches
            started = time.perf_counter()
            for message in messages:
                bus.route("group", message, strategy=strategy).tell_nowait(message)
            elapsed = time.perf_counter() - started
            await system.supervisor.stop()
        return elapsed

    return run


def _baseline(members: int) -> Callable[[int], Awaitable[float]]:
    async def run(loops: int) -> float:
        channels = [trio.open_memory_channel[Any](loops + 1) for _ in range(members)]
        senders = [send for send, _ in channels]
        messages = list(range(loops))
        started = time.perf_counter()
        for i in messages:
            senders[i % members].send_nowait(i)
        return time.perf_counter() - started

    return run


def cases(quick: bool) -> Sequence[BenchCase]:
    """Decision cost per strategy with 10 and 1,000 members."""
    built: list[BenchCase] = []
    for members in (10, 1_000):
        for strategy in _MESSAGES:
            loops = (2_000 if quick else 20_000) if members == 10 else (200 if quick else 2_000)
            built.append(
                Throughput(
                    name=f"route+tell {strategy}, {members} members",
                    unit="msgs/s",
                    loops=loops,
                    ours=_ours(strategy, members),
                    baseline=_baseline(members),
                    baseline_label="channels[i % n].send_nowait",
                    description=f"MessageBus.route with {strategy} over {members} live actors",
                )
            )
    return built
