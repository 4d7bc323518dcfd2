"""The supervisor: owns one Trio nursery and carries out recovery decisions."""

from __future__ import annotations

import enum
import logging
import math
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import attrs
import trio

from ..errors import (
    EscalatedError,
    HeartbeatTimeout,
    RecoveryAction,
    RestartIntensityExceeded,
    SupervisionError,
    classify_error,
    root_cause,
    unwrap_single,
)
from ..events import (
    ChildExited,
    ChildStarted,
    ComponentRecovered,
    ErrorOccurred,
    EventBus,
    ExitKind,
    HeartbeatMissed,
    ShutdownStuck,
    SupervisionDecision,
    SupervisorStopped,
)
from ..types import Restart
from ._breaker import BreakerState, CircuitBreaker
from ._child import (
    Child,
    ChildEnd,
    ChildSpec,
    ChildState,
    RecoveryPolicy,
    _current_run,
    _Run,
)
from ._decision import Decision, SupervisorPolicy
from ._detector import FailureDetector
from ._intensity import Backoff, RestartLimit
from ._strategy import SupervisionStrategyLike, as_strategy

logger = logging.getLogger("mister_smith.supervision")

_STUCK_MARGIN = 0.01
"""Extra seconds past a child's grace deadline before it is reported stuck."""


class Inherit(enum.Enum):
    """The type of :data:`INHERIT`."""

    INHERIT = "inherit"


INHERIT = Inherit.INHERIT
"""Default of :meth:`Supervisor.start_supervisor` options: take the parent's value
(``None`` is a value there: it turns the bound off)."""


class SupervisorState:
    """Names of a supervisor's states (plain strings, for snapshots)."""

    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"
    FAILED = "failed"


@attrs.frozen
class SupervisorStatistics:
    """Counters of one supervisor."""

    name: str
    state: str
    children: int
    restarts: int
    failures: int
    decisions: int
    stopped_children: int = 0
    """Children stopped for good because they spent their own restart budget."""


