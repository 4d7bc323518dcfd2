"""Child specifications, child handles and the per-run bookkeeping of a supervisor."""

from __future__ import annotations

import contextvars
import enum
import inspect
import logging
import math
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import attrs
import trio

from ..errors import RecoveryAction, RecoveryStrategy
from ..types import Restart
from ._breaker import CircuitBreaker
from ._intensity import RestartLimit

if TYPE_CHECKING:
    from ._supervisor import Supervisor

RecoveryPolicy = RecoveryStrategy | Callable[[BaseException], RecoveryStrategy]
"""A fixed recovery strategy, or a function choosing one for each error."""


@attrs.frozen(eq=False)
class ChildSpec:
    """A declarative description of a supervised child.

    Build one with :meth:`of` (``ChildSpec.of(fn, *args, name=...)``) and pass it to
    ``open_supervisor(children=[...])`` or :meth:`Supervisor.start_child`.

    Attributes:
        fn: The async function the child runs; it may accept ``task_status`` (Trio's
            ``nursery.start`` protocol) to say when it has started.
        args: Positional arguments for ``fn``.
        name: Unique name under the supervisor (default: ``fn``'s name, made unique).
        restart: Restart type (default: the supervisor's).
        shutdown_timeout: Grace seconds when stopped (default: the supervisor's).
        recovery: Recovery policy for its failures (default: the error's own strategy).
        fallback: What failover starts in its place.
        breaker: Circuit breaker gating its restarts (created from the supervisor's
            defaults when the recovery is ``CircuitBreaker`` and none is given).
        heartbeat_timeout: When set, the child must call :func:`heartbeat` at least this
            often or it is declared hung and handled like a crash.
        on_terminated: Called once, synchronously, when the child is gone for good
            (removed after its last exit, stopped, or its supervisor shut down or
            failed) — never between restarts.
        restart_limit: The child's own restart budget (default: the supervisor's
            ``child_limit``, if any). When it is spent the child is stopped for good
            (``RecoveryAction.STOP``) and its siblings go on.
        owner: The sibling this child belongs to (e.g. the supervisor of an actor's own
            children): a group restart (``OneForAll``, ``RestForOne``) leaves it to its
            owner, which stops it when its own run ends, instead of treating it as a
            sibling of its own.
    """

    fn: Callable[..., Awaitable[object]]
    args: tuple[Any, ...] = ()
    name: str | None = None
    restart: Restart | None = None
    shutdown_timeout: float | None = None
    recovery: RecoveryPolicy | None = None
    fallback: ChildSpec | None = None
    breaker: CircuitBreaker | None = None
    heartbeat_timeout: float | None = None
    on_terminated: Callable[[Child], object] | None = None
    restart_limit: RestartLimit | None = None
    owner: str | None = None

    @classmethod
    def of(
        cls,
        fn: Callable[..., Awaitable[object]],
        *args: Any,
        name: str | None = None,
        restart: Restart | None = None,
        shutdown_timeout: float | None = None,
        recovery: RecoveryPolicy | None = None,
        fallback: ChildSpec | Callable[..., Awaitable[object]] | None = None,
        breaker: CircuitBreaker | None = None,
        heartbeat_timeout: float | None = None,
        on_terminated: Callable[[Child], object] | None = None,
        restart_limit: RestartLimit | None = None,
        owner: str | None = None,
    ) -> ChildSpec:
        """Trio-style constructor: the callable, its arguments, then keyword options."""
        if not callable(fn):
            raise TypeError(f"a child must be an async callable, got {fn!r}")
        if restart is not None and not isinstance(restart, Restart):
            raise TypeError(f"restart must be a Restart (or None), got {restart!r}")
        if shutdown_timeout is not None and not shutdown_timeout >= 0:
            raise ValueError(f"shutdown_timeout must be >= 0, got {shutdown_timeout!r}")
        if heartbeat_timeout is not None and not heartbeat_timeout > 0:
            raise ValueError(f"heartbeat_timeout must be > 0, got {heartbeat_timeout!r}")
        if fallback is not None and not isinstance(fallback, ChildSpec):
            fallback = ChildSpec(fallback)
        if restart_limit is not None and not isinstance(restart_limit, RestartLimit):
            raise TypeError(f"restart_limit must be a RestartLimit, got {restart_limit!r}")
        return cls(
            fn,
            tuple(args),
            name,
            restart,
            shutdown_timeout,
            recovery,
            fallback,
            breaker,
            heartbeat_timeout,
            on_terminated,
            restart_limit,
            owner,
        )

    def accepts_task_status(self) -> bool:
        """Whether ``fn`` takes a ``task_status`` keyword (``nursery.start`` protocol)."""
        return accepts_task_status(self.fn)

    def resolve_recovery(self, error: BaseException) -> RecoveryStrategy | None:
        """The recovery strategy for ``error`` (``None``: the error's own)."""
        if self.recovery is None or isinstance(self.recovery, RecoveryStrategy):
            return self.recovery
        return self.recovery(error)


