"""Examples pinning the pure supervision cores where ``nox -s mutants`` found mutants
surviving ``test_supervision_pure.py`` and ``test_supervision_stateful.py``: defaults,
validation messages, probes in flight, per-child budgets, breaker trips, backoff resets
and live reconfiguration.
"""

from __future__ import annotations

import math

import attrs
import pytest

from mister_smith.errors import ErrorSeverity, RecoveryAction, RecoveryStrategy
from mister_smith.supervision import (
    Backoff,
    BackoffState,
    BreakerCore,
    BreakerState,
    CircuitBreaker,
    Decision,
    EscalateFailure,
    OneForOne,
    RestartChild,
    RestartIntensity,
    RestartLimit,
    RetryChild,
    StopChild,
    SupervisorPolicy,
)
from mister_smith.supervision._strategy import as_strategy
from mister_smith.types import Restart

BREAKER = RecoveryStrategy.CircuitBreaker()


def runs_again(decision: Decision) -> bool:
    """The child runs again (in place or restarted)."""
    return isinstance(decision, RetryChild | RestartChild)


def delay(decision: Decision) -> float:
    """The backoff of a restart decision (anything else fails the test)."""
    assert isinstance(decision, RestartChild), decision
    return decision.delay


def _stopped(decision: Decision) -> bool:
    """The child spent its own budget and is stopped for good."""
    return isinstance(decision, StopChild)


def _escalates(decision: Decision) -> bool:
    """The supervisor gives up."""
    return isinstance(decision, EscalateFailure)


# -- defaults ---------------------------------------------------------------------------


def test_breaker_defaults_open_after_5_failures_for_60_s_with_3_probes() -> None:
    core = BreakerCore()
    assert (core.failure_threshold, core.reset_timeout, core.half_open_max_calls) == (5, 60.0, 3)
    assert (core.state, core.failures, core.probes_in_flight) == (BreakerState.CLOSED, 0, 0)


def test_circuit_breaker_takes_the_core_defaults() -> None:
    """One source for the defaults: the Trio wrapper's are the core's."""
    breaker, core = CircuitBreaker(), BreakerCore()
    assert breaker.name == "breaker"
    assert (breaker.failure_threshold, breaker.reset_timeout, breaker.half_open_max_calls) == (
        core.failure_threshold,
        core.reset_timeout,
        core.half_open_max_calls,
    )


def test_backoff_defaults_and_jitter_midpoint() -> None:
    backoff = Backoff()
    assert attrs.astuple(backoff) == (0.1, 30.0, 2.0, 0.1, None)
    # ``rand`` defaults to the middle of the jitter range: no jitter at all.
    assert backoff.delay(0) == 0.1
    assert backoff.delay(3) == pytest.approx(0.8)
    assert backoff.delay(0, 0.0) == pytest.approx(0.09)
    assert backoff.delay(0, 1.0) == pytest.approx(0.11)
    assert BackoffState(backoff).next_delay(0.0) == 0.1
    policy = SupervisorPolicy(None, backoff)
    assert delay(policy.decide("a", Restart.PERMANENT, ValueError(), now=0.0)) == 0.1


# -- breaker -----------------------------------------------------------------------------


def _half_open(probes: int) -> BreakerCore:
    core = BreakerCore(failure_threshold=1, reset_timeout=10.0, half_open_max_calls=probes)
    core.record_failure(0.0)
    assert core.current_state(10.0) is BreakerState.HALF_OPEN
    return core


def test_breaker_outcomes_free_one_probe_of_several_in_flight() -> None:
    """Mutants: ``max`` → ``min`` and ``- 1`` → ``- 2`` in ``record_success`` and
    ``release`` (no test had two probes in flight)."""
    core = _half_open(probes=3)
    assert [core.try_acquire(10.0) for _ in range(4)] == [True, True, True, False]
    core.record_success(10.5)
    assert (core.probes_in_flight, core.probe_successes) == (2, 1)
    core.release()
    assert core.probes_in_flight == 1
    assert [core.try_acquire(11.0) for _ in range(3)] == [True, True, False]
    core.release()
    core.release()
    core.release()
    assert core.probes_in_flight == 0  # never below zero
    assert core.state is BreakerState.HALF_OPEN


def test_release_of_a_call_admitted_while_closed_changes_nothing() -> None:
    core = BreakerCore(failure_threshold=2)
    assert core.try_acquire(0.0)
    core.record_failure(0.0)
    core.release()
    assert (core.state, core.failures, core.probes_in_flight) == (BreakerState.CLOSED, 1, 0)