class Supervisor:
    """Supervises async children in its own Trio nursery.

    Create one with :func:`open_supervisor`. Each child runs in its own task under
    its own cancel scope; when it exits the supervisor asks the child's recovery
    policy what to do, carries it out (retry, restart per strategy, reload, circuit
    breaker, failover, ignore, escalate), and announces a
    :class:`~mister_smith.events.SupervisionDecision`.
    """

    def __init__(
        self,
        name: str,
        *,
        strategy: SupervisionStrategyLike,
        max_restarts: int | None,
        restart_window: float,
        backoff: Backoff | None,
        events: EventBus,
        default_restart: Restart,
        shutdown_timeout: float,
        reload: Callable[[], Awaitable[object]] | None,
        breaker_factory: Callable[[str], CircuitBreaker] | None,
        rng: random.Random | None,
        on_child_removed: Callable[[Child], object] | None = None,
        child_limit: RestartLimit | None = None,
        escalation_timeout: float | None = None,
    ) -> None:
        if max_restarts is not None and max_restarts < 0:
            raise ValueError(f"max_restarts must be >= 0 or None, got {max_restarts!r}")
        if not restart_window > 0:
            raise ValueError(f"restart_window must be > 0, got {restart_window!r}")
        if not shutdown_timeout >= 0:
            raise ValueError(f"shutdown_timeout must be >= 0, got {shutdown_timeout!r}")
        if escalation_timeout is not None and not escalation_timeout > 0:
            raise ValueError(f"escalation_timeout must be > 0, got {escalation_timeout!r}")
        if child_limit is not None and not isinstance(child_limit, RestartLimit):
            raise TypeError(f"child_limit must be a RestartLimit, got {child_limit!r}")
        self.name = name
        self.strategy = as_strategy(strategy)
        self.max_restarts = max_restarts
        self.restart_window = restart_window
        self.events = events
        self.default_restart = default_restart
        self.shutdown_timeout = shutdown_timeout
        self._reload = reload
        self._breaker_factory = breaker_factory
        self._rng = rng or random.Random()
        self._on_child_removed = on_child_removed
        self.child_limit = child_limit
        self.backoff = backoff
        self.escalation_timeout = escalation_timeout
        self._policy = SupervisorPolicy(
            None if max_restarts is None else RestartLimit(max_restarts, restart_window).counter(),
            backoff,
            child_limit,
        )
        self._detector = FailureDetector()
        self._detector_changed = trio.Event()
        self._nursery: trio.Nursery | None = None
        self._body_task: trio.lowlevel.Task | None = None
        self._stop_requested = trio.Event()
        self._children: list[Child] = []
        self._by_name: dict[str, Child] = {}
        self._group_lock = trio.Lock()
        self._pending: list[_PendingGroup] = []
        self._idle = trio.Event()
        self._stopping = False
        self._failure: SupervisionError | None = None
        self._state = SupervisorState.RUNNING
        self._restarts = 0
        self._failures = 0
        self._decisions = 0
        self._stopped_children = 0
        self._name_counter = 0

    # -- public API -------------------------------------------------------------------

    @property
    def state(self) -> str:
        """``running``, ``stopping``, ``stopped`` or ``failed``."""
        return self._state

    def children(self) -> list[Child]:
        """The current children, in start order."""
        return list(self._children)

    @property
    def child_count(self) -> int:
        """How many children it holds now (without copying the list)."""
        return len(self._children)

    def child(self, name: str) -> Child:
        """The child called ``name``.

        Raises:
            LookupError: no such child.
        """
        try:
            return self._by_name[name]
        except KeyError:
            raise LookupError(f"supervisor {self.name!r} has no child {name!r}") from None

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
        if isinstance(fn, ChildSpec):
            options = {
                "name": name,
                "restart": restart,
                "shutdown_timeout": shutdown_timeout,
                "recovery": recovery,
                "fallback": fallback,
                "breaker": breaker,
                "heartbeat_timeout": heartbeat_timeout,
                "restart_limit": restart_limit,
            }
            given = sorted(key for key, value in options.items() if value is not None)
            if args or given:
                raise TypeError(
                    "pass either a ChildSpec or fn with its args and options, not both "
                    f"(got {'positional args' if args else ', '.join(given)})"
                )
            spec = fn
        else:
            spec = ChildSpec.of(
                fn,
                *args,
                name=name,
                restart=restart,
                shutdown_timeout=shutdown_timeout,
                recovery=recovery,
                fallback=fallback,
                breaker=breaker,
                heartbeat_timeout=heartbeat_timeout,
                restart_limit=restart_limit,
            )
        if self._stopping or self._nursery is None:
            raise SupervisionError(f"supervisor {self.name!r} is not accepting children")
        child = self._add_child(spec)
        run = _Run(child, action=None)
        child._run = run  # visible to a concurrent stop before the task first runs
        try:
            await self._nursery.start(self._run_child, run)
        except BaseException:
            self._discard(child, ChildEnd.FAILED)
            raise
        return child

    async def start_supervisor(
        self,
        name: str,
        *,
        strategy: SupervisionStrategyLike | None = None,
        max_restarts: int | Inherit | None = INHERIT,
        restart_window: float | None = None,
        backoff: Backoff | Inherit | None = INHERIT,
        child_limit: RestartLimit | Inherit | None = INHERIT,
        escalation_timeout: float | Inherit | None = INHERIT,
        children: Sequence[ChildSpec] = (),
        restart: Restart = Restart.PERMANENT,
        recovery: RecoveryPolicy | None = None,
        restart_limit: RestartLimit | None = None,
        shutdown_timeout: float | None = None,
        default_restart: Restart | None = None,
        on_child_removed: Callable[[Child], object] | None = None,
        on_terminated: Callable[[Child], object] | None = None,
        on_started: Callable[[Supervisor], object] | None = None,
    ) -> Supervisor:
        """Start a nested supervisor as a child and return it (once it is running).

        It shares this supervisor's event bus, reload hook and breaker factory; its
        strategy, intensity (``max_restarts``, ``restart_window``), ``backoff``,
        ``child_limit`` and ``escalation_timeout`` are this supervisor's unless given
        (``None`` turns a bound off). When it gives up (restart intensity exceeded, an
        escalation) that is one failure of a child of this supervisor: by default it is
        restarted (the errors' own ``Restart`` strategy), counted in this supervisor's
        intensity and in ``restart_limit``; pass ``recovery=RecoveryStrategy.Escalate()``
        to hand a failure further up at once. When it is restarted it starts the specs in
        ``children`` afresh (the sequence is read at each start, so a caller may keep it
        up to date) and ``child.value`` becomes the new supervisor; ``on_started`` is
        called with each new instance (the first included) once its ``children`` have
        started. ``on_child_removed`` is called when one of its children leaves it for
        good (not when it shuts down); ``on_terminated`` when it is itself gone for good.
        """
        child = await self.start_child(
            self._nested_runner(
                name,
                strategy=strategy,
                max_restarts=self.max_restarts if max_restarts is INHERIT else max_restarts,
                restart_window=restart_window,
                backoff=self.backoff if backoff is INHERIT else backoff,
                child_limit=self.child_limit if child_limit is INHERIT else child_limit,
                escalation_timeout=self.escalation_timeout
                if escalation_timeout is INHERIT
                else escalation_timeout,
                children=children,
                default_restart=default_restart,
                on_child_removed=on_child_removed,
                on_started=on_started,
            ),
            name=name,
            restart=restart,
            recovery=recovery,
            restart_limit=restart_limit,
            # A supervisor child is bounded by its own children's timeouts.
            shutdown_timeout=math.inf if shutdown_timeout is None else shutdown_timeout,
        )
        if on_terminated is not None:
            child.spec = attrs.evolve(child.spec, on_terminated=on_terminated)
        nested: Supervisor = child.value
        return nested

    def _nested_runner(
        self,
        name: str,
        *,
        strategy: SupervisionStrategyLike | None,
        max_restarts: int | None,
        restart_window: float | None,
        backoff: Backoff | None,
        child_limit: RestartLimit | None,
        escalation_timeout: float | None,
        children: Sequence[ChildSpec],
        default_restart: Restart | None,
        on_child_removed: Callable[[Child], object] | None,
        on_started: Callable[[Supervisor], object] | None,
    ) -> Callable[..., Awaitable[None]]:
        async def run_nested(
            *, task_status: trio.TaskStatus[Supervisor] = trio.TASK_STATUS_IGNORED
        ) -> None:
            async with open_supervisor(
                name,
                strategy=self.strategy if strategy is None else strategy,
                max_restarts=max_restarts,
                restart_window=self.restart_window if restart_window is None else restart_window,
                backoff=backoff,
                child_limit=child_limit,
                escalation_timeout=escalation_timeout,
                events=self.events,
                children=children,
                default_restart=self.default_restart
                if default_restart is None
                else default_restart,
                shutdown_timeout=self.shutdown_timeout,
                reload=self._reload,
                breaker_factory=self._breaker_factory,
                keep_alive=True,
                on_child_removed=on_child_removed,
            ) as nested:
                if on_started is not None:
                    on_started(nested)
                task_status.started(nested)

        run_nested.__name__ = name
        return run_nested

    def reconfigure(
        self,
        *,
        max_restarts: int | Inherit | None = INHERIT,
        restart_window: float | None = None,
        backoff: Backoff | Inherit | None = INHERIT,
        child_limit: RestartLimit | Inherit | None = INHERIT,
        escalation_timeout: float | Inherit | None = INHERIT,
        shutdown_timeout: float | None = None,
    ) -> None:
        """Change this supervisor's bounds while it runs; its children keep running.

        Options left out keep their value (``None`` turns ``max_restarts``,
        ``backoff``, ``child_limit`` or ``escalation_timeout`` off). Restarts already
        counted stay counted against the new limits; a child given a
        ``restart_limit`` of its own keeps it; ``shutdown_timeout`` applies to children
        started from now on that do not set their own.
        """
        new_max = self.max_restarts if max_restarts is INHERIT else max_restarts
        new_window = self.restart_window if restart_window is None else restart_window
        new_backoff = self.backoff if backoff is INHERIT else backoff
        new_limit = self.child_limit if child_limit is INHERIT else child_limit
        new_escalation = (
            self.escalation_timeout if escalation_timeout is INHERIT else escalation_timeout
        )
        if new_max is not None and new_max < 0:
            raise ValueError(f"max_restarts must be >= 0 or None, got {new_max!r}")
        if not new_window > 0:
            raise ValueError(f"restart_window must be > 0, got {new_window!r}")
        if new_escalation is not None and not new_escalation > 0:
            raise ValueError(f"escalation_timeout must be > 0, got {new_escalation!r}")
        if shutdown_timeout is not None and not shutdown_timeout >= 0:
            raise ValueError(f"shutdown_timeout must be >= 0, got {shutdown_timeout!r}")
        self._policy.reconfigure(
            intensity=None if new_max is None else RestartLimit(new_max, new_window),
            child_limit=new_limit,
            backoff=new_backoff,
        )
        self.max_restarts = new_max
        self.restart_window = new_window
        self.backoff = new_backoff
        self.child_limit = new_limit
        self.escalation_timeout = new_escalation
        if shutdown_timeout is not None:
            self.shutdown_timeout = shutdown_timeout

    async def stop_child(self, child: Child | str) -> None:
        """Stop ``child`` for good (it is not restarted) and remove it."""
        if isinstance(child, str):
            child = self.child(child)
        if child.supervisor is not self:
            raise ValueError(f"{child!r} does not belong to supervisor {self.name!r}")
        child.restart = Restart.TEMPORARY
        try:
            await self._stop_run(child)
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

        Called from the task running the ``async with open_supervisor(...)`` body, it
        returns there and the block then exits at once. Called from any other task, it
        also cancels that body (the owner is being shut down), as
        ``nursery.cancel_scope.cancel()`` would.
        """
        if self._nursery is None:
            return
        if not self._stopping:
            self._stopping = True
            self._state = SupervisorState.STOPPING
            self._stop_requested.set()
            deadline = math.inf if timeout is None else trio.current_time() + timeout
            with trio.CancelScope(shield=True, deadline=deadline):
                await self._shutdown_children()
            self._emit_stopped("shutdown")
        if trio.lowlevel.current_task() is not self._body_task:
            self._nursery.cancel_scope.cancel()
        await trio.lowlevel.checkpoint()

    def statistics(self) -> SupervisorStatistics:
        """Counters of this supervisor."""
        return SupervisorStatistics(
            name=self.name,
            state=self._state,
            children=len(self._children),
            restarts=self._restarts,
            failures=self._failures,
            decisions=self._decisions,
            stopped_children=self._stopped_children,
        )

    def shutdown_bound(self) -> float:
        """Upper bound in seconds of an orderly shutdown of this supervisor's subtree."""
        total = 0.0
        for child in self._children:
            nested = child.value
            if isinstance(nested, Supervisor):
                total += min(child.shutdown_timeout, nested.shutdown_bound()) + _STUCK_MARGIN
            else:
                total += child.shutdown_timeout + _STUCK_MARGIN
        return total

    def __repr__(self) -> str:
        return f"<Supervisor {self.name} {self._state} children={len(self._children)}>"

    # -- children bookkeeping ---------------------------------------------------------

    def _add_child(self, spec: ChildSpec) -> Child:
        name = spec.name
        if name is None:
            base = getattr(spec.fn, "__name__", "child")
            self._name_counter += 1
            name = f"{base}-{self._name_counter}"
            while name in self._by_name:
                self._name_counter += 1
                name = f"{base}-{self._name_counter}"
        elif name in self._by_name:
            raise ValueError(f"supervisor {self.name!r} already has a child named {name!r}")
        child = Child(
            name=name,
            spec=spec,
            supervisor=self,
            restart=self.default_restart if spec.restart is None else spec.restart,
            shutdown_timeout=self.shutdown_timeout
            if spec.shutdown_timeout is None
            else spec.shutdown_timeout,
        )
        self._children.append(child)
        self._by_name[name] = child
        self._idle = trio.Event() if self._idle.is_set() else self._idle
        return child

    def _discard(self, child: Child, reason: ChildEnd = ChildEnd.STOPPED) -> None:
        if self._by_name.get(child.name) is child:
            if child.end_reason is None:
                child.end_reason = reason  # readable by on_child_removed
            del self._by_name[child.name]
            self._children.remove(child)
            self._policy.child_removed(child.name)
            self._detector.unwatch(child.name)
            if self._on_child_removed is not None and not self._stopping:
                try:
                    self._on_child_removed(child)
                except Exception:
                    logger.exception("on_child_removed callback of %s failed", self.name)
            child._terminate(reason)
        self._check_idle()

    def _check_idle(self) -> None:
        if not self._children and not self._pending:
            self._idle.set()

    def _heartbeat(self, child: Child) -> None:
        self._detector.heartbeat(child.name, trio.current_time())

    def _breaker_for(self, child: Child) -> CircuitBreaker | None:
        if child.spec.breaker is not None:
            return child.spec.breaker
        if self._breaker_factory is None:
            return None
        breaker = self._breaker_factory(f"{self.name}/{child.name}")
        child.spec = attrs.evolve(child.spec, breaker=breaker)
        return breaker

    # -- running a child ----------------------------------------------------------------

    def _new_run(
        self, child: Child, action: RecoveryAction | None, delay: float, gate: CircuitBreaker | None
    ) -> _Run:
        run = _Run(child, action=action, delay=delay, gate=gate)
        child._run = run
        child.state = ChildState.WAITING if delay > 0 or gate is not None else ChildState.STARTING
        return run

    def _launch(
        self, child: Child, action: RecoveryAction | None, delay: float, gate: CircuitBreaker | None
    ) -> None:
        """Run ``child`` again in the background (in-place retries)."""
        assert self._nursery is not None
        run = self._new_run(child, action, delay, gate)
        self._nursery.start_soon(self._run_child, run, name=f"{self.name}/{child.name}")

    async def _relaunch(
        self, child: Child, action: RecoveryAction | None, delay: float, gate: CircuitBreaker | None
    ) -> None:
        """Run ``child`` again and wait until it has started (group restarts, in order)."""
        assert self._nursery is not None
        run = self._new_run(child, action, delay, gate)
        await self._nursery.start(self._run_child, run, name=f"{self.name}/{child.name}")

    async def _run_child(
        self, run: _Run, *, task_status: trio.TaskStatus[Child] = trio.TASK_STATUS_IGNORED
    ) -> None:
        child = run.child
        child._run = run
        spec = child.spec
        token = _current_run.set(run)
        error: BaseException | None = None
        first_start = run.action is None
        run.task_status = task_status

        try:
            try:
                with run.scope:
                    if run.delay > 0:
                        await trio.sleep(run.delay)
                    if run.gate is not None:
                        # The breaker admits this restart; it counts as a probe success.
                        await _admit(run.gate)
                    now = trio.current_time()
                    child.state = ChildState.RUNNING
                    if self._policy.tracks(child.name):
                        self._policy.child_started(child.name, now)
                    child.started_at = now
                    if spec.heartbeat_timeout is not None:
                        self._detector.watch(child.name, spec.heartbeat_timeout, now)
                        self._detector_changed.set()
                    if spec.accepts_task_status():
                        await spec.fn(*spec.args, task_status=_StatusForwarder(self, run))
                    else:
                        self._started(run, None)
                        await spec.fn(*spec.args)
            except Exception as exc:
                if first_start and not run.status_sent:
                    raise
                error = exc
            if not run.status_sent:
                # Ended (failed, stopped or returned) before saying it started: let
                # whoever waits on this run go on; the exit is handled below.
                self._started(run, child.value, announce=False)
            if run.injected is not None and error is None and run.scope.cancelled_caught:
                error = run.injected
            cancelled = error is None and run.scope.cancelled_caught
        finally:
            _current_run.reset(token)
            self._detector.unwatch(child.name)
            run.done.set()
        self._on_exit(run, error, cancelled)

    def _started(self, run: _Run, value: Any, *, announce: bool = True) -> None:
        """The child's run says it has started (``task_status.started(value)``)."""
        child = run.child
        child.value = value
        if run.status_sent:
            return
        run.status_sent = True
        # From now on only the supervisor stops this run (so shutdown is ordered).
        # Until now the starter's cancellation could abort the start; if it already
        # has, trio keeps the task in the starter's nursery: stay cancellable then.
        if trio.current_effective_deadline() != -math.inf:
            run.scope.shield = True
        if announce:
            # Announced once the child says it has started (``task_status``), so a
            # listener sees a child that is ready, with ``child.value`` set.
            self.events.emit(ChildStarted(source=self.name, supervisor=self.name, child=child.name))
            if run.action is not None:
                self.events.emit(
                    ComponentRecovered(
                        source=self.name,
                        supervisor=self.name,
                        child=child.name,
                        action=run.action,
                        restarts=child.restarts,
                    )
                )
        task_status = run.task_status
        run.task_status = trio.TASK_STATUS_IGNORED  # drop the reference
        task_status.started(child)

    # -- deciding -----------------------------------------------------------------------

    def _on_exit(self, run: _Run, error: BaseException | None, cancelled: bool) -> None:
        child = run.child
        if error is not None:
            exit_kind = ExitKind.FAILED
            error_type = type(unwrap_single(error)).__name__
        elif cancelled:
            exit_kind, error_type = ExitKind.CANCELLED, ""
        else:
            exit_kind, error_type = ExitKind.RETURNED, ""
        self.events.emit(
            ChildExited(
                source=self.name,
                supervisor=self.name,
                child=child.name,
                exit=exit_kind,
                error_type=error_type,
            )
        )
        if error is not None:
            child.failures += 1
            self._failures += 1
            classification = classify_error(error)
            self.events.emit(
                ErrorOccurred(
                    source=self.name,
                    component=f"{self.name}/{child.name}",
                    error_type=error_type,
                    message=str(unwrap_single(error)),
                    severity=classification.severity,
                )
            )
        if run.stop_requested or self._stopping or self._failure is not None or cancelled:
            # Stopped on purpose (shutdown, group restart, stop_child): no decision.
            if child._run is run and child.state is not ChildState.STOPPED:
                child.state = ChildState.STOPPED
            return

        strategy = None if error is None else child.spec.resolve_recovery(error)
        gate = child.spec.breaker
        decision = self._policy.decide(
            child.name,
            child.restart,
            error,
            now=trio.current_time(),
            strategy=strategy,
            has_fallback=child.spec.fallback is not None,
            rand=self._rng.random(),
            started_at=child.started_at,
            limit=child.spec.restart_limit,
            # A failure while half-open: the breaker's probe failed (it opens again).
            probe_failed=error is not None
            and gate is not None
            and gate.state is BreakerState.HALF_OPEN,
        )
        if decision.action is not None:
            self._record_decision(child, error, decision)
        if decision.escalate:
            assert error is not None or decision.intensity_exceeded
            child.state = ChildState.FAILED
            self._fail(child, error, decision)
        elif decision.budget_exhausted:
            # The child spent its own restart budget: it alone stops, for good.
            self._stopped_children += 1
            child.state = ChildState.FAILED
            logger.warning(
                "supervisor %s: child %s exceeded its restart budget; stopped for good",
                self.name,
                child.name,
            )
            self._discard(child, ChildEnd.RESTART_BUDGET)
        elif decision.remove:
            # An error the recovery policy says to ignore is a normal exit; a temporary
            # child that crashed (hence not restarted) has failed.
            requested = (
                None
                if error is None
                else (strategy or classify_error(error).recovery_strategy).action
            )
            failed = error is not None and requested is not RecoveryAction.IGNORE
            child.state = ChildState.FAILED if failed else ChildState.STOPPED
            self._discard(child, ChildEnd.FAILED if failed else ChildEnd.STOPPED)
        else:
            self._carry_out(child, error, decision)

    def _record_decision(
        self, child: Child, error: BaseException | None, decision: Decision
    ) -> None:
        assert decision.action is not None
        self._decisions += 1
        leaf = None if error is None else unwrap_single(error)
        self.events.emit(
            SupervisionDecision(
                source=self.name,
                supervisor=self.name,
                child=child.name,
                error_type="" if leaf is None else type(leaf).__name__,
                error="" if leaf is None else str(leaf),
                severity=decision.severity,
                action=decision.action,
                attempt=decision.attempt,
            )
        )
        logger.info(
            "supervisor %s: child %s exited (%s); decision %s",
            self.name,
            child.name,
            "normal" if leaf is None else repr(leaf),
            decision.action.value,
        )

    def _carry_out(self, child: Child, error: BaseException | None, decision: Decision) -> None:
        assert decision.action is not None
        assert self._nursery is not None
        child.restarts += 1
        self._restarts += 1
        gate: CircuitBreaker | None = None
        if decision.action is RecoveryAction.CIRCUIT_BREAKER:
            gate = self._breaker_for(child)
            if gate is not None:
                ran_for = trio.current_time() - child.started_at
                if ran_for >= gate.reset_timeout:
                    # It ran well for a while: failures before this are not consecutive.
                    gate.record_success()
                gate.record_failure()
        if decision.in_place:
            child.retries += 1
            self._launch(child, decision.action, decision.delay, gate)
            return
        if decision.failover:
            assert child.spec.fallback is not None
            child.spec = child.spec.fallback
        group = self.strategy.affected(self._children, child)
        # A pending group restart whose failed child this one restarts anyway is
        # superseded (while it is still waiting): one restart, in start order.
        for pending in self._pending:
            if not pending.committed and pending.failed in group:
                pending.scope.cancel()
        pending = _PendingGroup(child, trio.CancelScope())
        self._pending.append(pending)
        child.state = ChildState.WAITING
        self._nursery.start_soon(
            self._restart_group, pending, group, decision, gate, name=f"{self.name}:restart"
        )

    async def _restart_group(
        self,
        pending: _PendingGroup,
        group: list[Child],
        decision: Decision,
        gate: CircuitBreaker | None,
    ) -> None:
        failed = pending.failed
        failed_run = failed._run
        admitted = False
        try:
            with pending.scope:  # cancelled when superseded, or by a shutdown
                # 1. Stop the siblings at the failure (reverse start order).
                async with self._group_lock:
                    if self._halted():
                        return
                    for member in reversed(group):
                        await self._stop_run(member)
                # 2. Wait out the backoff and the breaker without the lock, so one
                #    child's delay never holds up another child's restart.
                if decision.delay > 0:
                    await trio.sleep(decision.delay)
                if gate is not None and not self._halted():
                    await _admit(gate)
                    admitted = True
                await self._group_lock.acquire()
                pending.committed = True  # from here on it runs to completion
            if not pending.committed:
                return
            # 3. Restart, in start order, unless another restart already brought the
            #    failed child back meanwhile (then this one is stale).
            try:
                if self._halted() or failed._run is not failed_run:
                    return
                for member in reversed(group):
                    await self._stop_run(member)  # anything restarted meanwhile
                if decision.reload and self._reload is not None:
                    try:
                        await self._reload()
                    except Exception as exc:
                        escalate = Decision(
                            action=RecoveryAction.ESCALATE,
                            escalate=True,
                            severity=classify_error(exc).severity,
                        )
                        self._record_decision(failed, exc, escalate)
                        self._fail(failed, exc, escalate)
                        return
                for member in group:
                    if self._halted():
                        return
                    if self._by_name.get(member.name) is not member:
                        continue
                    if member is failed:
                        await self._relaunch(member, decision.action, 0.0, None)
                    elif member.restart is Restart.TEMPORARY:
                        member.state = ChildState.STOPPED
                        self._discard(member)
                    else:
                        member.restarts += 1
                        await self._relaunch(member, decision.action, 0.0, None)
                admitted = False
            finally:
                self._group_lock.release()
        finally:
            if admitted and gate is not None:
                gate.release()
            self._pending.remove(pending)
            self._check_idle()

    # -- stopping and failing -------------------------------------------------------------

    def _halted(self) -> bool:
        return self._stopping or self._failure is not None

    def _cancel_pending_groups(self) -> None:
        """A shutdown drops the group restarts still waiting (backoff or breaker)."""
        for pending in self._pending:
            if not pending.committed:
                pending.scope.cancel()

    async def _stop_run(self, child: Child) -> None:
        run = child._run
        if run is None or run.done.is_set():
            return
        now = trio.current_time()
        run.stop_requested = True
        run.grace_deadline = now + child.shutdown_timeout
        child.state = ChildState.STOPPING
        run.scope.cancel()
        if _current_run.get() is run:
            return  # a child stopping itself: it exits when this call returns
        with trio.move_on_at(run.grace_deadline + _STUCK_MARGIN):
            await run.done.wait()
        if not run.done.is_set():
            waited = trio.current_time() - now
            logger.error(
                "supervisor %s: child %s did not stop within %.3f s",
                self.name,
                child.name,
                waited,
            )
            self.events.emit(
                ShutdownStuck(
                    source=self.name, supervisor=self.name, child=child.name, waited=waited
                )
            )

    async def _shutdown_children(self) -> None:
        self._cancel_pending_groups()
        children = list(self._children)
        try:
            for child in reversed(children):
                await self._stop_run(child)
                child.state = ChildState.STOPPED
                child._terminate(ChildEnd.SHUT_DOWN)
        finally:
            # If the graceful sequence was cut short (its deadline passed), stop the
            # rest at once: their scopes are shielded, so only this reaches them. One
            # scheduling round first lets a child finishing at this very instant finish.
            if any(c._run is not None and not c._run.done.is_set() for c in children):
                with trio.CancelScope(shield=True):
                    await trio.lowlevel.checkpoint()
            now = trio.current_time()
            for child in children:
                run = child._run
                if run is not None and not run.done.is_set():
                    run.stop_requested = True
                    run.grace_deadline = min(run.grace_deadline, now)
                    run.scope.cancel()
                    for grace in run.grace_scopes or ():
                        grace.cancel()
                child.state = ChildState.STOPPED
                child._terminate(ChildEnd.SHUT_DOWN)

    def _fail(self, child: Child, error: BaseException | None, decision: Decision) -> None:
        if self._failure is not None:
            return
        failure: SupervisionError
        cause = "" if error is None else f": {_describe(root_cause(error))}"
        if decision.intensity_exceeded:
            failure = RestartIntensityExceeded(
                f"supervisor {self.name!r} exceeded {self.max_restarts} restarts in "
                f"{self.restart_window} s (last failure: child {child.name!r}{cause})"
            )
        else:
            leaf = None if error is None else unwrap_single(error)
            original = root_cause(error) if error is not None else None
            via = (
                f" (root cause: {_describe(original)})"
                if original is not None and original is not leaf
                else ""
            )
            failure = EscalatedError(
                f"child {child.name!r} of supervisor {self.name!r} escalated "
                f"{_describe(leaf)}{via}",
                supervisor=self.name,
                child=child.name,
            )
        failure.__cause__ = error
        self._failure = failure
        self._state = SupervisorState.FAILED
        assert self._nursery is not None
        self._nursery.start_soon(self._give_up, name=f"{self.name}:give-up")

    async def _give_up(self) -> None:
        assert self._failure is not None
        self._stopping = True
        # Shielded, but bounded by escalation_timeout: the parent acts on this failure
        # only once this supervisor has exited, so its children get that long to stop.
        deadline = (
            math.inf
            if self.escalation_timeout is None
            else trio.current_time() + self.escalation_timeout
        )
        with trio.CancelScope(shield=True, deadline=deadline):
            await self._shutdown_children()
        self._emit_stopped(repr(self._failure))
        raise self._failure

    def _emit_stopped(self, reason: str) -> None:
        self.events.emit(SupervisorStopped(source=self.name, supervisor=self.name, reason=reason))

    # -- heartbeat monitoring ---------------------------------------------------------------

    async def _monitor_heartbeats(self) -> None:
        while True:
            deadline = self._detector.next_deadline()
            self._detector_changed = trio.Event()
            with trio.move_on_at(math.inf if deadline is None else deadline):
                await self._detector_changed.wait()
            now = trio.current_time()
            for name in self._detector.expired(now):
                silent = self._detector.silent_for(name, now)
                self._detector.unwatch(name)
                child = self._by_name.get(str(name))
                if child is None or child._run is None or child._run.done.is_set():
                    continue
                self.events.emit(
                    HeartbeatMissed(source=self.name, child=child.name, silent_for=silent)
                )
                child._run.injected = HeartbeatTimeout(
                    f"child {child.name!r} of {self.name!r} missed its heartbeats "
                    f"(silent for {silent:.3g} s)"
                )
                child._run.scope.cancel()


