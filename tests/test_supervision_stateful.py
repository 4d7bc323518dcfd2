"""Hypothesis state machines for the pure supervision logic, each against a small model.

The models are written from the documented semantics (OTP's restart intensity, Akka's
backoff, the classic circuit breaker), not from the implementation, and time only
moves forward in steps that are exact in binary floating point (multiples of 1/4), so
boundary cases (a restart exactly ``window`` seconds old) are hit exactly.
"""

from __future__ import annotations

from collections.abc import Hashable

import attrs
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    initialize,
    invariant,
    precondition,
    rule,
)

from mister_smith.errors import (
    ConfigError,
    ErrorSeverity,
    NetworkError,
    PersistenceError,
    RecoveryAction,
    RecoveryStrategy,
    ResourceError,
    SupervisionError,
    TaskError,
)
from mister_smith.supervision import (
    Backoff,
    BackoffState,
    BreakerCore,
    BreakerState,
    Decision,
    EscalateFailure,
    FailureDetector,
    LeaveChild,
    OneForAll,
    OneForOne,
    RestartChild,
    RestartIntensity,
    RestForOne,
    RetryChild,
    SupervisorPolicy,
)
from mister_smith.types import Restart

# Time steps: multiples of 0.25 s, so sums and differences are exact.
steps = st.integers(min_value=0, max_value=40).map(lambda quarters: quarters / 4)


# -- restart intensity --------------------------------------------------------------------


class IntensityMachine(RuleBasedStateMachine):
    """``RestartIntensity.record`` at non-decreasing times vs a list of all restarts."""

    def __init__(self) -> None:
        super().__init__()
        self.now = 0.0
        self.recorded: list[float] = []
        self.intensity = RestartIntensity(max_restarts=0, window=1.0)

    @initialize(
        max_restarts=st.integers(min_value=0, max_value=5),
        window=st.integers(min_value=1, max_value=40).map(lambda q: q / 4),
    )
    def setup(self, max_restarts: int, window: float) -> None:
        self.intensity = RestartIntensity(max_restarts=max_restarts, window=window)

    def model_recent(self) -> int:
        """Restarts less than ``window`` seconds old (one exactly that old has expired)."""
        return sum(1 for t in self.recorded if self.now - t < self.intensity.window)

    @rule(step=steps)
    def advance(self, step: float) -> None:
        self.now += step

    @rule()
    def record(self) -> None:
        self.recorded.append(self.now)
        allowed = self.intensity.record(self.now)
        assert allowed == (self.model_recent() <= self.intensity.max_restarts)

    @invariant()
    def recent_matches(self) -> None:
        assert self.intensity.recent(self.now) == self.model_recent()


TestIntensity = IntensityMachine.TestCase


# -- backoff ------------------------------------------------------------------------------


class BackoffMachine(RuleBasedStateMachine):
    """``BackoffState`` vs the formula: ``initial * factor**n`` capped, jittered, reset."""

    def __init__(self) -> None:
        super().__init__()
        self.now = 0.0
        self.attempt = 0
        self.last_start: float | None = None
        self.state = BackoffState(Backoff())

    @initialize(
        initial=st.sampled_from([0.0, 0.05, 0.5, 1.0, 3.0]),
        maximum=st.sampled_from([0.0, 1.0, 5.0, 30.0]),
        factor=st.sampled_from([1.0, 1.5, 2.0, 10.0]),
        jitter=st.sampled_from([0.0, 0.1, 0.5, 1.0]),
        reset_after=st.none() | st.sampled_from([0.5, 2.0, 10.0]),
    )
    def setup(
        self,
        initial: float,
        maximum: float,
        factor: float,
        jitter: float,
        reset_after: float | None,
    ) -> None:
        self.backoff = Backoff(initial, maximum, factor, jitter, reset_after)
        self.state = BackoffState(self.backoff)

    @rule(step=steps)
    def advance(self, step: float) -> None:
        self.now += step

    @rule()
    def started(self) -> None:
        self.state.started(self.now)
        self.last_start = self.now

    @rule(rand=st.floats(min_value=0.0, max_value=1.0, exclude_max=True))
    def failed(self, rand: float) -> None:
        quiet = (
            self.backoff.maximum if self.backoff.reset_after is None else (self.backoff.reset_after)
        )
        if self.last_start is not None and self.now - self.last_start >= quiet:
            self.attempt = 0
        base = min(self.backoff.maximum, self.backoff.initial * self.backoff.factor**self.attempt)
        expected = base * (1 + self.backoff.jitter * (2 * rand - 1))
        expected = max(0.0, min(self.backoff.maximum, expected))
        delay = self.state.next_delay(self.now, rand)
        self.attempt += 1
        assert abs(delay - expected) <= 1e-9 * max(1.0, expected)
        assert 0.0 <= delay <= self.backoff.maximum

    @invariant()
    def attempt_matches(self) -> None:
        assert self.state.attempt == self.attempt