# -- intensity, limits, backoff ----------------------------------------------------------


@pytest.mark.parametrize(
    ("max_restarts", "window", "message"),
    [
        (-1, 1.0, "max_restarts must be an int >= 0, got -1"),
        (True, 1.0, "max_restarts must be an int >= 0, got True"),
        (1.5, 1.0, "max_restarts must be an int >= 0, got 1.5"),
        (1, 0.0, "window must be a number of seconds > 0, got 0.0"),
        (1, -1, "window must be a number of seconds > 0, got -1"),
        (1, True, "window must be a number of seconds > 0, got True"),
        (1, "5", "window must be a number of seconds > 0, got '5'"),
    ],
)
def test_restart_limit_names_what_is_wrong(
    max_restarts: object, window: object, message: str
) -> None:
    with pytest.raises(ValueError, match=f"^{message}$"):
        RestartLimit(max_restarts, window)  # type: ignore[arg-type]


@pytest.mark.parametrize(("max_restarts", "window"), [(0, 0.5), (1, 1), (3, 0.001)])
def test_restart_limit_bounds_are_accepted(max_restarts: int, window: float) -> None:
    counter = RestartLimit(max_restarts, window).counter()
    assert (counter.max_restarts, counter.window) == (max_restarts, window)
    assert counter.recent(0.0) == 0


def test_restart_intensity_names_a_negative_window() -> None:
    with pytest.raises(ValueError, match=r"^window must be >= 0, got -1.0$"):
        RestartIntensity(1, -1.0)


def test_backoff_loop_stops_when_growth_cannot_change_anything() -> None:
    """Mutants: ``or`` → ``and`` in the loop's exit: a huge attempt number would then
    loop that many times (this test would time out)."""
    assert Backoff(initial=2.0, maximum=30.0, factor=1.0, jitter=0.0).delay(10**12) == 2.0
    assert Backoff(initial=0.0, maximum=30.0, jitter=0.0).delay(10**12) == 0.0
    assert Backoff(initial=1.0, maximum=30.0, factor=2.0, jitter=0.0).delay(10**12) == 30.0


# -- strategies --------------------------------------------------------------------------


def test_strategy_errors_name_the_culprit() -> None:
    with pytest.raises(ValueError, match=r"^'z' is not one of the supervisor's children$"):
        OneForOne().affected(["a", "b"], "z")
    with pytest.raises(TypeError, match=r"^not a supervision strategy: 'one'$"):
        as_strategy("one")  # type: ignore[arg-type]


# -- policy: per-child budgets -----------------------------------------------------------


def test_tracks_a_child_from_its_first_exit_until_removed() -> None:
    policy = SupervisorPolicy(None)
    assert not policy.tracks("a")
    policy.decide("a", Restart.PERMANENT, ValueError(), now=0.0)
    assert policy.tracks("a")
    policy.child_removed("a")
    assert not policy.tracks("a")


def test_own_limit_stops_the_child_alone() -> None:
    policy = SupervisorPolicy(RestartIntensity(10, 60.0), child_limit=RestartLimit(5, 60.0))
    own = RestartLimit(1, 10.0)
    first = policy.decide("a", Restart.PERMANENT, ValueError(), now=0.0, limit=own)
    assert first.action is RecoveryAction.RESTART
    second = policy.decide("a", Restart.PERMANENT, ValueError(), now=1.0, limit=own)
    assert second == StopChild(ErrorSeverity.CRITICAL)
    # A restart exactly a window later fits the budget again.
    assert runs_again(policy.decide("a", Restart.PERMANENT, ValueError(), now=11.0))
    # The sibling has the default budget, and the supervisor's intensity counted both.
    assert runs_again(policy.decide("b", Restart.PERMANENT, ValueError(), now=11.0))
    assert policy.intensity is not None
    assert policy.intensity.recent(11.0) == 3


def test_child_limit_is_each_childs_default_budget() -> None:
    policy = SupervisorPolicy(None, child_limit=RestartLimit(1, 60.0))
    for key in ("a", "b"):
        assert runs_again(policy.decide(key, Restart.PERMANENT, ValueError(), now=0.0))
    for key in ("a", "b"):
        decision = policy.decide(key, Restart.PERMANENT, ValueError(), now=1.0)
        assert (decision.action, _stopped(decision)) == (RecoveryAction.STOP, True)


# -- policy: breaker trips ---------------------------------------------------------------


