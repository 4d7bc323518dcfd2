"""Example tests of the pure supervision logic: intensity, backoff, decisions, strategies.

Everything here is synchronous and clock-free (time is passed in); the stateful
hypothesis machines in ``test_supervision_stateful.py`` drive the same objects
exhaustively against models.
"""

from __future__ import annotations

import math

import pytest
import trio

from mister_smith.errors import (
    ConfigError,
    ErrorSeverity,
    NetworkError,
    PersistenceError,
    RecoveryAction,
    RecoveryStrategy,
    ResourceError,
    SupervisionError,
)
from mister_smith.supervision import (
    Backoff,
    BackoffState,
    BreakerCore,
    BreakerState,
    ChildSpec,
    EscalateFailure,
    FailureDetector,
    LeaveChild,
    OneForAll,
    OneForOne,
    RestartChild,
    RestartIntensity,
    RestForOne,
    RetryChild,
    StopChild,
    StrategyKind,
    SupervisorPolicy,
    effective_action,
)
from mister_smith.supervision._strategy import as_strategy
from mister_smith.types import Restart

ALL_STRATEGIES: list[RecoveryStrategy] = [
    RecoveryStrategy.Retry(max_attempts=2, delay=0.5),
    RecoveryStrategy.Restart(),
    RecoveryStrategy.Escalate(),
    RecoveryStrategy.Reload(),
    RecoveryStrategy.CircuitBreaker(),
    RecoveryStrategy.Failover(),
    RecoveryStrategy.Ignore(),
]


# -- RestartIntensity ------------------------------------------------------------------


def test_intensity_fourth_failure_in_window_is_refused() -> None:
    intensity = RestartIntensity(max_restarts=3, window=60.0)
    assert [intensity.record(t) for t in (0.0, 1.0, 2.0)] == [True, True, True]
    assert intensity.record(3.0) is False
    assert intensity.recent(3.0) == 4


def test_intensity_restarts_leave_the_window_after_exactly_window_seconds() -> None:
    intensity = RestartIntensity(max_restarts=2, window=10.0)
    assert intensity.record(0.0)
    assert intensity.record(5.0)
    # The restart at 0.0 is exactly 10 s old at 10.0: it no longer counts.
    assert intensity.recent(10.0) == 1
    assert intensity.record(10.0)
    assert intensity.record(14.9) is False


def test_intensity_zero_max_restarts_refuses_the_first() -> None:
    assert RestartIntensity(max_restarts=0, window=1.0).record(0.0) is False


def test_intensity_counts_across_callers() -> None:
    """The counter is per supervisor: it has no notion of which child restarted."""
    intensity = RestartIntensity(max_restarts=3, window=60.0)
    for now in (1.0, 1.0, 2.0):
        assert intensity.record(now)
    assert not intensity.record(2.0)


@pytest.mark.parametrize(("max_restarts", "window"), [(-1, 1.0), (1, -0.5), (1, math.nan)])
def test_intensity_rejects_bad_parameters(max_restarts: int, window: float) -> None:
    with pytest.raises(ValueError):
        RestartIntensity(max_restarts=max_restarts, window=window)


# -- Backoff ---------------------------------------------------------------------------


def test_backoff_delay_is_exponential_and_capped() -> None:
    backoff = Backoff(initial=0.5, maximum=5.0, factor=3.0, jitter=0.0)
    assert [backoff.delay(n) for n in range(5)] == [0.5, 1.5, 4.5, 5.0, 5.0]


def test_backoff_jitter_spreads_around_the_base() -> None:
    backoff = Backoff(initial=1.0, maximum=100.0, factor=2.0, jitter=0.25)
    assert backoff.delay(2, rand=0.0) == pytest.approx(3.0)
    assert backoff.delay(2, rand=0.5) == pytest.approx(4.0)
    assert backoff.delay(2, rand=0.75) == pytest.approx(4.5)


def test_backoff_jitter_never_exceeds_the_maximum() -> None:
    backoff = Backoff(initial=8.0, maximum=10.0, factor=2.0, jitter=1.0)
    assert backoff.delay(3, rand=0.999) == 10.0
    assert backoff.delay(0, rand=0.0) == 0.0