TestBackoff = BackoffMachine.TestCase


# -- circuit breaker core ----------------------------------------------------------------


@attrs.define
class BreakerModel:
    """The textbook breaker; outcomes count against the state current when recorded."""

    threshold: int
    reset_timeout: float
    probes: int
    state: str = "closed"
    failures: int = 0
    opened_at: float = 0.0
    in_flight: int = 0
    successes: int = 0

    def tick(self, now: float) -> None:
        if self.state == "open" and now >= self.opened_at + self.reset_timeout:
            self.state, self.in_flight, self.successes = "half_open", 0, 0

    def open(self, now: float) -> None:
        self.state, self.opened_at, self.in_flight, self.successes = "open", now, 0, 0

    def acquire(self, now: float) -> bool:
        self.tick(now)
        if self.state == "closed":
            return True
        if self.state == "half_open" and self.in_flight < self.probes:
            self.in_flight += 1
            return True
        return False

    def success(self) -> None:
        if self.state == "half_open":
            self.in_flight = max(0, self.in_flight - 1)
            self.successes += 1
            if self.successes >= self.probes:
                self.state, self.failures, self.in_flight, self.successes = "closed", 0, 0, 0
        else:
            self.failures = 0

    def failure(self, now: float) -> None:
        self.tick(now)
        if self.state == "half_open":
            self.open(now)
        elif self.state == "closed":
            self.failures += 1
            if self.failures >= self.threshold:
                self.open(now)

    def release(self) -> None:
        if self.state == "half_open":
            self.in_flight = max(0, self.in_flight - 1)


class BreakerMachine(RuleBasedStateMachine):
    """``BreakerCore`` vs :class:`BreakerModel`, with admitted calls finishing in any order."""

    calls = Bundle("calls")

    def __init__(self) -> None:
        super().__init__()
        self.now = 0.0
        self.core = BreakerCore()
        self.model = BreakerModel(5, 60.0, 3)
        self.next_call = 0

    @initialize(
        threshold=st.integers(min_value=1, max_value=4),
        reset_timeout=st.sampled_from([0.0, 0.5, 2.0, 5.0]),
        probes=st.integers(min_value=1, max_value=3),
    )
    def setup(self, threshold: int, reset_timeout: float, probes: int) -> None:
        self.core = BreakerCore(threshold, reset_timeout, probes)
        self.model = BreakerModel(threshold, reset_timeout, probes)

    @rule(step=steps)
    def advance(self, step: float) -> None:
        self.now += step

    @rule(target=calls)
    def acquire(self) -> int:
        admitted = self.core.try_acquire(self.now)
        assert admitted == self.model.acquire(self.now)
        if not admitted:
            return -1
        self.next_call += 1
        return self.next_call

    @rule(call=consumes(calls))
    def succeed(self, call: int) -> None:
        if call > 0:
            self.core.record_success(self.now)
            self.model.success()

    @rule(call=consumes(calls))
    def fail(self, call: int) -> None:
        if call > 0:
            self.core.record_failure(self.now)
            self.model.failure(self.now)

    @rule(call=consumes(calls))
    def cancelled(self, call: int) -> None:
        if call > 0:
            self.core.release()
            self.model.release()

    @rule()
    def supervised_run_failed(self) -> None:
        """A supervisor records a crash without having asked first."""
        self.core.record_failure(self.now)
        self.model.failure(self.now)

    @invariant()
    def same_state(self) -> None:
        self.model.tick(self.now)
        assert self.core.current_state(self.now).value == self.model.state
        assert self.core.failures == self.model.failures
        assert self.core.probes_in_flight == self.model.in_flight
        if self.model.state == "open":
            assert self.core.retry_at == self.model.opened_at + self.model.reset_timeout
            assert self.core.state is BreakerState.OPEN


TestBreakerCore = BreakerMachine.TestCase


# -- supervisor policy ---------------------------------------------------------------------

ERRORS: dict[str, tuple[BaseException | None, ErrorSeverity, RecoveryStrategy | None]] = {
    "return": (None, ErrorSeverity.LOW, None),
    "value": (ValueError("bug"), ErrorSeverity.CRITICAL, RecoveryStrategy.Restart()),
    "supervision": (SupervisionError("up"), ErrorSeverity.HIGH, RecoveryStrategy.Escalate()),
    "config": (ConfigError("cfg"), ErrorSeverity.MEDIUM, RecoveryStrategy.Reload()),
    "resource": (
        ResourceError("pool"),
        ErrorSeverity.MEDIUM,
        RecoveryStrategy.Retry(max_attempts=3, delay=1.0),
    ),
    "network": (NetworkError("down"), ErrorSeverity.LOW, RecoveryStrategy.CircuitBreaker()),
    "persistence": (PersistenceError("disk"), ErrorSeverity.HIGH, RecoveryStrategy.Failover()),
    "task": (TaskError("t"), ErrorSeverity.LOW, RecoveryStrategy.Retry(max_attempts=1, delay=0.1)),
    "ignored": (
        ValueError("meh"),
        ErrorSeverity.CRITICAL,
        RecoveryStrategy.Ignore(),
    ),
}
"""Error kinds: (error, its severity, the strategy to pass or ``None`` for the error's own).

``ignored`` passes ``Ignore`` explicitly (as a child's ``recovery=`` would)."""