def spec_of_call(
    fn: Callable[..., Awaitable[object]] | ChildSpec, args: tuple[Any, ...], options: dict[str, Any]
) -> ChildSpec:
    """The spec a ``start_child(fn, *args, **options)`` call means: ``fn`` itself when it
    is a :class:`ChildSpec` (then with no args and every option ``None``), otherwise
    ``ChildSpec.of(fn, *args, **options)``.

    Raises:
        TypeError: a :class:`ChildSpec` came with args or options.
    """
    if not isinstance(fn, ChildSpec):
        return ChildSpec.of(fn, *args, **options)
    # A plain loop: this runs at every spawn of an actor (a generator costs more).
    for value in options.values():
        if value is not None:
            break
    else:
        if not args:
            return fn
    given = sorted(key for key, value in options.items() if value is not None)
    raise TypeError(
        "pass either a ChildSpec or fn with its args and options, not both "
        f"(got {'positional args' if args else ', '.join(given)})"
    )


def accepts_task_status(fn: Callable[..., Awaitable[object]]) -> bool:
    """Whether ``fn`` takes a ``task_status`` parameter.

    Plain functions and methods are answered from their code object (cheap, nothing
    cached, so no closure or instance is kept alive); anything else (partials,
    wrapped or callable objects) through :func:`inspect.signature`.
    """
    function = getattr(fn, "__func__", fn)
    code = getattr(function, "__code__", None)
    if code is not None and not hasattr(function, "__wrapped__"):
        named = code.co_varnames[: code.co_argcount + code.co_kwonlyargcount]
        return "task_status" in named
    try:
        parameters = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return "task_status" in parameters


class ChildEnd(enum.Enum):
    """Why a supervised child is gone for good (:attr:`Child.end_reason`)."""

    STOPPED = "stopped"
    """Stopped on request, or it ended normally and was not restarted."""
    FAILED = "failed"
    """It failed and its recovery (or restart type) did not run it again."""
    RESTART_BUDGET = "restart intensity exceeded"
    """It spent its own restart budget (``restart_limit``) and was stopped for good."""
    SHUT_DOWN = "shut down"
    """Its supervisor shut down (or gave up) with it still running."""


class ChildState(enum.Enum):
    """Where a supervised child is in its life."""

    STARTING = "starting"
    WAITING = "waiting"
    """Waiting out a restart delay, a retry delay or an open circuit breaker."""
    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"
    FAILED = "failed"


@attrs.frozen
class ChildStatistics:
    """Counters of one supervised child."""

    name: str
    state: ChildState
    restarts: int
    failures: int
    retries: int


@attrs.define(eq=False)
class _Run:
    """One run (start or restart) of a child."""

    child: Child
    action: RecoveryAction | None
    delay: float = 0.0
    gate: CircuitBreaker | None = None
    scope: trio.CancelScope = attrs.field(factory=trio.CancelScope)
    """Shielded once the child has started (see ``Supervisor._run_child``)."""
    finished: bool = False
    """Its task has ended (see :meth:`finish`)."""
    _done: trio.Event | None = None
    stop_requested: bool = False
    grace_deadline: float = math.inf
    injected: BaseException | None = None
    task_status: trio.TaskStatus[Child] = trio.TASK_STATUS_IGNORED
    status_sent: bool = False
    grace_scopes: list[trio.CancelScope] | None = None
    in_place: bool = False
    """It runs in the task of the run before it (a one-for-one restart or a retry)."""
    successor: _Run | None = None
    """The run decided on this one's exit that its task runs next (see ``in_place``)."""

    def finish(self) -> None:
        """The run's task has ended: wake whoever waits for it."""
        self.finished = True
        if self._done is not None:
            self._done.set()

    async def wait_finished(self) -> None:
        """Wait until the run's task has ended (the event is made only when waited on:
        most runs are never waited for, and an event per child costs ~300 bytes)."""
        if self.finished:
            await trio.lowlevel.checkpoint()
            return
        if self._done is None:
            self._done = trio.Event()
        await self._done.wait()

    def add_grace_scope(self, scope: trio.CancelScope) -> None:
        """Remember a shielded cleanup scope so that a hard stop can cancel it."""
        if self.grace_scopes is None:
            self.grace_scopes = []
        self.grace_scopes.append(scope)


