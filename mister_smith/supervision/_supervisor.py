"""The supervisor's Trio shell: its lifecycle, and carrying out what its core decides.

What to decide lives in :class:`~mister_smith.supervision.SupervisorCore`; running one
child is :class:`~mister_smith.supervision._running.ChildRunner`'s job. This module
opens and closes the supervisor (``async with Supervisor(...)``), adds and removes
children, feeds the core each exit, and carries out its outcome: run again (directly,
or as a group under ``OneForAll`` / ``RestForOne``, see ``_group_restart``), remove,
give up. Stopping is in ``_shutdown``, missed heartbeats in ``_heartbeat_watch``; what
is read of a supervisor (options, state, counters) in ``_view``, and starting a nested
supervisor in ``_nested``: both are bases of :class:`Supervisor`.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from types import TracebackType
from typing import Any, Self

import attrs
import trio

from ..errors import RecoveryAction, SupervisionError, classify_error
from ..events import EventBus, SupervisorStopped
from ..types import Restart
from ._breaker import CircuitBreaker, failure_opens, record_run_failure
from ._child import (
    Child,
    ChildEnd,
    ChildSpec,
    ChildState,
    RecoveryPolicy,
    _current_run,
    _Run,
    spec_of_call,
    still_listed,
)
from ._config import SupervisorConfig
from ._core import ChildExit, GiveUp, RemoveChild, RunAgain, Settle, SupervisorCore, SupervisorState
from ._decision import EscalateFailure, RestartChild
from ._give_up import raise_give_up
from ._group_restart import GroupRestarts
from ._heartbeat_watch import HeartbeatWatch, fail_silent
from ._intensity import RestartLimit
from ._nested import NestedSupervisors
from ._running import ChildRunner
from ._shutdown import grace_shield, report_outliving, shutdown_deadline, stop_all, stop_run

logger = logging.getLogger("mister_smith.supervision")


class Supervisor(NestedSupervisors):
    """Supervises async children in its own Trio nursery.

    Use it as ``async with Supervisor(config) as sup:`` (or :func:`open_supervisor`).
    Each child runs in its own task under its own cancel scope; when it exits the
    supervisor asks its :class:`SupervisorCore` what to do and carries it out (retry,
    restart per strategy, reload, circuit breaker, failover, ignore, stop the child,
    give up), announcing a :class:`~mister_smith.events.SupervisionDecision`.

    As with a nursery, leaving the ``async with`` body waits for the children to end
    (with ``keep_alive`` it waits until :meth:`stop` or cancellation instead, for
    dynamic children). Cancelling the enclosing scope, an error in the body, or
    ``stop()`` shut the children down in reverse start order, each within its
    ``shutdown_timeout``. If the supervisor gives up it stops its children and raises
    :class:`~mister_smith.errors.RestartIntensityExceeded` or
    :class:`~mister_smith.errors.EscalatedError` (its message names the root cause)
    from the ``async with``.

    Args:
        config: Its options (default: ``SupervisorConfig()``).
        events: The event bus for decisions (default: a private one).
        children: Child specs started, in order, when it opens.
        reload: Called before restarting after a ``Reload`` decision.
        breaker_factory: Makes the circuit breaker for a child whose recovery is
            ``CircuitBreaker`` and that declares none (default: 5 failures, 60 s).
        rng: Source of backoff jitter (for reproducible tests).
        on_child_removed: Called when a child leaves for good (not on shutdown).
    """

    def __init__(
        self,
        config: SupervisorConfig | None = None,
        *,
        events: EventBus | None = None,
        children: Sequence[ChildSpec] = (),
        reload: Callable[[], Awaitable[object]] | None = None,
        breaker_factory: Callable[[str], CircuitBreaker] | None = None,
        rng: random.Random | None = None,
        on_child_removed: Callable[[Child], object] | None = None,
    ) -> None:
        self._core = SupervisorCore(SupervisorConfig() if config is None else config)
        self.events = EventBus() if events is None else events
        self._initial_children = children
        self._reload = reload
        self._breaker_factory = breaker_factory or self._default_breaker
        self._rng = rng or random.Random()
        self._on_child_removed = on_child_removed
        self._heartbeats = HeartbeatWatch(self._on_silent, name=f"{self.name}:heartbeats")
        self._runner = ChildRunner(self._core, self.events, self._heartbeats, self._on_exit)
        self._nursery: trio.Nursery | None = None
        self._nursery_manager: Any = None
        self._body_task: trio.lowlevel.Task | None = None
        self._stop_requested = trio.Event()
        self._groups = GroupRestarts(self, reload)
        self._idle = trio.Event()
        self._cut: list[tuple[_Run, float]] = []
        """Runs a bounded shutdown cut short while they were stopping (see
        :func:`~._shutdown.report_outliving`)."""

    def _default_breaker(self, name: str) -> CircuitBreaker:
        return CircuitBreaker(name, events=self.events)

    def _nested_supervisor(
        self,
        config: SupervisorConfig,
        children: Sequence[ChildSpec],
        on_child_removed: Callable[[Child], object] | None,
    ) -> Self:
        return type(self)(
            config,
            events=self.events,
            children=children,
            reload=self._reload,
            breaker_factory=self._breaker_factory,
            on_child_removed=on_child_removed,
        )

    # -- public API ---------------------------------------------------------------------

    async def start_child(
        self,
        fn: Callable[..., Awaitable[object]] | ChildSpec,
        *args: Any,
        name: str | None = None,
        restart: Restart | None = None,
        shutdown_timeout: float | None = None,
        recovery: RecoveryPolicy | None = None,
        fallback: ChildSpec | Callable[..., Awaitable[object]] | None = None,
        breaker: CircuitBreaker | None = None,
        heartbeat_timeout: float | None = None,
        restart_limit: RestartLimit | None = None,
    ) -> Child:
        """Start a child and return its handle once it has started.

        If ``fn`` accepts ``task_status``, this returns when it calls
        ``task_status.started(value)`` (``value`` is kept as ``child.value``); an error
        raised before that propagates here and the child is not added. Passing a
        :class:`ChildSpec` instead of ``fn`` uses it as is.

        Raises:
            ValueError: the name is already taken.
            SupervisionError: the supervisor is stopping or has failed.
        """
        options: dict[str, Any] = {
            "name": name,
            "restart": restart,
            "shutdown_timeout": shutdown_timeout,
            "recovery": recovery,
            "fallback": fallback,
            "breaker": breaker,
            "heartbeat_timeout": heartbeat_timeout,
            "restart_limit": restart_limit,
        }
        return await self._start_spec(spec_of_call(fn, args, options), None)

    async def _start_spec(self, spec: ChildSpec, action: RecoveryAction | None) -> Child:
        """Add and start a child. With ``action`` (a member started again because this
        supervisor was restarted) a failure before it has started is handled like any
        exit of it (its recovery, its restart budget) instead of raised here."""
        if self._core.halted() or self._nursery is None:
            raise SupervisionError(f"supervisor {self.name!r} is not accepting children")
        child = self._add_child(spec)
        try:
            await self._runner.start(child, action)
        except BaseException:
            self._discard(child, ChildEnd.FAILED)
            raise
        return child

    async def stop_child(self, child: Child | str) -> None:
        """Stop ``child`` for good (it is not restarted) and remove it."""
        if isinstance(child, str):
            child = self.child(child)
        if child.supervisor is not self:
            raise ValueError(f"{child!r} does not belong to supervisor {self.name!r}")
        child.restart = Restart.TEMPORARY
        try:
            await stop_run(child, self.name, self.events)  # no wrapper: one frame less
        finally:
            # Even if our caller is cancelled meanwhile, the child is gone for good: its
            # run was asked to stop and its exit makes no decision.
            self._discard(child)
            child.state = ChildState.STOPPED

    async def stop(self, *, timeout: float | None = None) -> None:
        """Shut down: stop the children in reverse start order, then end the supervisor.

        Each child gets its ``shutdown_timeout`` (see :func:`shutdown_grace`); the
        whole shutdown is bounded by the sum of those, or by ``timeout`` when given
        (children not stopped by then are cancelled at once). Idempotent.

        Called from the task running the ``async with`` body, it returns there and the
        block then exits at once. Called from any other task, it also cancels that body
        (the owner is being shut down), as ``nursery.cancel_scope.cancel()`` would.

        Raises:
            ValueError: ``timeout`` is negative or NaN (nothing was stopped).
        """
        deadline = shutdown_deadline(timeout)  # (refuses a bad timeout before anything)
        if self._nursery is None:
            return
        if not self._core.halted():
            self._core.state = SupervisorState.STOPPING
            self._stop_requested.set()
            with trio.CancelScope(shield=True, deadline=deadline):
                await self._shutdown_children()
            self._emit_stopped("shutdown")
        if trio.lowlevel.current_task() is not self._body_task:
            self._nursery.cancel_scope.cancel()
        await trio.lowlevel.checkpoint()

    # -- lifecycle ----------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        """Open its nursery, start the heartbeat watch and the initial children."""
        if self._nursery_manager is not None:
            raise RuntimeError(f"supervisor {self.name!r} was already opened")
        self._nursery_manager = trio.open_nursery()
        nursery = await self._nursery_manager.__aenter__()
        self._nursery = nursery
        self._runner.open(nursery)
        outer = _current_run.get()
        # Opened by a restart of its own child (its parent ran it again): its children
        # were running before, and start again as restarted members.
        again = None if outer is None or outer.action is None else RecoveryAction.RESTART
        try:
            for spec in still_listed(self._initial_children):
                if self._core.failure is not None and outer is not None:
                    # A child that had started failed and this supervisor gave up while
                    # still starting the rest. It did start (OTP: init returned, then
                    # the exit arrived), so it reports started and its parent handles
                    # the give-up like any failure, instead of taking it for a start
                    # failure of its own child.
                    break
                await self._start_spec(spec, again)
        except BaseException as exc:
            await self.__aexit__(type(exc), exc, exc.__traceback__)
            raise
        self._body_task = trio.lowlevel.current_task()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        """Wait for the children (or for :meth:`stop` with ``keep_alive``); on an error
        in the body, shut them down; then close the nursery and surface a give-up."""
        core = self._core
        error = exc
        if error is None:
            try:
                if not core.halted():
                    if self.config.keep_alive:
                        await self._stop_requested.wait()
                    else:
                        self._check_idle()
                        await self._idle.wait()
                if not core.halted():
                    core.state = SupervisorState.STOPPED
                    self._emit_stopped("normal")
            except BaseException as raised:
                error = raised
        if error is not None and not core.halted():
            core.state = SupervisorState.STOPPING
            with grace_shield():
                await self._shutdown_children()
            self._emit_stopped("shutdown")
        self._heartbeats.close()
        if self._cut:  # a bounded shutdown left children running: they may outlive it
            await report_outliving(self._cut, self.name, self.events)
        try:
            handled: bool = await self._nursery_manager.__aexit__(
                None if error is None else type(error),
                error,
                None if error is None else error.__traceback__,
            )
        except BaseExceptionGroup as group:
            raise_give_up(self._core.failure, group, self.name)
            raise
        finally:
            if core.state is not SupervisorState.FAILED:
                core.state = SupervisorState.STOPPED
        if error is not None and error is not exc and not handled:
            raise error
        return handled

    # -- children bookkeeping ---------------------------------------------------------

    def _add_child(self, spec: ChildSpec) -> Child:
        config = self.config

        def make(name: str) -> Child:
            return Child(
                name=name,
                spec=spec,
                supervisor=self,
                restart=config.default_restart if spec.restart is None else spec.restart,
                shutdown_timeout=config.shutdown_timeout
                if spec.shutdown_timeout is None
                else spec.shutdown_timeout,
            )

        child = self._core.add(spec, make)
        if self._idle.is_set():
            self._idle = trio.Event()
        return child

    def _discard(self, child: Child, reason: ChildEnd = ChildEnd.STOPPED) -> None:
        if self._core.discard(child, reason):
            self._heartbeats.unwatch(child.name)
            if self._on_child_removed is not None and not self._core.halted():
                try:
                    self._on_child_removed(child)
                except Exception:
                    logger.exception("on_child_removed callback of %s failed", self.name)
            child._terminate(reason)
        self._check_idle()

    def _check_idle(self) -> None:
        if not len(self._core) and not self._groups:
            self._idle.set()

    def _heartbeat(self, child: Child) -> None:
        self._heartbeats.heartbeat(child.name, trio.current_time())

    def _breaker_for(self, child: Child) -> CircuitBreaker:
        if child.spec.breaker is not None:
            return child.spec.breaker
        breaker = self._breaker_factory(f"{self.name}/{child.name}")
        child.spec = attrs.evolve(child.spec, breaker=breaker)
        return breaker

    # -- carrying out decisions -----------------------------------------------------------

    def _on_exit(self, run: _Run, exit: ChildExit) -> None:
        child = run.child
        core = self._core
        now = trio.current_time()
        # Announced before deciding: a listener sees the supervisor as it was.
        for event in core.exit_events(child, exit, now):
            self.events.emit(event)
        decided, outcome = core.decide(
            child,
            exit,
            now=now,
            rand=self._rng.random(),
            breaker_trips=exit.error is not None
            and child.spec.breaker is not None
            and failure_opens(child.spec.breaker, now - child.started_at),
            current=child._run is run,
        )
        if decided is not None:
            self.events.emit(decided)
            if logger.isEnabledFor(logging.INFO):
                logger.info(
                    "supervisor %s: child %s exited (%s); decision %s",
                    self.name,
                    child.name,
                    "normal" if exit.error is None else repr(exit.error),
                    decided.action.value,
                )
        if isinstance(outcome, Settle):
            return
        core.apply(child, outcome)
        if isinstance(outcome, GiveUp):
            self._give_up_soon()
        elif isinstance(outcome, RemoveChild):
            if outcome.reason is ChildEnd.RESTART_BUDGET:
                logger.warning(
                    "supervisor %s: child %s exceeded its restart budget; stopped for good",
                    self.name,
                    child.name,
                )
            self._discard(child, outcome.reason)
        else:
            self._run_again(child, outcome)

    def _run_again(self, child: Child, outcome: RunAgain) -> None:
        assert self._nursery is not None
        decision = outcome.decision
        gate: CircuitBreaker | None = None
        if outcome.gated:
            gate = self._breaker_for(child)
            record_run_failure(gate, trio.current_time() - child.started_at)
        if outcome.group is None:  # a retry, or a one-for-one restart: this child only
            self._runner.launch(child, decision.action, decision.delay, gate)
            return
        assert isinstance(decision, RestartChild)  # a retry runs in place, never as a group
        self._groups.schedule(self._runner.spawn_clean, child, list(outcome.group), decision, gate)

    def _reload_failed(self, child: Child, error: Exception) -> None:
        """The reload hook raised: the supervisor escalates that error."""
        escalate = EscalateFailure(classify_error(error).severity)
        self.events.emit(self._core.decision_event(child, error, escalate))
        self._core.give_up(child, error, escalate)
        self._give_up_soon()

    # -- stopping and failing -------------------------------------------------------------

    async def _stop_run(self, child: Child) -> None:
        await stop_run(child, self.name, self.events)

    async def _shutdown_children(self) -> None:
        self._groups.cancel_waiting()
        await stop_all(self._core.children(), self.name, self.events, self._cut)

    def _on_silent(self, name: str, silent: float) -> None:
        """Child ``name`` missed its heartbeats: fail it from outside."""
        child = self._core.get(name)
        if child is not None:
            fail_silent(child, silent, self.name, self.events)

    def _give_up_soon(self) -> None:
        assert self._nursery is not None
        self._nursery.start_soon(self._give_up, name=f"{self.name}:give-up")

    async def _give_up(self) -> None:
        failure = self._core.failure
        assert failure is not None
        # Shielded, but bounded by escalation_timeout: the parent acts on this failure
        # only once this supervisor has exited, so its children get that long to stop.
        timeout = self.escalation_timeout
        deadline = shutdown_deadline(timeout)
        with trio.CancelScope(shield=True, deadline=deadline):
            await self._shutdown_children()
        self._emit_stopped(repr(failure))
        raise failure

    def _emit_stopped(self, reason: str) -> None:
        self.events.emit(SupervisorStopped(source=self.name, supervisor=self.name, reason=reason))
