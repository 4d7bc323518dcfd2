"""Running supervised children: one task and one cancel scope per run, its start
handshake, and handing its exit to the supervisor.

What a run's exit leads to is not decided here: every exit goes to the supervisor's
``on_exit`` (which asks its :class:`~mister_smith.supervision.SupervisorCore`). This
module only knows how to run a child once: wait out a delay or a circuit breaker, tell
the core it runs, forward ``task_status.started(value)``, announce the (re)start, and
describe how the run ended.
"""

from __future__ import annotations

import contextvars
import math
from collections.abc import Callable
from typing import Any

import trio

from ..errors import RecoveryAction
from ..events import ChildStarted, ComponentRecovered, EventBus
from ._breaker import CircuitBreaker, admit_restart
from ._child import Child, ChildState, _current_run, _Run
from ._core import ChildExit, SupervisorCore
from ._heartbeat_watch import HeartbeatWatch


class ChildRunner:
    """Runs the children of one supervisor in its nursery, each run in its own task.

    Args:
        core: The supervisor's core (told when a run begins running).
        events: Where starts and recoveries are announced.
        heartbeats: Watches the runs of children with a ``heartbeat_timeout``.
        on_exit: Called with each run and how it ended, from the run's own task,
            after the run's task has finished its child.
    """

    __slots__ = ("_clean", "_core", "_events", "_exiting", "_heartbeats", "_on_exit", "nursery")

    def __init__(
        self,
        core: SupervisorCore,
        events: EventBus,
        heartbeats: HeartbeatWatch,
        on_exit: Callable[[_Run, ChildExit], None],
    ) -> None:
        self._core = core
        self._events = events
        self._heartbeats = heartbeats
        self._on_exit = on_exit
        self.nursery: trio.Nursery | None = None
        """The supervisor's nursery, once it is open (see :meth:`open`)."""
        self._clean = contextvars.Context()
        """What restarts run in: the context the supervisor was opened in."""
        self._exiting: _Run | None = None
        """The run whose exit is being handled now (synchronously, in its task)."""

    def open(self, nursery: trio.Nursery) -> None:
        """Run children in ``nursery``; restarts run in a copy of the calling task's
        context (the supervisor's), with no current child in it."""
        self.nursery = nursery
        clean = contextvars.copy_context()
        clean.run(_current_run.set, None)
        self._clean = clean

    def spawn_clean(self, fn: Callable[..., Any], *args: Any, name: str) -> None:
        """Start ``fn(*args)`` in the supervisor's nursery, in a copy of the supervisor's
        context instead of the calling task's.

        A restart is decided in the task of the run that ended, and trio gives a new task
        a copy of the spawning task's context: without this, whatever the failed run
        left in its context variables (a trace, a budget, a request) would carry over
        into its restart, and through a group restart into its siblings.
        """
        assert self.nursery is not None
        self._clean.run(self.nursery.start_soon, fn, *args, name=name)

    async def start(self, child: Child, action: RecoveryAction | None) -> None:
        """Start ``child``'s first run (or, with ``action``, its run as a member of a
        restarted supervisor) and return once it has started."""
        assert self.nursery is not None
        # (child._run is set at once: visible to a concurrent stop before the task runs)
        run = self._next_run(child, action, 0.0, None)
        await self.nursery.start(self.run, run, name=child.name)

    def launch(
        self, child: Child, action: RecoveryAction | None, delay: float, gate: CircuitBreaker | None
    ) -> None:
        """Run ``child`` again in the background (retries, one-for-one restarts)."""
        assert self.nursery is not None
        run = self._next_run(child, action, delay, gate)
        exiting = self._exiting
        if (
            exiting is not None
            and exiting.child is child
            and contextvars.copy_context() == self._clean
        ):
            # Decided on the exit of this child's run, in that run's task, and the run
            # left nothing in that task's context: go on there.
            run.in_place = True
            # Only the supervisor stops it from the start: it never had a starter whose
            # cancellation could abort it (every shutdown cancels each run's scope).
            run.scope.shield = True
            exiting.successor = run
            return
        self.spawn_clean(self.run, run, name=f"{self._core.name}/{child.name}")

    async def relaunch(self, child: Child, action: RecoveryAction | None) -> None:
        """Run ``child`` again and wait until it has started (group restarts, in order,
        from a task started with :meth:`spawn_clean`: the run gets a copy of its
        context)."""
        assert self.nursery is not None
        run = self._next_run(child, action, 0.0, None)
        await self.nursery.start(self.run, run, name=f"{self._core.name}/{child.name}")

    @staticmethod
    def _next_run(
        child: Child, action: RecoveryAction | None, delay: float, gate: CircuitBreaker | None
    ) -> _Run:
        run = _Run(child, action=action, delay=delay, gate=gate)
        child._run = run
        child.state = ChildState.WAITING if delay > 0 or gate is not None else ChildState.STARTING
        return run

    async def run(
        self, run: _Run, *, task_status: trio.TaskStatus[Child] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """The task of a child's runs: run the child under the run's scope, then report
        its exit. An error before a first start has said it started propagates to the
        starter (the child is then not added); any other ending is an exit.

        A one-for-one restart or a retry decided on that exit runs in this same task
        (see :meth:`launch`), after a checkpoint: trio would charge a new task, a
        context copy and a scheduling round for what is the same child going on.
        """
        run.task_status = task_status
        del task_status  # held by the run until started: this frame lives as long as the child
        # One frame for all the runs of this task (a nested coroutine per run would cost
        # every child its own frame as long as it lives).
        while True:
            child = run.child
            child._run = run
            spec = child.spec
            # The task is the child's alone (its context a copy), so no token is kept for a
            # reset: it is cleared at the end instead, before what the exit starts.
            _current_run.set(run)
            error: BaseException | None = None
            first_start = run.action is None
            try:
                try:
                    with run.scope:
                        if run.delay > 0:
                            await trio.sleep(run.delay)
                        elif run.in_place:
                            await trio.lowlevel.checkpoint()  # a restart loop must not starve
                        if run.gate is not None:
                            # The breaker admits this restart; it counts as a probe success.
                            await admit_restart(run.gate)
                        now = trio.current_time()
                        self._core.run_started(child, now)
                        timeout = spec.heartbeat_timeout
                        if timeout is not None:
                            assert self.nursery is not None
                            self._heartbeats.watch(child.name, timeout, now, self.nursery)
                        if spec.accepts_task_status():
                            await spec.fn(*spec.args, task_status=_StatusForwarder(self, run))
                        else:
                            self.started(run, None)
                            await spec.fn(*spec.args)
                except Exception as exc:
                    if first_start and not run.status_sent:
                        raise
                    error = exc
                if not run.status_sent:
                    # Ended (failed, stopped or returned) before saying it started: let
                    # whoever waits on this run go on; the exit is handled below.
                    self.started(run, child.value, announce=False)
                cancelled = run.scope.cancelled_caught
                if run.injected is not None and error is None and cancelled:
                    error = run.injected  # failed from outside (injection, missed heartbeats)
            finally:
                _current_run.set(None)
                self._heartbeats.unwatch(child.name)
                run.finish()
            successor = self._exited(run, error, cancelled)
            if successor is None:
                return
            run = successor

    def _exited(self, run: _Run, error: BaseException | None, cancelled: bool) -> _Run | None:
        """Hand the run's exit to the supervisor; the run it decided this task runs next
        (a one-for-one restart or a retry, see :meth:`launch`), if any."""
        self._exiting = run
        try:
            self._on_exit(
                run,
                ChildExit(error, cancelled=error is None and cancelled, stopped=run.stop_requested),
            )
        finally:
            self._exiting = None
        successor, run.successor = run.successor, None
        return successor

    def started(self, run: _Run, value: Any, *, announce: bool = True) -> None:
        """The child's run says it has started (``task_status.started(value)``)."""
        child = run.child
        child.value = value
        if run.status_sent:
            return
        run.status_sent = True
        # From now on only the supervisor stops this run (so shutdown is ordered).
        # Until now the starter's cancellation could abort the start; if it already
        # has, trio keeps the task in the starter's nursery: stay cancellable then.
        if not run.in_place:
            if trio.current_effective_deadline() != -math.inf:
                run.scope.shield = True
            elif not run.scope.cancel_called:
                # Cancelled from outside the run: its starter gave up (or the nursery is
                # being cancelled). The run never becomes the supervisor's and ends with
                # that Cancelled, announcing no exit: announce no start either.
                announce = False
        if announce:
            # Announced once the child says it has started (``task_status``), so a
            # listener sees a child that is ready, with ``child.value`` set.
            now = trio.current_time()
            name = self._core.name
            self._events.emit(
                ChildStarted(source=name, timestamp=now, supervisor=name, child=child.name)
            )
            if run.action is not None:
                self._events.emit(
                    ComponentRecovered(
                        source=name,
                        timestamp=now,
                        supervisor=name,
                        child=child.name,
                        action=run.action,
                        restarts=child.restarts,
                    )
                )
        task_status = run.task_status
        run.task_status = trio.TASK_STATUS_IGNORED  # drop the reference
        task_status.started(child)


class _StatusForwarder:
    """The ``task_status`` a child receives; records the value and starts the child."""

    __slots__ = ("_run", "_runner")

    def __init__(self, runner: ChildRunner, run: _Run) -> None:
        self._runner = runner
        self._run = run

    def started(self, value: Any = None) -> None:
        self._runner.started(self._run, value)
