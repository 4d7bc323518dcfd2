"""What a supervisor does about a child's exit: a pure decision, time passed in.

The async supervisor feeds :class:`SupervisorPolicy` the exits of its children and
carries out the :data:`Decision` it returns. Keeping the logic here, free of I/O and
clocks, lets hypothesis drive it exhaustively.
"""

from __future__ import annotations

import math
from collections.abc import Hashable
from typing import ClassVar

import attrs

from ..errors import (
    ErrorClassification,
    ErrorSeverity,
    RecoveryAction,
    RecoveryStrategy,
    classify_error,
)
from ..types import Restart
from ._intensity import Backoff, BackoffState, RestartIntensity, RestartLimit

_RUN_AGAIN_ACTIONS = frozenset(
    {
        RecoveryAction.RETRY,
        RecoveryAction.RESTART,
        RecoveryAction.RELOAD,
        RecoveryAction.CIRCUIT_BREAKER,
    }
)


@attrs.frozen
class LeaveChild:
    """The child is not run again: it returned (a transient or temporary child) or its
    failure is ignored, and it leaves the supervisor.

    Attributes:
        action: ``None`` for a normal return (nothing was decided, nothing announced);
            ``IGNORE`` for an ignored failure.
        severity: The error's severity (``LOW`` for a normal return).
    """

    action: RecoveryAction | None = None
    severity: ErrorSeverity = ErrorSeverity.LOW


@attrs.frozen
class RetryChild:
    """Run only this child again, in place (its siblings are left alone), after ``delay``.

    Attributes:
        delay: Seconds to wait first (the retry strategy's delay).
        attempt: The 1-based attempt number.
        severity: The error's severity.
    """

    delay: float
    attempt: int
    severity: ErrorSeverity = ErrorSeverity.LOW
    action: ClassVar[RecoveryAction] = RecoveryAction.RETRY


@attrs.frozen
class RestartChild:
    """Run the child again as its strategy says (with its group under ``OneForAll`` /
    ``RestForOne``), after ``delay``.

    Attributes:
        action: ``RESTART``, ``RELOAD`` (call the reload hook first), ``FAILOVER``
            (start its fallback in its place), ``CIRCUIT_BREAKER`` (wait for its
            breaker), or ``IGNORE`` for a permanent child whose failure is ignored.
        delay: Seconds of backoff before running again.
        severity: The error's severity (``LOW`` for a permanent child that returned).
    """

    action: RecoveryAction
    delay: float = 0.0
    severity: ErrorSeverity = ErrorSeverity.LOW

    @property
    def reload(self) -> bool:
        """The supervisor's reload hook runs before the restart."""
        return self.action is RecoveryAction.RELOAD

    @property
    def failover(self) -> bool:
        """The child's fallback starts in its place."""
        return self.action is RecoveryAction.FAILOVER

    @property
    def gated(self) -> bool:
        """The restart waits for the child's circuit breaker."""
        return self.action is RecoveryAction.CIRCUIT_BREAKER


@attrs.frozen
class StopChild:
    """The child spent its own restart budget: it is stopped for good and its siblings
    go on (Akka's ``OneForOneStrategy``)."""

    severity: ErrorSeverity = ErrorSeverity.LOW
    action: ClassVar[RecoveryAction] = RecoveryAction.STOP


@attrs.frozen
class EscalateFailure:
    """The supervisor gives up and fails.

    Attributes:
        severity: The error's severity.
        intensity_exceeded: Because a restart budget was spent (the supervisor's
            intensity), not because the error escalates.
    """

    severity: ErrorSeverity = ErrorSeverity.LOW
    intensity_exceeded: bool = False
    action: ClassVar[RecoveryAction] = RecoveryAction.ESCALATE


Decision = LeaveChild | RetryChild | RestartChild | StopChild | EscalateFailure
"""The outcome of :meth:`SupervisorPolicy.decide`: one case per thing to do, each with
only the data it needs; every case has ``action`` and ``severity``."""


def effective_action(
    strategy: RecoveryStrategy, restart: Restart, *, has_fallback: bool
) -> RecoveryAction:
    """The action a failed child actually gets, before restart intensity is applied.

    A temporary child is never run again: strategies that would restart it become
    ``IGNORE``. A failover without a declared fallback becomes a restart (or ``IGNORE``
    for a temporary child). A retry may later fall back to a restart when its attempts
    are used up (see :meth:`SupervisorPolicy.decide`).
    """
    action = strategy.action
    if action is RecoveryAction.FAILOVER and not has_fallback:
        action = RecoveryAction.RESTART
    if restart is Restart.TEMPORARY and action in _RUN_AGAIN_ACTIONS:
        return RecoveryAction.IGNORE
    return action


