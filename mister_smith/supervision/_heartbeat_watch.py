"""A supervisor's heartbeat watch: a task, started with the first watched child, that
reports children silent past their ``heartbeat_timeout``, and how such a child fails."""

from __future__ import annotations

import math
from collections.abc import Callable

import trio

from ..errors import HeartbeatTimeout
from ..events import EventBus, HeartbeatMissed
from ._child import Child
from ._detector import FailureDetector


class HeartbeatWatch:
    """Watches the children that declare a ``heartbeat_timeout``.

    Bookkeeping is the pure :class:`FailureDetector`; this adds the one task that wakes
    at the earliest deadline. The task starts (in the supervisor's nursery) when the
    first child is watched, so a supervisor whose children send no heartbeats runs no
    extra task; :meth:`close` ends it.

    Args:
        on_silent: Called with a child's name and how long it has been silent, once,
            when it misses its deadline (the child is no longer watched then).
        name: The task's name (for debugging).
    """

    __slots__ = ("_changed", "_detector", "_name", "_on_silent", "_scope")

    def __init__(self, on_silent: Callable[[str, float], object], *, name: str) -> None:
        self._detector = FailureDetector()
        self._on_silent = on_silent
        self._name = name
        self._changed: trio.Event | None = None
        self._scope: trio.CancelScope | None = None

    def watch(self, child: str, timeout: float, now: float, nursery: trio.Nursery) -> None:
        """Start watching ``child`` (a first heartbeat at ``now``); starts the task in
        ``nursery`` if it is not running yet."""
        self._detector.watch(child, timeout, now)
        if self._scope is None:
            self._scope = trio.CancelScope()
            nursery.start_soon(self._run, self._scope, name=self._name)
        elif self._changed is not None:
            self._changed.set()

    def unwatch(self, child: str) -> None:
        """Stop watching ``child`` (it exited)."""
        self._detector.unwatch(child)

    def heartbeat(self, child: str, now: float) -> None:
        """``child`` is alive at ``now`` (ignored when it is not watched)."""
        self._detector.heartbeat(child, now)

    def close(self) -> None:
        """End the task (the supervisor is closing)."""
        if self._scope is None:
            self._scope = trio.CancelScope()  # a watch from now on starts nothing
        self._scope.cancel()

    async def _run(self, scope: trio.CancelScope) -> None:
        detector = self._detector
        with scope:
            while True:
                deadline = detector.next_deadline()
                changed = self._changed = trio.Event()
                with trio.move_on_at(math.inf if deadline is None else deadline):
                    await changed.wait()
                now = trio.current_time()
                for child in detector.expired(now):
                    silent = detector.silent_for(child, now)
                    detector.unwatch(child)
                    self._on_silent(str(child), silent)


def fail_silent(child: Child, silent: float, supervisor: str, events: EventBus) -> None:
    """Fail ``child``, silent for ``silent`` seconds, from outside: announce
    ``HeartbeatMissed`` and end its run with ``HeartbeatTimeout`` (if it still runs)."""
    run = child._run
    if run is None or run.finished:
        return
    events.emit(HeartbeatMissed(source=supervisor, child=child.name, silent_for=silent))
    run.injected = HeartbeatTimeout(
        f"child {child.name!r} of {supervisor!r} missed its heartbeats (silent for {silent:.3g} s)"
    )
    run.scope.cancel()
