"""Circuit breaker: a pure state machine plus a Trio wrapper that emits events."""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import ParamSpec, TypeVar

import attrs
import trio

from ..errors import CircuitOpenError
from ..events import CircuitStateChanged, EventBus

P = ParamSpec("P")
R = TypeVar("R")


# The defaults of BreakerCore and CircuitBreaker, written once for both: it opens after 5
# consecutive failures, stays open 60 s, then admits 3 probes at once.
_FAILURE_THRESHOLD = 5
_RESET_TIMEOUT = 60.0
_HALF_OPEN_MAX_CALLS = 3


class BreakerState(enum.Enum):
    """Circuit breaker states."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@attrs.define
class BreakerCore:
    """The breaker's pure state machine; every method takes the time as ``now``.

    Closed: calls pass; ``failure_threshold`` consecutive failures open it. Open: calls
    are refused until ``reset_timeout`` has passed, then it is half-open. Half-open: up
    to ``half_open_max_calls`` probe calls at once; that many successes close it, any
    failure opens it again.
    """

    failure_threshold: int = attrs.field(
        default=_FAILURE_THRESHOLD, validator=attrs.validators.ge(1)
    )
    reset_timeout: float = attrs.field(default=_RESET_TIMEOUT, validator=attrs.validators.ge(0.0))
    half_open_max_calls: int = attrs.field(
        default=_HALF_OPEN_MAX_CALLS, validator=attrs.validators.ge(1)
    )
    state: BreakerState = attrs.field(default=BreakerState.CLOSED, init=False)
    failures: int = attrs.field(default=0, init=False)
    opened_at: float = attrs.field(default=0.0, init=False)
    probes_in_flight: int = attrs.field(default=0, init=False)
    probe_successes: int = attrs.field(default=0, init=False)

    def current_state(self, now: float) -> BreakerState:
        """The state at ``now`` (an open breaker becomes half-open once its timeout passed)."""
        if self.state is BreakerState.OPEN and now >= self.opened_at + self.reset_timeout:
            self._to(BreakerState.HALF_OPEN)
        return self.state

    @property
    def retry_at(self) -> float:
        """When an open breaker lets probes through."""
        return self.opened_at + self.reset_timeout

    def _to(self, state: BreakerState) -> None:
        self.state = state
        self.probes_in_flight = 0
        self.probe_successes = 0
        if state is BreakerState.CLOSED:
            self.failures = 0

    def try_acquire(self, now: float) -> bool:
        """Ask to make a call at ``now``; ``True`` admits it (the caller must then record
        its outcome with :meth:`record_success`, :meth:`record_failure` or :meth:`release`)."""
        state = self.current_state(now)
        if state is BreakerState.CLOSED:
            return True
        if state is BreakerState.HALF_OPEN and self.probes_in_flight < self.half_open_max_calls:
            self.probes_in_flight += 1
            return True
        return False

    def record_success(self, now: float) -> None:
        """An admitted call succeeded."""
        if self.state is BreakerState.HALF_OPEN:
            self.probes_in_flight = max(0, self.probes_in_flight - 1)
            self.probe_successes += 1
            if self.probe_successes >= self.half_open_max_calls:
                self._to(BreakerState.CLOSED)
        else:
            self.failures = 0

    def record_failure(self, now: float) -> None:
        """An admitted call (or a supervised run) failed."""
        state = self.current_state(now)
        if state is BreakerState.HALF_OPEN:
            self._open(now)
        elif state is BreakerState.CLOSED:
            self.failures += 1
            if self.failures >= self.failure_threshold:
                self._open(now)

    def release(self) -> None:
        """An admitted call ended without an outcome (e.g. it was cancelled)."""
        if self.state is BreakerState.HALF_OPEN:
            self.probes_in_flight = max(0, self.probes_in_flight - 1)

    def _open(self, now: float) -> None:
        self._to(BreakerState.OPEN)
        self.opened_at = now


@attrs.frozen
class BreakerStatistics:
    """Counters of a :class:`CircuitBreaker`."""

    state: BreakerState
    calls: int
    successes: int
    failures: int
    rejected: int
    consecutive_failures: int
    opened: int


class CircuitBreaker:
    """A circuit breaker for async calls, on the Trio clock, announcing state changes.

    Use ``await breaker.call(fn, *args)`` or ``async with breaker: ...``. While open,
    calls fail fast with :class:`~mister_smith.errors.CircuitOpenError`. Cancellation
    is not a failure.

    Args:
        name: Shown in events and errors.
        failure_threshold: Consecutive failures that open the breaker.
        reset_timeout: Seconds it stays open before letting probes through.
        half_open_max_calls: Probe calls admitted at once while half-open (and the
            successes needed to close it).
        events: Where :class:`~mister_smith.events.CircuitStateChanged` goes.
    """

    def __init__(
        self,
        name: str = "breaker",
        *,
        failure_threshold: int = _FAILURE_THRESHOLD,
        reset_timeout: float = _RESET_TIMEOUT,
        half_open_max_calls: int = _HALF_OPEN_MAX_CALLS,
        events: EventBus | None = None,
    ) -> None:
        self.name = name
        self.events = events
        self._core = BreakerCore(failure_threshold, reset_timeout, half_open_max_calls)
        self._calls = 0
        self._successes = 0
        self._failures = 0
        self._rejected = 0
        self._opened = 0
        self._last_state = BreakerState.CLOSED

    def _sync_state(self) -> BreakerState:
        # Note the raw state first: with reset_timeout=0 an opened breaker is already
        # half-open by the clock, but the opening must still be seen and counted.
        self._note(self._core.state)
        state = self._core.current_state(trio.current_time())
        self._note(state)
        return state

    def _note(self, state: BreakerState) -> None:
        if state is not self._last_state:
            if state is BreakerState.OPEN:
                self._opened += 1
            if self.events is not None:
                self.events.emit(
                    CircuitStateChanged(
                        source=self.name,
                        breaker=self.name,
                        old_state=self._last_state.value,
                        new_state=state.value,
                    )
                )
            self._last_state = state

    @property
    def state(self) -> BreakerState:
        """The current state (checked against the Trio clock)."""
        return self._sync_state()

    def reconfigure(
        self,
        *,
        failure_threshold: int | None = None,
        reset_timeout: float | None = None,
        half_open_max_calls: int | None = None,
    ) -> None:
        """Change the thresholds of a live breaker; its state and counts are kept (an
        open breaker uses the new ``reset_timeout`` from when it opened)."""
        core = self._core
        changed = attrs.evolve(
            core,
            failure_threshold=core.failure_threshold
            if failure_threshold is None
            else failure_threshold,
            reset_timeout=core.reset_timeout if reset_timeout is None else reset_timeout,
            half_open_max_calls=core.half_open_max_calls
            if half_open_max_calls is None
            else half_open_max_calls,
        )  # validates, and raises before anything changes
        core.failure_threshold = changed.failure_threshold
        core.reset_timeout = changed.reset_timeout
        core.half_open_max_calls = changed.half_open_max_calls

    @property
    def consecutive_failures(self) -> int:
        """Failures recorded in a row while closed (what ``failure_threshold`` bounds)."""
        return self._core.failures

    @property
    def failure_threshold(self) -> int:
        """Consecutive failures that open the breaker."""
        return self._core.failure_threshold

    @property
    def half_open_max_calls(self) -> int:
        """Probe calls admitted at once while half-open."""
        return self._core.half_open_max_calls

    @property
    def reset_timeout(self) -> float:
        """Seconds the breaker stays open before letting probes through."""
        return self._core.reset_timeout

    @property
    def retry_at(self) -> float:
        """Trio-clock time at which an open breaker lets probes through."""
        return self._core.retry_at

    def acquire_nowait(self) -> None:
        """Admit one call or raise :class:`~mister_smith.errors.CircuitOpenError`."""
        self._sync_state()
        if not self._core.try_acquire(trio.current_time()):
            self._rejected += 1
            raise CircuitOpenError(
                f"circuit {self.name!r} is {self._core.state.value}", retry_at=self.retry_at
            )
        self._calls += 1
        self._sync_state()

    def record_success(self) -> None:
        """Record that an admitted call succeeded."""
        self._successes += 1
        self._core.record_success(trio.current_time())
        self._sync_state()

    def record_failure(self) -> None:
        """Record a failure (an admitted call, or a supervised run that crashed)."""
        self._failures += 1
        self._core.record_failure(trio.current_time())
        self._sync_state()

    def release(self) -> None:
        """An admitted call ended without an outcome (cancelled)."""
        self._core.release()

    async def wait_until_allowed(self) -> None:
        """Sleep until a call would be admitted, then admit it (used to gate restarts)."""
        await trio.lowlevel.checkpoint_if_cancelled()
        while True:
            try:
                self.acquire_nowait()
            except CircuitOpenError as exc:
                await trio.sleep_until(max(exc.retry_at, trio.current_time()))
                if self._core.state is BreakerState.HALF_OPEN:
                    # all probes in flight: poll again shortly
                    await trio.sleep(min(1.0, max(self._core.reset_timeout, 0.001)))
            else:
                # Admitted: from here nothing may raise Cancelled, or the slot would leak.
                await trio.lowlevel.cancel_shielded_checkpoint()
                return

    async def call(self, fn: Callable[P, Awaitable[R]], *args: P.args, **kwargs: P.kwargs) -> R:
        """Call ``await fn(*args)`` through the breaker."""
        async with self:
            return await fn(*args, **kwargs)

    async def __aenter__(self) -> CircuitBreaker:
        await trio.lowlevel.checkpoint()
        self.acquire_nowait()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            self.record_success()
        elif isinstance(exc, Exception):
            self.record_failure()
        else:
            self.release()

    def statistics(self) -> BreakerStatistics:
        """Counters and the current state."""
        return BreakerStatistics(
            state=self._sync_state(),
            calls=self._calls,
            successes=self._successes,
            failures=self._failures,
            rejected=self._rejected,
            consecutive_failures=self._core.failures,
            opened=self._opened,
        )


async def admit_restart(gate: CircuitBreaker) -> None:
    """Wait until ``gate`` admits a restart. A half-open breaker's probe counts as a
    success once admitted; a closed breaker keeps counting consecutive failures."""
    await gate.wait_until_allowed()
    if gate.state is BreakerState.HALF_OPEN:
        gate.record_success()


def failure_opens(gate: CircuitBreaker, ran_for: float) -> bool:
    """Whether recording a failure of a run that lasted ``ran_for`` seconds opens
    ``gate`` (again): a half-open breaker's probe failed, or a closed one reaches its
    threshold. A run lasting ``reset_timeout`` or more breaks the consecutive count."""
    state = gate.state
    if state is BreakerState.HALF_OPEN:
        return True
    if state is not BreakerState.CLOSED:
        return False
    failures = 0 if ran_for >= gate.reset_timeout else gate.consecutive_failures
    return failures + 1 >= gate.failure_threshold


def record_run_failure(gate: CircuitBreaker, ran_for: float) -> None:
    """Record on ``gate`` the failure of a run that lasted ``ran_for`` seconds; a run
    that lasted ``reset_timeout`` or more first counts as a success, so the failures
    before it are not consecutive with this one."""
    if ran_for >= gate.reset_timeout:
        gate.record_success()
    gate.record_failure()