def test_backoff_huge_attempt_numbers_stay_at_the_cap() -> None:
    backoff = Backoff(initial=0.1, maximum=30.0, factor=2.0, jitter=0.0)
    assert backoff.delay(10_000) == 30.0


def test_backoff_large_factor_does_not_overflow() -> None:
    backoff = Backoff(initial=1.0, maximum=10.0, factor=1e6, jitter=0.0)
    assert backoff.delay(60) == 10.0


def test_backoff_quiet_period_defaults_to_the_maximum() -> None:
    assert Backoff(maximum=7.0).quiet_period == 7.0
    assert Backoff(maximum=7.0, reset_after=2.0).quiet_period == 2.0


@pytest.mark.parametrize(
    "kwargs",
    [
        {"initial": -1.0},
        {"maximum": -0.1},
        {"factor": 0.5},
        {"jitter": -0.1},
        {"jitter": 1.5},
    ],
)
def test_backoff_rejects_bad_parameters(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        Backoff(**kwargs)


def test_backoff_state_counts_consecutive_restarts_and_resets_when_quiet() -> None:
    state = BackoffState(Backoff(initial=1.0, maximum=8.0, factor=2.0, jitter=0.0))
    state.started(0.0)
    assert state.next_delay(1.0) == 1.0
    state.started(2.0)
    assert state.next_delay(3.0) == 2.0
    state.started(5.0)
    assert state.next_delay(6.0) == 4.0
    # Ran for 8 s (the quiet period, default = maximum) without failing: start over.
    state.started(10.0)
    assert state.next_delay(18.0) == 1.0
    assert state.attempt == 1


def test_backoff_state_without_a_start_never_resets() -> None:
    state = BackoffState(Backoff(initial=1.0, maximum=100.0, jitter=0.0, reset_after=1.0))
    assert [state.next_delay(t) for t in (0.0, 50.0, 100.0)] == [1.0, 2.0, 4.0]


# -- effective_action --------------------------------------------------------------------


@pytest.mark.parametrize("strategy", ALL_STRATEGIES, ids=lambda s: type(s).__name__)
@pytest.mark.parametrize("restart", list(Restart), ids=lambda r: r.value)
@pytest.mark.parametrize("has_fallback", [False, True])
def test_effective_action_table(
    strategy: RecoveryStrategy, restart: Restart, has_fallback: bool
) -> None:
    action = strategy.action
    if action is RecoveryAction.FAILOVER and not has_fallback:
        action = RecoveryAction.RESTART
    if restart is Restart.TEMPORARY and action in {
        RecoveryAction.RETRY,
        RecoveryAction.RESTART,
        RecoveryAction.RELOAD,
        RecoveryAction.CIRCUIT_BREAKER,
    }:
        action = RecoveryAction.IGNORE
    assert effective_action(strategy, restart, has_fallback=has_fallback) is action


# -- SupervisorPolicy.decide ---------------------------------------------------------------


def _policy(
    max_restarts: int = 3, window: float = 60.0, backoff: Backoff | None = None
) -> SupervisorPolicy:
    return SupervisorPolicy(RestartIntensity(max_restarts, window), backoff)


def test_decide_permanent_normal_return_restarts_and_counts() -> None:
    policy = _policy(max_restarts=1)
    first = policy.decide("a", Restart.PERMANENT, None, now=0.0)
    assert first == RestartChild(RecoveryAction.RESTART)
    assert first.severity is ErrorSeverity.LOW
    second = policy.decide("a", Restart.PERMANENT, None, now=1.0)
    assert isinstance(second, EscalateFailure)
    assert second.intensity_exceeded
    assert second.action is RecoveryAction.ESCALATE


@pytest.mark.parametrize("restart", [Restart.TRANSIENT, Restart.TEMPORARY])
def test_decide_normal_return_of_non_permanent_removes(restart: Restart) -> None:
    decision = _policy().decide("a", restart, None, now=0.0)
    assert decision == LeaveChild()
    assert decision.action is None


def test_decide_runtime_fault_restarts_with_its_severity() -> None:
    decision = _policy().decide("a", Restart.TRANSIENT, ValueError("x"), now=0.0)
    assert isinstance(decision, RestartChild)
    assert decision.action is RecoveryAction.RESTART
    assert decision.severity is ErrorSeverity.CRITICAL


def test_decide_intensity_is_per_supervisor_not_per_child() -> None:
    policy = _policy(max_restarts=3)
    actions = [
        policy.decide(key, Restart.PERMANENT, ValueError(), now=float(t)).action
        for t, key in enumerate(["a", "b", "a", "b"])
    ]
    assert actions == [RecoveryAction.RESTART] * 3 + [RecoveryAction.ESCALATE]


def test_decide_retry_in_place_then_falls_back_to_restart() -> None:
    policy = _policy(max_restarts=5)
    retry = RecoveryStrategy.Retry(max_attempts=2, delay=0.25)
    decisions = [
        policy.decide("a", Restart.PERMANENT, ValueError(), now=float(t), strategy=retry)
        for t in range(4)
    ]
    assert decisions == [
        RetryChild(0.25, 1, ErrorSeverity.CRITICAL),
        RetryChild(0.25, 2, ErrorSeverity.CRITICAL),
        RestartChild(RecoveryAction.RESTART, 0.0, ErrorSeverity.CRITICAL),
        RetryChild(0.25, 1, ErrorSeverity.CRITICAL),
    ]
    # Only the fallback restart counted toward intensity.
    assert policy.intensity is not None
    assert policy.intensity.recent(3.0) == 1


def test_decide_retry_count_resets_after_a_long_run() -> None:
    policy = _policy(window=10.0)
    retry = RecoveryStrategy.Retry(max_attempts=1, delay=0.0)
    policy.child_started("a", 0.0)
    first = policy.decide("a", Restart.PERMANENT, ValueError(), now=1.0, strategy=retry)
    assert isinstance(first, RetryChild)
    assert policy.retries("a") == 1
    policy.child_started("a", 1.0)
    # Ran for the whole intensity window: the retry budget is fresh again.
    again = policy.decide("a", Restart.PERMANENT, ValueError(), now=11.0, strategy=retry)
    assert isinstance(again, RetryChild)
    assert again.action is RecoveryAction.RETRY
    assert again.attempt == 1


def test_decide_child_removed_forgets_retries() -> None:
    policy = _policy()
    retry = RecoveryStrategy.Retry(max_attempts=1, delay=0.0)
    policy.decide("a", Restart.PERMANENT, ValueError(), now=0.0, strategy=retry)
    assert policy.retries("a") == 1
    policy.child_removed("a")
    assert policy.retries("a") == 0


def test_decide_escalate_strategy_escalates_without_intensity() -> None:
    decision = _policy().decide("a", Restart.PERMANENT, SupervisionError("x"), now=0.0)
    assert isinstance(decision, EscalateFailure)
    assert not decision.intensity_exceeded
    assert decision.action is RecoveryAction.ESCALATE
    assert decision.severity is ErrorSeverity.HIGH


def test_decide_reload_and_failover_flags() -> None:
    policy = _policy()
    reload = policy.decide("a", Restart.PERMANENT, ConfigError("bad"), now=0.0)
    assert isinstance(reload, RestartChild)
    assert reload.action is RecoveryAction.RELOAD
    assert reload.reload
    failover = policy.decide(
        "b", Restart.PERMANENT, PersistenceError("disk"), now=0.0, has_fallback=True
    )
    assert isinstance(failover, RestartChild)
    assert failover.action is RecoveryAction.FAILOVER
    assert failover.failover
    no_fallback = policy.decide("c", Restart.PERMANENT, PersistenceError("disk"), now=0.0)
    assert isinstance(no_fallback, RestartChild)
    assert no_fallback.action is RecoveryAction.RESTART
    assert not no_fallback.failover


def test_decide_circuit_breaker_does_not_count_toward_intensity() -> None:
    policy = _policy(max_restarts=1)
    for t in range(5):
        decision = policy.decide("a", Restart.PERMANENT, NetworkError("down"), now=float(t))
        assert isinstance(decision, RestartChild)
        assert decision.action is RecoveryAction.CIRCUIT_BREAKER
        assert decision.gated
    assert policy.intensity is not None
    assert policy.intensity.recent(4.0) == 0


def test_decide_ignore_treats_the_exit_as_normal() -> None:
    policy = _policy(max_restarts=1)
    ignore = RecoveryStrategy.Ignore()
    transient = policy.decide("a", Restart.TRANSIENT, ValueError(), now=0.0, strategy=ignore)
    assert isinstance(transient, LeaveChild)
    assert transient.action is RecoveryAction.IGNORE
    permanent = policy.decide("b", Restart.PERMANENT, ValueError(), now=0.0, strategy=ignore)
    assert isinstance(permanent, RestartChild)
    assert permanent.action is RecoveryAction.IGNORE
    # ...and a permanent child's "normal exit" restart counts like any other.
    again = policy.decide("b", Restart.PERMANENT, ValueError(), now=1.0, strategy=ignore)
    assert isinstance(again, EscalateFailure)


@pytest.mark.parametrize("strategy", ALL_STRATEGIES, ids=lambda s: type(s).__name__)
def test_decide_temporary_child_is_never_run_again(
    strategy: RecoveryStrategy,
) -> None:
    decision = _policy().decide("a", Restart.TEMPORARY, ValueError(), now=0.0, strategy=strategy)
    if strategy.action is RecoveryAction.ESCALATE:
        assert isinstance(decision, EscalateFailure)
    else:
        assert isinstance(decision, LeaveChild)
        assert decision.action is RecoveryAction.IGNORE


def test_decide_uses_backoff_delays() -> None:
    policy = _policy(max_restarts=10, backoff=Backoff(initial=1.0, maximum=4.0, jitter=0.0))
    delays = []
    for t in range(4):
        policy.child_started("a", float(t))
        decision = policy.decide("a", Restart.PERMANENT, ValueError(), now=t + 0.5)
        assert isinstance(decision, RestartChild)
        delays.append(decision.delay)
    assert delays == [1.0, 2.0, 4.0, 4.0]


def test_decide_classifies_single_exception_groups_by_their_leaf() -> None:
    group = ExceptionGroup("wrapped", [ResourceError("pool")])
    decision = _policy().decide("a", Restart.PERMANENT, group, now=0.0)
    assert decision.action is RecoveryAction.RETRY
    assert decision.severity is ErrorSeverity.MEDIUM


def test_each_decision_case_names_its_action() -> None:
    assert LeaveChild().action is None
    assert RetryChild(0.0, 1).action is RecoveryAction.RETRY
    assert StopChild().action is RecoveryAction.STOP
    assert EscalateFailure().action is RecoveryAction.ESCALATE
    restart = RestartChild(RecoveryAction.RESTART)
    assert (restart.reload, restart.failover, restart.gated) == (False, False, False)
    assert RestartChild(RecoveryAction.RELOAD).reload
    assert RestartChild(RecoveryAction.FAILOVER).failover
    assert RestartChild(RecoveryAction.CIRCUIT_BREAKER).gated


def test_strategy_affected_sets() -> None:
    children = ["a", "b", "c", "d"]
    assert OneForOne().affected(children, "b") == ["b"]
    assert OneForAll().affected(children, "b") == children
    assert RestForOne().affected(children, "b") == ["b", "c", "d"]
    assert RestForOne().affected(children, "d") == ["d"]


def test_strategy_affected_rejects_strangers() -> None:
    with pytest.raises(ValueError):
        OneForAll().affected(["a"], "z")


def test_as_strategy_accepts_kinds_and_objects() -> None:
    assert as_strategy(StrategyKind.REST_FOR_ONE) == RestForOne()
    assert as_strategy(StrategyKind.ONE_FOR_ALL).kind is StrategyKind.ONE_FOR_ALL
    strategy = OneForOne()
    assert as_strategy(strategy) is strategy
    with pytest.raises(TypeError):
        as_strategy("one_for_one")  # type: ignore[arg-type]


# -- FailureDetector ------------------------------------------------------------------------


def test_failure_detector_deadlines_and_expiry() -> None:
    detector = FailureDetector()
    assert detector.next_deadline() is None
    detector.watch("a", 5.0, now=0.0)
    detector.watch("b", 2.0, now=1.0)
    assert detector.next_deadline() == 3.0
    detector.heartbeat("b", now=2.5)
    assert detector.deadline("b") == 4.5
    assert detector.expired(4.4) == []
    assert detector.expired(4.5) == ["b"]
    assert set(detector.expired(5.0)) == {"a", "b"}
    assert detector.silent_for("a", 5.0) == 5.0
    detector.unwatch("b")
    detector.heartbeat("b", now=6.0)  # ignored: not watched
    assert detector.watched() == ["a"]


def test_failure_detector_rejects_non_positive_timeouts() -> None:
    with pytest.raises(ValueError):
        FailureDetector().watch("a", 0.0, now=0.0)


# -- BreakerCore (examples; the model-based test is in the stateful module) ------------------


def _state(core: BreakerCore) -> BreakerState:
    """The stored state (a call, so mypy does not narrow it across mutations)."""
    return core.state


def test_breaker_core_full_cycle() -> None:
    core = BreakerCore(failure_threshold=2, reset_timeout=10.0, half_open_max_calls=2)
    assert core.try_acquire(0.0)
    core.record_failure(0.0)
    core.record_success(0.5)  # a success resets the consecutive count
    core.record_failure(1.0)
    assert _state(core) is BreakerState.CLOSED
    core.record_failure(2.0)
    assert _state(core) is BreakerState.OPEN
    assert core.retry_at == 12.0
    assert not core.try_acquire(11.9)
    assert core.current_state(12.0) is BreakerState.HALF_OPEN
    assert core.try_acquire(12.0)
    assert core.try_acquire(12.0)
    assert not core.try_acquire(12.0)  # both probes in flight
    core.record_success(13.0)
    assert _state(core) is BreakerState.HALF_OPEN
    core.record_success(13.0)
    assert _state(core) is BreakerState.CLOSED
    assert core.failures == 0


def test_breaker_core_half_open_failure_reopens() -> None:
    core = BreakerCore(failure_threshold=1, reset_timeout=5.0, half_open_max_calls=1)
    core.record_failure(0.0)
    assert core.try_acquire(5.0)
    core.record_failure(6.0)
    assert _state(core) is BreakerState.OPEN
    assert core.retry_at == 11.0


def test_breaker_core_release_frees_a_probe() -> None:
    core = BreakerCore(failure_threshold=1, reset_timeout=1.0, half_open_max_calls=1)
    core.record_failure(0.0)
    assert core.try_acquire(1.0)
    assert not core.try_acquire(1.0)
    core.release()
    assert core.try_acquire(1.0)


@pytest.mark.parametrize(
    "kwargs",
    [{"failure_threshold": 0}, {"reset_timeout": -1.0}, {"half_open_max_calls": 0}],
)
def test_breaker_core_rejects_bad_parameters(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        BreakerCore(**kwargs)  # type: ignore[arg-type]


# -- ChildSpec ----------------------------------------------------------------------------


async def _noop() -> None:
    await trio.lowlevel.checkpoint()


async def _with_status(*, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    task_status.started()


def test_child_spec_of_validates_and_wraps_fallback() -> None:
    spec = ChildSpec.of(_noop, name="n", fallback=_with_status)
    assert spec.fallback is not None
    assert spec.fallback.fn is _with_status
    assert not spec.accepts_task_status()
    assert spec.fallback.accepts_task_status()
    with pytest.raises(TypeError):
        ChildSpec.of(42)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        ChildSpec.of(_noop, shutdown_timeout=-1.0)
    with pytest.raises(ValueError):
        ChildSpec.of(_noop, heartbeat_timeout=0.0)


def test_child_spec_resolve_recovery() -> None:
    assert ChildSpec.of(_noop).resolve_recovery(ValueError()) is None
    fixed = RecoveryStrategy.Ignore()
    assert ChildSpec.of(_noop, recovery=fixed).resolve_recovery(ValueError()) is fixed

    def choose(error: BaseException) -> RecoveryStrategy:
        if isinstance(error, KeyError):
            return RecoveryStrategy.Escalate()
        return RecoveryStrategy.Restart()

    spec = ChildSpec.of(_noop, recovery=choose)
    assert spec.resolve_recovery(KeyError()) == RecoveryStrategy.Escalate()
    assert spec.resolve_recovery(ValueError()) == RecoveryStrategy.Restart()