def _trip(policy: SupervisorPolicy, now: float, limit: RestartLimit | None = None) -> Decision:
    return policy.decide(
        "a",
        Restart.PERMANENT,
        ValueError(),
        now=now,
        strategy=BREAKER,
        breaker_trips=True,
        limit=limit,
    )


def test_breaker_trips_spend_the_childs_own_budget() -> None:
    policy = SupervisorPolicy(RestartIntensity(1, 60.0))
    limit = RestartLimit(2, 60.0)
    gated = RestartChild(RecoveryAction.CIRCUIT_BREAKER, 0.0, ErrorSeverity.CRITICAL)
    assert [_trip(policy, t, limit) for t in (0.0, 1.0)] == [gated, gated]
    assert _trip(policy, 2.0, limit) == StopChild(ErrorSeverity.CRITICAL)
    # Failures that do not open the breaker again are not trips.
    quiet = policy.decide("b", Restart.PERMANENT, ValueError(), now=3.0, strategy=BREAKER)
    assert quiet == gated
    assert policy.intensity is not None
    assert policy.intensity.recent(3.0) == 0  # breaker restarts don't count one by one


def test_breaker_trips_under_the_supervisors_intensity_give_up() -> None:
    policy = SupervisorPolicy(RestartIntensity(1, 60.0))
    assert runs_again(_trip(policy, 0.0))
    assert _trip(policy, 1.0) == EscalateFailure(ErrorSeverity.CRITICAL, intensity_exceeded=True)


def test_breaker_trips_without_any_bound_go_on() -> None:
    policy = SupervisorPolicy(None)
    assert all(runs_again(_trip(policy, float(t))) for t in range(20))


def test_a_run_lasting_a_window_forgets_the_trips() -> None:
    policy = SupervisorPolicy(None, child_limit=RestartLimit(1, 10.0))
    assert runs_again(_trip(policy, 0.0))
    policy.child_started("a", 1.0)
    assert runs_again(_trip(policy, 11.0))  # ran 10 s: the count starts over
    policy.child_started("a", 11.0)
    assert _stopped(_trip(policy, 12.0))


# -- policy: backoff -----------------------------------------------------------------------


def test_a_quiet_run_resets_the_backoff() -> None:
    """Mutants: ``child_started`` not telling the backoff; the failure time or the jitter
    not passed on to it."""
    backoff = Backoff(initial=1.0, maximum=100.0, factor=2.0, jitter=0.5, reset_after=5.0)
    policy = SupervisorPolicy(None, backoff)

    def fail(now: float) -> float:
        return delay(policy.decide("a", Restart.PERMANENT, ValueError(), now=now, rand=0.0))

    assert [fail(0.0), fail(1.0), fail(2.0)] == [0.5, 1.0, 2.0]
    policy.child_started("a", 10.0)
    assert fail(15.0) == 0.5  # ran for the quiet period: from the start again


# -- policy: reconfigure -------------------------------------------------------------------


def test_reconfigure_keeps_counts_and_applies_new_bounds() -> None:
    policy = SupervisorPolicy(RestartIntensity(5, 60.0), child_limit=RestartLimit(5, 60.0))
    own = RestartLimit(2, 60.0)
    assert runs_again(policy.decide("own", Restart.PERMANENT, ValueError(), now=0.0, limit=own))
    assert runs_again(policy.decide("default", Restart.PERMANENT, ValueError(), now=0.0))
    intensity = policy.intensity
    assert intensity is not None
    policy.reconfigure(
        intensity=RestartLimit(10, 30.0), child_limit=RestartLimit(1, 30.0), backoff=None
    )
    assert policy.intensity is intensity  # the same counter, its restarts kept
    assert (intensity.max_restarts, intensity.window, intensity.recent(1.0)) == (10, 30.0, 2)
    assert policy.child_limit == RestartLimit(1, 30.0)
    # The default child now has the new child_limit (its restart counted): stopped.
    assert _stopped(policy.decide("default", Restart.PERMANENT, ValueError(), now=1.0))
    # The child with its own limit kept it (2 in 60 s, not the new 1 in 30 s).
    assert runs_again(policy.decide("own", Restart.PERMANENT, ValueError(), now=1.0))
    assert _stopped(policy.decide("own", Restart.PERMANENT, ValueError(), now=2.0))
    # A child first seen now gets the new child_limit.
    assert runs_again(policy.decide("new", Restart.PERMANENT, ValueError(), now=2.0))
    assert _stopped(policy.decide("new", Restart.PERMANENT, ValueError(), now=3.0))