OVERRIDES = {"ignored"}


@attrs.define
class ChildModel:
    retries: int = 0
    last_start: float | None = None
    backoff_attempt: int = 0


class PolicyMachine(RuleBasedStateMachine):
    """``SupervisorPolicy.decide`` sequences vs a model of the documented rules."""

    def __init__(self) -> None:
        super().__init__()
        self.now = 0.0
        self.restarts: list[float] = []
        self.children: dict[Hashable, ChildModel] = {}
        self.max_restarts = 3
        self.window = 10.0
        self.backoff: Backoff | None = None
        self.policy = SupervisorPolicy(RestartIntensity(3, 10.0))
        self.escalated = False

    @initialize(
        max_restarts=st.integers(min_value=0, max_value=4),
        window=st.sampled_from([1.0, 2.5, 10.0]),
        backoff=st.none()
        | st.builds(
            Backoff,
            initial=st.sampled_from([0.5, 1.0]),
            maximum=st.sampled_from([2.0, 8.0]),
            factor=st.sampled_from([1.0, 2.0]),
            jitter=st.just(0.0),
            reset_after=st.none() | st.just(3.0),
        ),
    )
    def setup(self, max_restarts: int, window: float, backoff: Backoff | None) -> None:
        self.max_restarts, self.window, self.backoff = max_restarts, window, backoff
        self.policy = SupervisorPolicy(RestartIntensity(max_restarts, window), backoff)

    def book(self, key: str) -> ChildModel:
        return self.children.setdefault(key, ChildModel())

    def count_restart(self, key: str, action: RecoveryAction, severity: ErrorSeverity) -> Decision:
        book = self.book(key)
        book.retries = 0
        self.restarts.append(self.now)
        recent = sum(1 for t in self.restarts if self.now - t < self.window)
        if recent > self.max_restarts:
            self.escalated = True
            return EscalateFailure(severity, intensity_exceeded=True)
        delay = 0.0
        if self.backoff is not None:
            if book.last_start is not None and self.now - book.last_start >= (
                self.backoff.quiet_period
            ):
                book.backoff_attempt = 0
            delay = min(
                self.backoff.maximum,
                self.backoff.initial * self.backoff.factor**book.backoff_attempt,
            )
            book.backoff_attempt += 1
        return RestartChild(action, delay, severity)

    def expected(self, key: str, restart: Restart, kind: str, has_fallback: bool) -> Decision:
        error, severity, strategy = ERRORS[kind]
        book = self.book(key)
        if error is None:
            if restart is Restart.PERMANENT:
                return self.count_restart(key, RecoveryAction.RESTART, ErrorSeverity.LOW)
            return LeaveChild()
        assert strategy is not None
        if book.last_start is not None and self.now - book.last_start >= self.window:
            book.retries = 0
        action = strategy.action
        if action is RecoveryAction.FAILOVER and not has_fallback:
            action = RecoveryAction.RESTART
        run_again = {
            RecoveryAction.RETRY,
            RecoveryAction.RESTART,
            RecoveryAction.RELOAD,
            RecoveryAction.CIRCUIT_BREAKER,
        }
        if restart is Restart.TEMPORARY and action in run_again:
            action = RecoveryAction.IGNORE
        if action is RecoveryAction.ESCALATE:
            return EscalateFailure(severity)
        if action is RecoveryAction.IGNORE:
            if restart is Restart.PERMANENT:
                return self.count_restart(key, action, severity)
            return LeaveChild(action, severity)
        if action is RecoveryAction.RETRY:
            assert isinstance(strategy, RecoveryStrategy.Retry)
            if book.retries < strategy.max_attempts:
                book.retries += 1
                return RetryChild(strategy.delay, book.retries, severity)
            action = RecoveryAction.RESTART
        if action is RecoveryAction.CIRCUIT_BREAKER:
            book.retries = 0
            return RestartChild(action, 0.0, severity)
        return self.count_restart(key, action, severity)

    @rule(step=steps)
    def advance(self, step: float) -> None:
        self.now += step

    @precondition(lambda self: not self.escalated)
    @rule(key=st.sampled_from(["a", "b", "c"]))
    def started(self, key: str) -> None:
        self.policy.child_started(key, self.now)
        self.book(key).last_start = self.now

    @precondition(lambda self: not self.escalated)
    @rule(key=st.sampled_from(["a", "b", "c"]))
    def removed(self, key: str) -> None:
        self.policy.child_removed(key)
        self.children.pop(key, None)

    @precondition(lambda self: not self.escalated)
    @rule(
        key=st.sampled_from(["a", "b", "c"]),
        restart=st.sampled_from(list(Restart)),
        kind=st.sampled_from(sorted(ERRORS)),
        has_fallback=st.booleans(),
    )
    def exited(self, key: str, restart: Restart, kind: str, has_fallback: bool) -> None:
        error, _, strategy = ERRORS[kind]
        decision = self.policy.decide(
            key,
            restart,
            error,
            now=self.now,
            strategy=strategy if kind in OVERRIDES else None,
            has_fallback=has_fallback,
            rand=0.5,
        )
        assert decision == self.expected(key, restart, kind, has_fallback)
        if isinstance(decision, RetryChild | RestartChild):
            assert decision.action is not None
        if restart is Restart.TEMPORARY and isinstance(decision, RetryChild | RestartChild):
            # A temporary child only ever runs again as its own fallback.
            assert isinstance(decision, RestartChild)
            assert decision.failover

    @invariant()
    def retries_match(self) -> None:
        for key in ("a", "b", "c"):
            model = self.children.get(key)
            assert self.policy.retries(key) == (0 if model is None else model.retries)