_current_run: contextvars.ContextVar[_Run | None] = contextvars.ContextVar(
    "mister_smith_current_run", default=None
)


@attrs.define(eq=False)
class Child:
    """A handle on a supervised child, stable across its restarts.

    Attributes:
        name: Unique name under its supervisor.
        spec: The spec it runs now (after a failover, the fallback's).
        supervisor: The owning supervisor.
        state: Current state.
        restarts: Times it was run again (restarts, retries, failovers).
        failures: Times it raised.
        value: What it passed to ``task_status.started(value)`` on its latest run
            (for a nested supervisor: that supervisor).
        end_reason: Once it is gone for good, why; ``None`` while it is supervised.
    """

    name: str
    spec: ChildSpec
    supervisor: Supervisor
    restart: Restart
    shutdown_timeout: float
    state: ChildState = ChildState.STARTING
    restarts: int = 0
    failures: int = 0
    retries: int = 0
    value: Any = None
    end_reason: ChildEnd | None = None
    _run: _Run | None = None
    _terminated: bool = False

    def _terminate(self, reason: ChildEnd) -> None:
        if self._terminated:
            return
        self._terminated = True
        if self.end_reason is None:
            self.end_reason = reason
        if self.spec.on_terminated is not None:
            try:
                self.spec.on_terminated(self)
            except Exception:
                logging.getLogger("mister_smith.supervision").exception(
                    "on_terminated callback of child %s failed", self.name
                )

    started_at: float = 0.0
    """Trio-clock time its latest run started running."""
    heartbeats_dropped: bool = False
    """While true, :meth:`heartbeat` is ignored (failure injection: a silent child)."""

    def heartbeat(self) -> None:
        """Report that this child is alive (for heartbeat monitoring)."""
        if not self.heartbeats_dropped:
            self.supervisor._heartbeat(self)

    @property
    def failing_with(self) -> BaseException | None:
        """The error its current run is being failed with from outside (an injected
        failure, or ``HeartbeatTimeout`` for a hung child), while that run unwinds; code
        seeing ``Cancelled`` in the child can tell it from a plain stop this way."""
        run = self._run
        if run is None or run.finished:
            return None
        return run.injected

    def inject_failure(self, error: BaseException) -> bool:
        """Crash the current run as if it had raised ``error`` (for failure injection).

        The run is cancelled at its next checkpoint and its exit is handled exactly
        like a crash with ``error``. Returns ``False`` when the child is not running.
        """
        run = self._run
        if run is None or run.finished or run.stop_requested:
            return False
        run.injected = error
        run.scope.cancel()
        return True

    async def stop(self) -> None:
        """Stop this child for good (graceful, within its shutdown timeout)."""
        await self.supervisor.stop_child(self)

    def statistics(self) -> ChildStatistics:
        """Counters of this child."""
        return ChildStatistics(self.name, self.state, self.restarts, self.failures, self.retries)

    def __repr__(self) -> str:
        return f"<Child {self.supervisor.name}/{self.name} {self.state.value}>"


def current_child() -> Child | None:
    """The supervised child whose task is running now, if any."""
    run = _current_run.get()
    return None if run is None else run.child


def heartbeat() -> None:
    """Report that the current supervised child is alive; no-op outside supervision."""
    child = current_child()
    if child is not None:
        child.heartbeat()


def shutdown_grace() -> trio.CancelScope:
    """A shielded cancel scope lasting until the current child's shutdown deadline.

    Use it in ``finally`` blocks that must await cleanup while the child is being
    stopped::

        finally:
            with shutdown_grace():
                await flush()

    Outside a supervised child (or before a stop was requested) it is an unshielded
    scope with no deadline.
    """
    run = _current_run.get()
    if run is None or not run.stop_requested:
        return trio.CancelScope()
    scope = trio.CancelScope(shield=True, deadline=run.grace_deadline)
    run.add_grace_scope(scope)  # a hard stop (stop(timeout=)) cancels it too
    return scope


def still_listed(children: Sequence[ChildSpec]) -> Iterator[ChildSpec]:
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
