"""Our side: mister_smith actors on Trio, one ``trio.run`` per measured run.

Every actor is spawned with :meth:`ActorSystem.spawn` under the system's supervisor and
talked to through its :class:`ActorRef`, exactly as users do: ``await ref.tell`` (which
waits for mailbox room), ``await ref.ask``, ``await ref.stop``. The restart workload
spawns with ``restart=Restart.PERMANENT`` and no backoff, so a crash is followed by an
immediate restart; messages queued meanwhile stay in the mailbox for the new incarnation.
"""

from __future__ import annotations

import math
import time
from typing import Any, ClassVar

import trio

from mister_smith.actors import Actor, ActorContext, open_actor_system
from mister_smith.types import Restart

from ._model import BURST, PeerAdapter

CRASH = "crash"
"""The message that makes the restart workload's actor raise."""


class Countdown:
    """Shared by the actors of one fan-out wave: the last one to count sets ``done``."""

    __slots__ = ("done", "remaining")

    def __init__(self, remaining: int) -> None:
        self.remaining = remaining
        self.done = trio.Event()

    def hit(self) -> None:
        self.remaining -= 1
        if self.remaining == 0:
            self.done.set()


class _Counter(Actor):
    """Counts messages and sets ``done`` at the ``target``-th; runs fan-out waves."""

    def __init__(self, target: int = 0, done: trio.Event | None = None) -> None:
        self.target = target
        self.done = done
        self.count = 0

    async def handle(self, message: Any, ctx: ActorContext) -> Any:
        if isinstance(message, Countdown):
            message.hit()
            return None
        self.count += 1
        if self.count == self.target and self.done is not None:
            self.done.set()
        return None


class _Echo(Actor):
    """Replies with the message; raises on :data:`CRASH`."""

    async def handle(self, message: Any, ctx: ActorContext) -> Any:
        if message == CRASH:
            raise ValueError("crash requested by the benchmark")
        return message


async def _tell(loops: int) -> float:
    done = trio.Event()
    async with open_actor_system(name="bench") as system:
        ref = await system.spawn(_Counter, loops, done)
        started = time.perf_counter()
        for i in range(loops):
            await ref.tell(i)
        await done.wait()
        return time.perf_counter() - started


async def _tell_burst(loops: int) -> float:
    async with open_actor_system(name="bench") as system:
        ref = await system.spawn(_Counter)
        started = time.perf_counter()
        sent = 0
        while sent < loops:
            count = min(BURST, loops - sent)
            for i in range(count):
                ref.tell_nowait(i)
            marker = Countdown(1)
            ref.tell_nowait(marker)
            await marker.done.wait()
            sent += count
        return time.perf_counter() - started


async def _ask(loops: int) -> list[float]:
    latencies: list[float] = []
    async with open_actor_system(name="bench") as system:
        ref = await system.spawn(_Echo)
        await ref.ask(-1)
        for i in range(loops):
            started = time.perf_counter()
            await ref.ask(i)
            latencies.append(time.perf_counter() - started)
    return latencies


async def _fanout(loops: int, actors: int) -> float:
    async with open_actor_system(name="bench") as system:
        refs = [await system.spawn(_Counter) for _ in range(actors)]
        elapsed = 0.0
        for _ in range(loops):
            wave = Countdown(actors)
            started = time.perf_counter()
            for ref in refs:
                await ref.tell(wave)
            await wave.done.wait()
            elapsed += time.perf_counter() - started
        return elapsed


async def _spawn_stop(loops: int) -> float:
    async with open_actor_system(name="bench") as system:
        started = time.perf_counter()
        refs = [await system.spawn(_Echo) for _ in range(loops)]
        for ref in refs:
            await ref.stop()
        return time.perf_counter() - started


async def _restart(loops: int) -> list[float]:
    latencies: list[float] = []
    # Enough restart intensity for every crash of the run; restarts are immediate.
    async with open_actor_system(
        name="bench", max_restarts=loops + 10, restart_window=math.inf
    ) as system:
        ref = await system.spawn(_Echo, name="crashy", restart=Restart.PERMANENT)
        await ref.ask(-1)
        for i in range(loops):
            started = time.perf_counter()
            await ref.tell(CRASH)
            await ref.ask(i)
            latencies.append(time.perf_counter() - started)
        if ref.statistics().restarts != loops:
            raise RuntimeError(f"expected {loops} restarts, saw {ref.statistics().restarts}")
    return latencies


class Ours(PeerAdapter):
    """mister_smith: supervised actors on Trio."""

    name: ClassVar[str] = "ours"
    distribution: ClassVar[str | None] = "mister-smith"
    concurrency: ClassVar[str] = "trio, one task per actor; one trio.run per measurement"

    def tell(self, loops: int) -> float:
        return trio.run(_tell, loops)

    def tell_burst(self, loops: int) -> float:
        return trio.run(_tell_burst, loops)

    def ask(self, loops: int) -> list[float]:
        return trio.run(_ask, loops)

    def fanout(self, loops: int, actors: int) -> float:
        return trio.run(_fanout, loops, actors)

    def spawn_stop(self, loops: int) -> float:
        return trio.run(_spawn_stop, loops)

    def restart(self, loops: int) -> list[float]:
        return trio.run(_restart, loops)
