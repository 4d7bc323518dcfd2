"""Routed delivery through the MessageBus next to raw Trio delivery.

Each case times ``bus.route(group, message, strategy=...)`` plus ``tell_nowait`` to the
chosen actor, over live actors (10 or 1,000 members), against the raw baseline of
picking ``channels[i % n]`` from a list and ``send_nowait`` into that memory channel:
the price of a real decision (live load read from each mailbox, capability filtering, a
hash-ring lookup) on top of delivery. Actors are spawned, and each strategy's caches
warmed by one decision, outside the timed stretch; mailboxes are large enough that
nothing blocks.

The raw baseline sends into channels nobody receives from, so it never pays what any
delivery to a live actor pays: the first message to an idle actor wakes its task (a
Trio reschedule, about 1-3 µs on its own, far more than the raw send). At 1,000 members
each actor gets only a couple of messages per run, so half the sends wake a task; at 10
members the wakes are amortised over thousands. So the 1,000-member cases are measured
a second time, labelled ``vs live receivers``, against raw sends to the same recipients
(see ``_recipients``) into channels each drained by a waiting task, as the actors'
mailboxes are: that row isolates what routing and ``tell`` add on top of Trio delivery.
The original rows stay as they are.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import trio
import trio.testing

from benchmarks import BenchCase, Throughput
from mister_smith.actors import Actor, ActorContext, ActorRef, open_actor_system
from mister_smith.transport import ConsistentHashRouting, MessageBus, Routed, message_key


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


def _recipients(strategy: str, members: int, loops: int) -> list[int]:
    """Which member ours delivers each message to, for the live-receivers baseline.

    With every member idle, load balancing takes the members in join order, as round
    robin does, and capability routing takes the capable ones (odd indexes) in turn; the
    hash ring is the strategy's own pure function over stand-in names (the actors' names
    differ, so the owners may differ, not how many keys collide).
    """
    if strategy in ("load_balanced", "round_robin"):
        return [i % members for i in range(loops)]
    if strategy == "capability":
        capable = [j for j in range(members) if j % 2]
        return [capable[i % len(capable)] for i in range(loops)]
    names = [f"member-{j}" for j in range(members)]
    ring = ConsistentHashRouting()
    keys = [message_key(_MESSAGES[strategy](i)) for i in range(loops)]
    position = {name: j for j, name in enumerate(names)}
    return [position[ring.owner(str(key), names)] for key in keys]


def _baseline_live(strategy: str, members: int) -> Callable[[int], Awaitable[float]]:
    async def run(loops: int) -> float:
        channels = [trio.open_memory_channel[Any](loops + 1) for _ in range(members)]
        senders = [send for send, _ in channels]
        recipients = _recipients(strategy, members, loops)

        async def drain(receive: trio.MemoryReceiveChannel[Any]) -> None:
            async for _ in receive:
                pass

        async with trio.open_nursery() as nursery:
            for _, receive in channels:
                nursery.start_soon(drain, receive)
            await trio.testing.wait_all_tasks_blocked()  # every receiver is waiting
            started = time.perf_counter()
            for i, recipient in enumerate(recipients):
                senders[recipient].send_nowait(i)
            elapsed = time.perf_counter() - started
            nursery.cancel_scope.cancel()
        return elapsed

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
    for strategy in _MESSAGES:
        built.append(
            Throughput(
                name=f"route+tell {strategy}, 1000 members, vs live receivers",
                unit="msgs/s",
                loops=200 if quick else 2_000,
                ours=_ours(strategy, 1_000),
                baseline=_baseline_live(strategy, 1_000),
                baseline_label="send_nowait to waiting receivers, ours' recipients",
                description=(
                    f"MessageBus.route with {strategy} over 1,000 live actors, against raw "
                    "sends to the same recipients' channels, each drained by a waiting task "
                    "(woken by its first message) as the actors' mailboxes are"
                ),
            )
        )
    return built
