"""pykka: ``ThreadingActor``, one OS thread and one unbounded queue per actor.

Natural use from plain (non-async) code: ``Actor.start()`` returns a ref once the
actor's thread is running, ``ref.tell`` enqueues, ``ref.ask`` blocks on a future,
``ref.stop()`` blocks until the actor has stopped. Completion of a tell or fan-out run is
signalled from the actor threads through a ``threading.Event``.

Spawn + stop is capped at 1,000 actors per run: every pykka actor is an OS thread, and
all of them are alive at once before the stops. Restart is not available: pykka has no
supervision; an exception from a told message stops the actor for good
(``on_failure`` is a hook, not a restart) and a stopped actor cannot be started again.
"""

# mypy: disallow-subclassing-any=False

from __future__ import annotations

import threading
import time
from typing import Any, ClassVar

import pykka  # type: ignore[import-not-found, unused-ignore]

from ._model import BURST, PeerAdapter

WAIT = 60.0
"""Seconds to wait for completion before failing the run (the runner's timeout is lower)."""


class _Countdown:
    __slots__ = ("done", "lock", "remaining")

    def __init__(self, remaining: int) -> None:
        self.remaining = remaining
        self.lock = threading.Lock()
        self.done = threading.Event()

    def hit(self) -> None:
        with self.lock:
            self.remaining -= 1
            if self.remaining == 0:
                self.done.set()


class _Counter(pykka.ThreadingActor):  # type: ignore[misc, unused-ignore]
    def __init__(self, target: int = 0, done: threading.Event | None = None) -> None:
        super().__init__()
        self.target = target
        self.done = done
        self.count = 0

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, _Countdown):
            message.hit()
            return None
        self.count += 1
        if self.count == self.target and self.done is not None:
            self.done.set()
        return None


class _Echo(pykka.ThreadingActor):  # type: ignore[misc, unused-ignore]
    def on_receive(self, message: Any) -> Any:
        return message


def _wait(event: threading.Event) -> None:
    if not event.wait(WAIT):
        raise TimeoutError(f"pykka actors did not finish within {WAIT} s")


class Pykka(PeerAdapter):
    """pykka threading actors."""

    name: ClassVar[str] = "pykka"
    distribution: ClassVar[str | None] = "pykka"
    concurrency: ClassVar[str] = "threads: one OS thread and queue per ThreadingActor"
    unsupported: ClassVar[dict[str, str]] = {
        "restart": (
            "no supervision: an exception from a told message stops a pykka actor for "
            "good, and stopped actors cannot be restarted"
        ),
    }
    caps: ClassVar[dict[str, tuple[int, str]]] = {
        "spawn_stop": (1_000, "one OS thread per actor"),
    }

    def tell(self, loops: int) -> float:
        done = threading.Event()
        ref = _Counter.start(loops, done)
        try:
            started = time.perf_counter()
            for i in range(loops):
                ref.tell(i)
            _wait(done)
            return time.perf_counter() - started
        finally:
            ref.stop()

    def tell_burst(self, loops: int) -> float:
        ref = _Counter.start()
        try:
            started = time.perf_counter()
            sent = 0
            while sent < loops:
                count = min(BURST, loops - sent)
                for i in range(count):
                    ref.tell(i)
                marker = _Countdown(1)
                ref.tell(marker)
                _wait(marker.done)
                sent += count
            return time.perf_counter() - started
        finally:
            ref.stop()

    def ask(self, loops: int) -> list[float]:
        ref = _Echo.start()
        latencies: list[float] = []
        try:
            ref.ask(-1)
            for i in range(loops):
                started = time.perf_counter()
                ref.ask(i)
                latencies.append(time.perf_counter() - started)
        finally:
            ref.stop()
        return latencies

    def fanout(self, loops: int, actors: int) -> float:
        refs = [_Counter.start() for _ in range(actors)]
        elapsed = 0.0
        try:
            for _ in range(loops):
                wave = _Countdown(actors)
                started = time.perf_counter()
                for ref in refs:
                    ref.tell(wave)
                _wait(wave.done)
                elapsed += time.perf_counter() - started
        finally:
            pykka.ActorRegistry.stop_all()
        return elapsed

    def spawn_stop(self, loops: int) -> float:
        started = time.perf_counter()
        refs = [_Echo.start() for _ in range(loops)]
        for ref in refs:
            ref.stop()
        return time.perf_counter() - started