@attrs.define
class _ChildBook:
    retries: int = 0
    last_start: float | None = None
    backoff: BackoffState | None = None
    budget: RestartIntensity | None = None
    """The child's own restart budget (``None``: only the supervisor's intensity)."""
    own_limit: bool = False
    """The budget was set for this child (not the supervisor's default ``child_limit``)."""
    breaker_trips: int = 0
    """Times its circuit breaker opened since its last long run (see ``decide``)."""


@attrs.define
class SupervisorPolicy:
    """Restart intensity (per supervisor and per child), retry counts and backoff.

    Two budgets bound restarts, and a restart must fit both:

    - ``intensity`` counts the restarts of all children together (OTP). Spending it
      makes the supervisor give up (``escalate``). ``None``: no such bound.
    - each child's own budget (its ``limit`` passed to :meth:`decide`, else
      ``child_limit``) counts that child's restarts alone (Akka's
      ``OneForOneStrategy``). Spending it stops that child for good
      (action ``STOP``); the supervisor and the siblings go on. ``None``: no such bound.

    Attributes:
        intensity: The supervisor's restart intensity, or ``None``.
        backoff: Optional backoff between restarts; ``None`` restarts at once.
        child_limit: The restart budget of each child that has no limit of its own.
    """

    intensity: RestartIntensity | None
    backoff: Backoff | None = None
    child_limit: RestartLimit | None = None
    _books: dict[Hashable, _ChildBook] = attrs.field(factory=dict, init=False)

    def _book(self, key: Hashable, limit: RestartLimit | None = None) -> _ChildBook:
        book = self._books.get(key)
        if book is None:
            chosen = self.child_limit if limit is None else limit
            book = self._books[key] = _ChildBook(
                backoff=None if self.backoff is None else BackoffState(self.backoff),
                budget=None if chosen is None else chosen.counter(),
                own_limit=limit is not None,
            )
        return book

    def reconfigure(
        self,
        *,
        intensity: RestartLimit | None,
        child_limit: RestartLimit | None,
        backoff: Backoff | None,
    ) -> None:
        """Change the bounds in force; restarts already counted stay counted.

        Children tracked from now on (and those whose budget is the default) get the
        new ``child_limit``; a child given a limit of its own keeps it. The new
        ``backoff`` applies from each child's next restart on (its consecutive count is
        kept).
        """
        self.intensity = _recount(self.intensity, intensity)
        self.child_limit = child_limit
        self.backoff = backoff
        for book in self._books.values():
            if not book.own_limit:
                book.budget = _recount(book.budget, child_limit)
            if backoff is None:
                book.backoff = None
            elif book.backoff is None:
                book.backoff = BackoffState(backoff)
            else:
                book.backoff.backoff = backoff

    def _window(self, book: _ChildBook) -> float:
        """How long a run must last for its retries and breaker trips to be forgotten."""
        if book.budget is not None:
            return book.budget.window
        if self.intensity is not None:
            return self.intensity.window
        return math.inf

    def _trip_limit(self, book: _ChildBook) -> int | None:
        if book.budget is not None:
            return book.budget.max_restarts
        if self.intensity is not None:
            return self.intensity.max_restarts
        return None

    def child_started(self, key: Hashable, now: float) -> None:
        """Child ``key`` started running at ``now``."""
        book = self._book(key)
        book.last_start = now
        if book.backoff is not None:
            book.backoff.started(now)

    def tracks(self, key: Hashable) -> bool:
        """Whether child ``key`` has a record here (it has exited before).

        A supervisor reports starts only for those and passes ``started_at`` to
        :meth:`decide` for the others, so a child that never fails costs nothing here.
        """
        return key in self._books

    def child_removed(self, key: Hashable) -> None:
        """Forget child ``key`` (it left the supervisor)."""
        self._books.pop(key, None)

    def retries(self, key: Hashable) -> int:
        """Consecutive in-place retries used by child ``key``."""
        book = self._books.get(key)
        return 0 if book is None else book.retries

    def decide(
        self,
        key: Hashable,
        restart: Restart,
        error: BaseException | None,
        *,
        now: float,
        strategy: RecoveryStrategy | None = None,
        has_fallback: bool = False,
        rand: float = 0.5,
        started_at: float | None = None,
        limit: RestartLimit | None = None,
        breaker_trips: bool = False,
        classification: ErrorClassification | None = None,
    ) -> Decision:
        """Decide about child ``key`` which exited at ``now``.

        Args:
            key: Identifies the child.
            restart: The child's restart type.
            error: What it raised, or ``None`` for a normal return.
            now: The current time.
            strategy: The recovery strategy for ``error`` (default: the error's own,
                from :func:`~mister_smith.errors.classify_error`).
            has_fallback: Whether the child declares a fallback for failover.
            rand: A number in [0, 1) for backoff jitter.
            started_at: When the run that exited started (for a child not tracked yet).
            limit: The child's own restart budget (default: ``child_limit``); read when
                the child is first tracked.
            breaker_trips: This failure opens the child's circuit breaker (again).
                Restarts through a breaker are paced by it and do not count toward the
                budgets one by one, but its openings do: a child whose breaker opens
                more often in a row than its budget's ``max_restarts`` (the child's
                own, else the supervisor's) has spent it, like any other restart
                budget, instead of failing at the breaker's pace for ever. A run
                lasting a whole window resets the count.
            classification: ``classify_error(error)`` when the caller already has it
                (an error is classified once per exit).
        """
        fresh = key not in self._books
        book = self._book(key, limit)
        if fresh and started_at is not None:
            book.last_start = started_at
            if book.backoff is not None:
                book.backoff.started(started_at)
        if error is None:
            if restart is Restart.PERMANENT:
                return self._restart(book, RecoveryAction.RESTART, now, rand, ErrorSeverity.LOW)
            return LeaveChild()

        if classification is None:
            classification = classify_error(error)
        severity = classification.severity
        if strategy is None:
            strategy = classification.recovery_strategy
        if book.last_start is not None and now - book.last_start >= self._window(book):
            book.retries = 0
            book.breaker_trips = 0
        action = effective_action(strategy, restart, has_fallback=has_fallback)

        if action is RecoveryAction.ESCALATE:
            return EscalateFailure(severity)
        if action is RecoveryAction.IGNORE:
            if restart is Restart.PERMANENT:
                return self._restart(book, action, now, rand, severity)
            return LeaveChild(action, severity)
        if action is RecoveryAction.RETRY:
            assert isinstance(strategy, RecoveryStrategy.Retry)
            if book.retries < strategy.max_attempts:
                book.retries += 1
                return RetryChild(strategy.delay, book.retries, severity)
            action = RecoveryAction.RESTART
        if action is RecoveryAction.CIRCUIT_BREAKER:
            # The breaker bounds the rate of these restarts; they don't count toward
            # intensity, but a run of failed probes does (see ``probe_failed``).
            book.retries = 0
            if breaker_trips:
                book.breaker_trips += 1
                trip_limit = self._trip_limit(book)
                if trip_limit is not None and book.breaker_trips > trip_limit:
                    return self._exhausted(book, severity)
            return RestartChild(action, 0.0, severity)
        return self._restart(book, action, now, rand, severity)

    def _exhausted(self, book: _ChildBook, severity: ErrorSeverity) -> Decision:
        """The budget bounding this child is spent: its own (stop it) or the
        supervisor's (give up)."""
        if book.budget is not None:
            return StopChild(severity)
        return EscalateFailure(severity, intensity_exceeded=True)

    def _restart(
        self,
        book: _ChildBook,
        action: RecoveryAction,
        now: float,
        rand: float,
        severity: ErrorSeverity,
    ) -> Decision:
        book.retries = 0
        if book.budget is not None and not book.budget.record(now):
            return self._exhausted(book, severity)
        if self.intensity is not None and not self.intensity.record(now):
            return EscalateFailure(severity, intensity_exceeded=True)
        delay = 0.0 if book.backoff is None else book.backoff.next_delay(now, rand)
        return RestartChild(action, delay, severity)


def _recount(
    counter: RestartIntensity | None, limit: RestartLimit | None
) -> RestartIntensity | None:
    """``counter`` bounded by ``limit`` from now on, its recorded restarts kept."""
    if limit is None:
        return None
    if counter is None:
        return limit.counter()
    counter.max_restarts = limit.max_restarts
    counter.window = limit.window
    return counter