TestSupervisorPolicy = PolicyMachine.TestCase


# -- strategies ----------------------------------------------------------------------------


class StrategyMachine(RuleBasedStateMachine):
    """``affected()`` of each strategy over a changing list of children (start order)."""

    def __init__(self) -> None:
        super().__init__()
        self.children: list[str] = []
        self.counter = 0

    @rule()
    def start(self) -> None:
        self.counter += 1
        self.children.append(f"c{self.counter}")

    @precondition(lambda self: bool(self.children))
    @rule(data=st.data())
    def stop(self, data: st.DataObject) -> None:
        self.children.remove(data.draw(st.sampled_from(self.children)))

    @precondition(lambda self: bool(self.children))
    @rule(data=st.data())
    def fail(self, data: st.DataObject) -> None:
        failed = data.draw(st.sampled_from(self.children))
        index = self.children.index(failed)
        assert OneForOne().affected(self.children, failed) == [failed]
        assert OneForAll().affected(self.children, failed) == self.children
        rest = RestForOne().affected(self.children, failed)
        assert rest == [c for i, c in enumerate(self.children) if i >= index]
        for group in (rest, OneForAll().affected(self.children, failed)):
            assert failed in group
            # Start order is kept: the group is a subsequence of the children.
            positions = [self.children.index(c) for c in group]
            assert positions == sorted(positions)
        # The caller's list is never mutated.
        assert len(self.children) == len(set(self.children))


TestStrategies = StrategyMachine.TestCase


# -- failure detector ----------------------------------------------------------------------


class DetectorMachine(RuleBasedStateMachine):
    """``FailureDetector`` vs a dict of (last beat, timeout) per watched party."""

    def __init__(self) -> None:
        super().__init__()
        self.now = 0.0
        self.detector = FailureDetector()
        self.model: dict[str, tuple[float, float]] = {}

    @rule(step=steps)
    def advance(self, step: float) -> None:
        self.now += step

    @rule(key=st.sampled_from("abcd"), timeout=st.sampled_from([0.25, 1.0, 2.5, 5.0]))
    def watch(self, key: str, timeout: float) -> None:
        self.detector.watch(key, timeout, self.now)
        self.model[key] = (self.now, timeout)

    @rule(key=st.sampled_from("abcd"))
    def beat(self, key: str) -> None:
        self.detector.heartbeat(key, self.now)
        if key in self.model:
            self.model[key] = (self.now, self.model[key][1])

    @rule(key=st.sampled_from("abcd"))
    def unwatch(self, key: str) -> None:
        self.detector.unwatch(key)
        self.model.pop(key, None)

    @invariant()
    def agrees(self) -> None:
        expired = {k for k, (seen, timeout) in self.model.items() if self.now - seen >= timeout}
        assert set(self.detector.expired(self.now)) == expired
        assert set(self.detector.watched()) == set(self.model)
        deadlines = [seen + timeout for seen, timeout in self.model.values()]
        assert self.detector.next_deadline() == (min(deadlines) if deadlines else None)
        for key, (seen, _) in self.model.items():
            assert self.detector.silent_for(key, self.now) == self.now - seen


TestFailureDetector = DetectorMachine.TestCase