def test_reconfigure_can_lift_and_add_bounds() -> None:
    policy = SupervisorPolicy(RestartIntensity(1, 60.0), child_limit=RestartLimit(1, 60.0))
    assert runs_again(policy.decide("a", Restart.PERMANENT, ValueError(), now=0.0))
    policy.reconfigure(intensity=None, child_limit=None, backoff=None)
    assert (policy.intensity, policy.child_limit) == (None, None)
    assert all(
        runs_again(policy.decide("a", Restart.PERMANENT, ValueError(), now=float(t)))
        for t in range(1, 5)
    )
    policy.reconfigure(intensity=RestartLimit(1, 60.0), child_limit=None, backoff=None)
    assert policy.intensity is not None
    assert policy.intensity.recent(5.0) == 0  # a fresh counter
    assert runs_again(policy.decide("a", Restart.PERMANENT, ValueError(), now=5.0))
    assert _escalates(policy.decide("a", Restart.PERMANENT, ValueError(), now=6.0))


def test_reconfigure_backoff_keeps_each_childs_consecutive_count() -> None:
    policy = SupervisorPolicy(None, Backoff(initial=1.0, maximum=100.0, jitter=0.0))

    def fail(key: str, now: float) -> float:
        return delay(policy.decide(key, Restart.PERMANENT, ValueError(), now=now))

    def backoff_in_force() -> Backoff | None:
        return policy.backoff

    assert [fail("a", 0.0), fail("a", 1.0)] == [1.0, 2.0]
    policy.reconfigure(
        intensity=None, child_limit=None, backoff=Backoff(initial=3.0, maximum=100.0, jitter=0.0)
    )
    assert backoff_in_force() == Backoff(initial=3.0, maximum=100.0, jitter=0.0)
    assert fail("a", 2.0) == 12.0  # third in a row, on the new curve
    policy.reconfigure(intensity=None, child_limit=None, backoff=None)
    assert fail("a", 3.0) == 0.0
    assert backoff_in_force() is None
    policy.reconfigure(
        intensity=None, child_limit=None, backoff=Backoff(initial=1.0, maximum=100.0, jitter=0.0)
    )
    assert fail("a", 4.0) == 1.0  # a new backoff starts from its first step
    assert not math.isnan(fail("b", 4.0))


# -- policy: the first exit's start ----------------------------------------------------------


def test_first_exit_takes_the_runs_start_from_the_caller() -> None:
    """A child's first run is reported to no book (it has none yet), so ``decide`` takes
    that run's start as ``started_at``; a later exit with no start reported in between
    measures its run from there. Mutants: the ``started_at`` block of ``decide``."""
    retry = RecoveryStrategy.Retry(max_attempts=1, delay=0.5)
    policy = SupervisorPolicy(None, child_limit=RestartLimit(5, 10.0))

    def fail(key: str, now: float, started_at: float | None) -> Decision:
        return policy.decide(
            key, Restart.PERMANENT, ValueError(), now=now, strategy=retry, started_at=started_at
        )

    assert fail("a", 0.0, -100.0) == RetryChild(0.5, 1, ErrorSeverity.CRITICAL)
    # 200 s since that start: a whole window, so the retry count starts over.
    assert fail("a", 100.0, None) == RetryChild(0.5, 1, ErrorSeverity.CRITICAL)
    # Without a start the count goes on and the retries are spent.
    assert fail("b", 0.0, None) == RetryChild(0.5, 1, ErrorSeverity.CRITICAL)
    assert isinstance(fail("b", 100.0, None), RestartChild)
    # For a child already tracked the start reported to the policy counts, not this one.
    assert fail("c", 0.0, None) == RetryChild(0.5, 1, ErrorSeverity.CRITICAL)
    policy.child_started("c", 0.5)
    assert isinstance(fail("c", 5.0, -100.0), RestartChild)


def test_first_exit_starts_the_backoff_from_the_runs_start() -> None:
    backoff = Backoff(initial=1.0, maximum=100.0, factor=2.0, jitter=0.0, reset_after=5.0)
    policy = SupervisorPolicy(None, backoff)

    def fail(key: str, now: float, started_at: float | None = None) -> float:
        return delay(
            policy.decide(key, Restart.PERMANENT, ValueError(), now=now, started_at=started_at)
        )

    assert [fail("a", 0.0, -10.0), fail("a", 1.0)] == [1.0, 1.0]  # ran 11 s: quiet
    assert [fail("b", 0.0), fail("b", 1.0)] == [1.0, 2.0]