def _describe(error: BaseException | None) -> str:
    if error is None:
        return "None"
    return f"{type(error).__name__}: {error}"


async def _admit(gate: CircuitBreaker) -> None:
    """Wait until ``gate`` admits a restart. A half-open breaker's probe counts as a
    success once admitted; a closed breaker keeps counting consecutive failures."""
    await gate.wait_until_allowed()
    if gate.state is BreakerState.HALF_OPEN:
        gate.record_success()


@attrs.define(eq=False)
class _PendingGroup:
    """A group restart under way: superseded or dropped while not yet committed."""

    failed: Child
    scope: trio.CancelScope
    committed: bool = False


class _StatusForwarder:
    """The ``task_status`` a child receives; records the value and starts the child."""

    __slots__ = ("_run", "_supervisor")

    def __init__(self, supervisor: Supervisor, run: _Run) -> None:
        self._supervisor = supervisor
        self._run = run

    def started(self, value: Any = None) -> None:
        self._supervisor._started(self._run, value)


@asynccontextmanager
async def open_supervisor(
    name: str = "supervisor",
    *,
    strategy: SupervisionStrategyLike | None = None,
    max_restarts: int | None = 3,
    restart_window: float = 60.0,
    backoff: Backoff | None = None,
    child_limit: RestartLimit | None = None,
    escalation_timeout: float | None = None,
    events: EventBus | None = None,
    children: Sequence[ChildSpec] = (),
    default_restart: Restart = Restart.TRANSIENT,
    shutdown_timeout: float = 5.0,
    reload: Callable[[], Awaitable[object]] | None = None,
    breaker_factory: Callable[[str], CircuitBreaker] | None = None,
    keep_alive: bool = False,
    rng: random.Random | None = None,
    on_child_removed: Callable[[Child], object] | None = None,
) -> AsyncIterator[Supervisor]:
    """Open a supervisor that owns one nursery; yield it.

    As with a nursery, leaving the ``async with`` body waits for the children to end
    (with ``keep_alive=True`` it waits until :meth:`Supervisor.stop` or cancellation
    instead, for dynamic children). Cancelling the enclosing scope, an error in the
    body, or ``stop()`` shut the children down in reverse start order, each within its
    ``shutdown_timeout``. If the supervisor gives up (restart intensity exceeded, or an
    ``Escalate`` decision) it stops its children and raises
    :class:`~mister_smith.errors.RestartIntensityExceeded` or
    :class:`~mister_smith.errors.EscalatedError` from the ``async with``.

    Args:
        name: Shown in events, logs and snapshots.
        strategy: ``OneForOne()`` (default), ``OneForAll()``, ``RestForOne()`` or a
            :class:`~mister_smith.types.StrategyKind`.
        max_restarts: Restarts allowed within ``restart_window`` (counted across all
            children, OTP's intensity); one more makes the supervisor give up.
            ``None``: no supervisor-wide bound (use ``child_limit`` instead).
        restart_window: Seconds of the intensity window.
        backoff: Delay between restarts (``None``: restart at once).
        child_limit: Each child's own restart budget (Akka's ``OneForOneStrategy``):
            a child that spends it is stopped for good (announced as a ``STOP``
            decision) while the supervisor and its other children go on. A child's
            ``restart_limit`` overrides it. ``None``: only ``max_restarts`` applies.
        escalation_timeout: When the supervisor gives up, the longest its children
            get to stop before they are cancelled, so that its parent can act on the
            failure within that bound (``None``: their own shutdown timeouts).
        events: The event bus for decisions (default: a private one, ``sup.events``).
        children: Child specs started, in order, before the body runs.
        default_restart: Restart type of children that do not set one.
        shutdown_timeout: Default grace seconds per child when stopping.
        reload: Called before restarting after a ``Reload`` decision.
        breaker_factory: Makes the circuit breaker for a child whose recovery is
            ``CircuitBreaker`` and that declares none (default: 5 failures, 60 s).
        keep_alive: Keep running with no children until stopped.
        rng: Source of backoff jitter (for reproducible tests).
        on_child_removed: Called when a child leaves for good (not on shutdown).
    """
    from ._strategy import OneForOne

    supervisor = Supervisor(
        name,
        strategy=OneForOne() if strategy is None else strategy,
        max_restarts=max_restarts,
        restart_window=restart_window,
        backoff=backoff,
        child_limit=child_limit,
        escalation_timeout=escalation_timeout,
        events=EventBus() if events is None else events,
        default_restart=default_restart,
        shutdown_timeout=shutdown_timeout,
        reload=reload,
        breaker_factory=breaker_factory
        if breaker_factory is not None
        else (lambda breaker_name: CircuitBreaker(breaker_name, events=supervisor.events)),
        rng=rng,
        on_child_removed=on_child_removed,
    )
    try:
        async with trio.open_nursery() as nursery:
            supervisor._nursery = nursery
            monitor_scope = trio.CancelScope()

            async def monitor() -> None:
                with monitor_scope:
                    await supervisor._monitor_heartbeats()

            nursery.start_soon(monitor, name=f"{name}:heartbeats")
            try:
                for spec in _still_listed(children):
                    if supervisor._failure is not None and _current_run.get() is not None:
                        # A child that had started failed and the supervisor gave up
                        # while still starting the rest. It did start (OTP: init
                        # returned, then the exit arrived), so it reports started and
                        # its parent handles the give-up like any failure, rather than
                        # taking it for a start failure of this child of its own.
                        break
                    await supervisor.start_child(spec)
                supervisor._body_task = trio.lowlevel.current_task()
                yield supervisor
                if not supervisor._stopping:
                    if keep_alive:
                        await supervisor._stop_requested.wait()
                    else:
                        supervisor._check_idle()
                        await supervisor._idle.wait()
                if not supervisor._stopping:
                    supervisor._state = SupervisorState.STOPPED
                    supervisor._stopping = True
                    supervisor._emit_stopped("normal")
            except BaseException:
                if not supervisor._stopping:
                    supervisor._stopping = True
                    supervisor._state = SupervisorState.STOPPING
                    # Nested under a stopping parent: stay within the parent's grace.
                    outer = _current_run.get()
                    nested = outer is not None and outer.stop_requested
                    assert outer is not None or not nested
                    shield = trio.CancelScope(
                        shield=True,
                        deadline=outer.grace_deadline if outer is not None and nested else math.inf,
                    )
                    if outer is not None and nested:
                        outer.add_grace_scope(shield)  # a hard stop reaches in here
                    with shield:
                        await supervisor._shutdown_children()
                    if supervisor._failure is None:
                        supervisor._emit_stopped("shutdown")
                raise
            finally:
                monitor_scope.cancel()
        if supervisor._state != SupervisorState.FAILED:
            supervisor._state = SupervisorState.STOPPED
    except BaseExceptionGroup as group:
        failure = supervisor._failure
        if failure is not None:
            matched, rest = group.split(lambda exc: exc is failure)
            others = _leaves(rest)
            if matched is not None and all(isinstance(e, Exception) for e in others):
                # The supervisor gave up: that is what its owner must see, with the
                # chain down to the original error. Whatever else was raised (typically
                # the body's calls failing because the children were stopped) is a
                # consequence, kept as notes rather than burying the cause in a group.
                for other in others:
                    failure.add_note(f"also raised while {name!r} gave up: {_describe(other)}")
                raise failure from failure.__cause__
        raise


def _still_listed(children: Sequence[ChildSpec]) -> Iterator[ChildSpec]:
    """Each spec of ``children`` in order, skipping those removed before their turn.

    The owner may update ``children`` while they start (a child gone for good meanwhile
    is removed from it); iterating the live list would then skip the spec after it.
    """
    listed: set[int] = set()
    size = -1
    for spec in list(children):
        if len(children) != size:  # changed: look again (once per change, not per spec)
            size = len(children)
            listed = {id(current) for current in children}
        if id(spec) in listed:
            yield spec


def _leaves(group: BaseExceptionGroup[BaseException] | None) -> list[BaseException]:
    if group is None:
        return []
    leaves: list[BaseException] = []
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            leaves.extend(_leaves(exc))
        elif not isinstance(exc, trio.Cancelled):
            leaves.append(exc)
    return leaves
