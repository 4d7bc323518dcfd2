"""Thespian on ``simpleSystemBase``: every actor in this thread, messages run in turn.

Natural use of that base: a fresh ``ActorSystem("simpleSystemBase", transientUnique=
True)`` per measured run; ``createActor`` from outside, ``asys.tell`` / ``asys.ask``,
stop by telling ``ActorExitRequest()``. This base delivers synchronously: ``tell``
returns once every message it caused has been handled, so completion needs no signal
(each run still checks the count). Thespian's multi-process bases are not used: they
would measure pickling and OS IPC rather than the actor layer.

Restart is not available: a handler exception does not crash a Thespian actor. The
system retries the message once, then returns it to its sender as a ``PoisonMessage``,
and the same instance keeps running; Thespian's supervision (a parent told
``ChildActorExited``) reacts to exits only, so there is no crash-and-restart to time.
"""

# mypy: disallow-subclassing-any=False

from __future__ import annotations

import time
from typing import Any, ClassVar

from thespian.actors import (  # type: ignore[import-not-found, import-untyped, unused-ignore]
    Actor,
    ActorExitRequest,
    ActorSystem,
)

from ._model import PeerAdapter


class _Countdown:
    __slots__ = ("remaining",)

    def __init__(self, remaining: int) -> None:
        self.remaining = remaining


class _Counter(Actor):  # type: ignore[misc, unused-ignore]
    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def receiveMessage(self, message: Any, sender: Any) -> None:
        if isinstance(message, _Countdown):
            message.remaining -= 1
        elif isinstance(message, int):
            self.count += 1
        elif message == "count?":
            self.send(sender, self.count)


class _Echo(Actor):  # type: ignore[misc, unused-ignore]
    def receiveMessage(self, message: Any, sender: Any) -> None:
        if isinstance(message, int):
            self.send(sender, message)


def _system() -> Any:
    return ActorSystem("simpleSystemBase", logDefs=False, transientUnique=True)


class Thespian(PeerAdapter):
    """Thespian actors on the in-process simpleSystemBase."""

    name: ClassVar[str] = "thespian"
    distribution: ClassVar[str | None] = "thespian"
    concurrency: ClassVar[str] = (
        "simpleSystemBase: all actors in the caller's thread, each tell runs to completion"
    )
    unsupported: ClassVar[dict[str, str]] = {
        "tell_burst": "ActorSystem.tell is its only send, already measured in the tell row",
        "restart": (
            "a handler exception does not crash a Thespian actor (the message is retried, "
            "then returned as PoisonMessage; the same instance goes on), so nothing restarts"
        ),
    }

    def tell(self, loops: int) -> float:
        asys = _system()
        try:
            counter = asys.createActor(_Counter)
            started = time.perf_counter()
            for i in range(loops):
                asys.tell(counter, i)
            elapsed = time.perf_counter() - started
            count = asys.ask(counter, "count?")
            if count != loops:
                raise RuntimeError(f"thespian actor handled {count!r} of {loops} messages")
            return elapsed
        finally:
            asys.shutdown()

    def ask(self, loops: int) -> list[float]:
        asys = _system()
        latencies: list[float] = []
        try:
            echo = asys.createActor(_Echo)
            asys.ask(echo, -1)
            for i in range(loops):
                started = time.perf_counter()
                reply = asys.ask(echo, i)
                latencies.append(time.perf_counter() - started)
                if reply != i:
                    raise RuntimeError(f"thespian echo answered {reply!r} to {i!r}")
        finally:
            asys.shutdown()
        return latencies

    def fanout(self, loops: int, actors: int) -> float:
        asys = _system()
        try:
            counters = [asys.createActor(_Counter) for _ in range(actors)]
            elapsed = 0.0
            for _ in range(loops):
                wave = _Countdown(actors)
                started = time.perf_counter()
                for counter in counters:
                    asys.tell(counter, wave)
                elapsed += time.perf_counter() - started
                if wave.remaining != 0:
                    raise RuntimeError(f"{wave.remaining} thespian actors missed a wave")
            return elapsed
        finally:
            asys.shutdown()

    def spawn_stop(self, loops: int) -> float:
        asys = _system()
        try:
            started = time.perf_counter()
            addresses = [asys.createActor(_Echo) for _ in range(loops)]
            for address in addresses:
                asys.tell(address, ActorExitRequest())
            return time.perf_counter() - started
        finally:
            asys.shutdown()
