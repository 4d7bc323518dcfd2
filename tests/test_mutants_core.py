"""Examples pinning ``SupervisorCore`` where ``nox -s mutants`` found mutants of
``supervision/_core.py`` surviving the state machine in ``test_supervisor_core.py``:
child naming, what ``decide`` passes to the policy and makes of its decision, what
``apply`` records, the group a restart affects, and the exact failure a supervisor
gives up with.
"""

from __future__ import annotations

import functools
from typing import Any, cast

import pytest

from mister_smith.errors import (
    ErrorSeverity,
    EscalatedError,
    NetworkError,
    RecoveryAction,
    RecoveryStrategy,
    RestartIntensityExceeded,
    classify_error,
)
from mister_smith.events import ChildExited, ErrorOccurred, ExitKind, SupervisionDecision
from mister_smith.supervision import (
    Backoff,
    Child,
    ChildEnd,
    ChildExit,
    ChildSpec,
    ChildState,
    EscalateFailure,
    GiveUp,
    RemoveChild,
    RestartChild,
    RestartLimit,
    RetryChild,
    RunAgain,
    Settle,
    StrategyKind,
    SupervisorConfig,
    SupervisorCore,
    SupervisorState,
    _decision,
)
from mister_smith.supervision._core import describe
from mister_smith.types import Restart

RETRY_ONCE = RecoveryStrategy.Retry(max_attempts=1, delay=0.5)


async def job(*args: object) -> None:
    """A child function (never run: the core does no I/O)."""


def core_of(**config: Any) -> SupervisorCore:
    """A core for a supervisor called ``sup``."""
    return SupervisorCore(SupervisorConfig(name="sup", **config))


def add(
    core: SupervisorCore,
    name: str | None = "a",
    *,
    restart: Restart = Restart.PERMANENT,
    fn: Any = job,
    **spec: Any,
) -> Child:
    """Register (and start at 0) a child of ``core``."""
    child_spec = ChildSpec.of(fn, name=name, restart=restart, **spec)

    def make(child_name: str) -> Child:
        return Child(
            name=child_name,
            spec=child_spec,
            supervisor=cast(Any, None),
            restart=restart,
            shutdown_timeout=1.0,
        )

    child = core.add(child_spec, make)
    core.run_started(child, 0.0)
    return child


def fail(
    core: SupervisorCore, child: Child, now: float, error: BaseException | None = None, **kw: Any
) -> tuple[SupervisionDecision | None, Any]:
    """``child``'s run ended at ``now`` with ``error`` (a ``ValueError`` by default)."""
    return core.decide(child, ChildExit(error or ValueError("boom")), now=now, rand=0.5, **kw)


# -- registry ------------------------------------------------------------------------------


def test_unnamed_children_are_numbered_after_their_function() -> None:
    core = core_of()
    assert [add(core, None).name for _ in range(2)] == ["job-1", "job-2"]
    add(core, "job-4")
    assert [add(core, None).name for _ in range(2)] == ["job-3", "job-5"]  # 4 is taken
    nameless = functools.partial(job, 1)  # no __name__: "child"
    assert add(core, None, fn=nameless).name == "child-6"
    names = ["job-1", "job-2", "job-4", "job-3", "job-5", "child-6"]
    assert [c.name for c in core.children()] == names


def test_a_taken_name_is_refused_by_name() -> None:
    core = core_of()
    add(core, "a")
    add(core, "b")
    with pytest.raises(ValueError, match=r"^supervisor 'sup' already has a child named 'a'$"):
        add(core, "a")
    assert len(core) == 2


def test_the_policy_takes_the_configured_bounds() -> None:
    backoff = Backoff(initial=2.0, jitter=0.0)
    core = core_of(max_restarts=4, restart_window=9.0, backoff=backoff)
    assert core.policy.backoff == backoff
    assert core.policy.intensity is not None
    assert (core.policy.intensity.max_restarts, core.policy.intensity.window) == (4, 9.0)
    child = add(core)
    _, outcome = fail(core, child, 1.0)
    assert isinstance(outcome, RunAgain)
    assert outcome.decision.delay == 2.0


def test_an_exit_is_classified_once_from_its_own_error() -> None:
    exit = ChildExit(NetworkError("down"))
    classification = exit.classification()
    assert classification == classify_error(NetworkError("down"))
    assert exit.classification() is classification


# -- decide --------------------------------------------------------------------------------


def test_the_failure_event_names_the_single_error_inside_a_group() -> None:
    core = core_of()
    child = add(core)
    event, _ = fail(core, child, 1.0, ExceptionGroup("wrapped", [ValueError("boom")]))
    assert event is not None
    assert (event.source, event.supervisor, event.child) == ("sup", "sup", "a")
    assert (event.error_type, event.error, event.attempt) == ("ValueError", "boom", 0)
    assert (event.severity, event.action) == (ErrorSeverity.CRITICAL, RecoveryAction.RESTART)


def test_each_child_has_its_own_budget_and_restart_type() -> None:
    core = core_of(max_restarts=None, child_limit=RestartLimit(1, 60.0))
    a, b = add(core, "a"), add(core, "b")
    assert isinstance(fail(core, a, 1.0)[1], RunAgain)
    assert isinstance(fail(core, b, 1.0)[1], RunAgain)  # b's budget is its own
    assert fail(core, a, 2.0)[1] == RemoveChild(ChildEnd.RESTART_BUDGET)
    # A permanent child that returns is restarted; a transient one leaves.
    permanent, transient = add(core, "p"), add(core, "t", restart=Restart.TRANSIENT)
    assert isinstance(core.decide(permanent, ChildExit(), now=3.0, rand=0.5)[1], RunAgain)
    assert core.decide(transient, ChildExit(), now=3.0, rand=0.5) == (
        None,
        RemoveChild(ChildEnd.STOPPED),
    )


def test_a_childs_own_restart_limit_is_passed_on() -> None:
    core = core_of(max_restarts=None)
    child = add(core, restart_limit=RestartLimit(1, 60.0))
    assert isinstance(fail(core, child, 1.0)[1], RunAgain)
    assert fail(core, child, 2.0)[1] == RemoveChild(ChildEnd.RESTART_BUDGET)


def test_the_childs_recovery_policy_decides() -> None:
    core = core_of()
    child = add(core, restart=Restart.TRANSIENT, recovery=RecoveryStrategy.Ignore())
    event, outcome = fail(core, child, 1.0)
    assert event is not None
    assert event.action is RecoveryAction.IGNORE
    assert outcome == RemoveChild(ChildEnd.STOPPED)  # an ignored failure is a normal end


def test_an_error_whose_own_strategy_ignores_it_ends_the_child_normally() -> None:
    core = core_of()
    child = add(core, restart=Restart.TRANSIENT)
    error = NetworkError("gone", recovery_strategy=RecoveryStrategy.Ignore())
    assert fail(core, child, 1.0, error)[1] == RemoveChild(ChildEnd.STOPPED)
    crashed = add(core, "temp", restart=Restart.TEMPORARY)
    assert fail(core, crashed, 1.0)[1] == RemoveChild(ChildEnd.FAILED)


def test_a_failover_starts_the_fallback_in_place() -> None:
    core = core_of()
    fallback = ChildSpec.of(job, name="backup")
    child = add(core, recovery=RecoveryStrategy.Failover(), fallback=fallback)
    event, outcome = fail(core, child, 1.0)
    assert event is not None
    assert event.action is RecoveryAction.FAILOVER
    assert isinstance(outcome, RunAgain)
    assert outcome.group is None
    core.apply(child, outcome)
    assert child.spec is fallback
    # With no fallback a failover is a plain restart.
    plain = add(core, "plain", recovery=RecoveryStrategy.Failover())
    event, _ = fail(core, plain, 1.0)
    assert event is not None
    assert event.action is RecoveryAction.RESTART


def test_the_jitter_draw_is_passed_on() -> None:
    core = core_of(backoff=Backoff(initial=1.0, jitter=0.5))
    child = add(core)
    _, outcome = core.decide(child, ChildExit(ValueError()), now=1.0, rand=0.0)
    assert isinstance(outcome, RunAgain)
    assert outcome.decision.delay == 0.5


def test_an_untracked_childs_run_start_is_passed_on() -> None:
    """The first exit's run started at 0; a second exit with no start reported in
    between (a replaced run's) at 200 is a run longer than the window: retries reset."""
    core = core_of(max_restarts=5, restart_window=60.0)
    child = add(core, recovery=RETRY_ONCE)
    _, first = fail(core, child, 100.0)
    assert isinstance(first, RunAgain)
    assert first.decision == RetryChild(0.5, 1, ErrorSeverity.CRITICAL)
    _, second = fail(core, child, 200.0)
    assert isinstance(second, RunAgain)
    assert isinstance(second.decision, RetryChild)


def test_breaker_trips_are_counted_only_when_said() -> None:
    breaker = RecoveryStrategy.CircuitBreaker()
    core = core_of(max_restarts=1)
    child = add(core, recovery=breaker)
    for now in (1.0, 2.0, 3.0):  # failures that do not open the breaker again
        _, outcome = fail(core, child, now)
        assert isinstance(outcome, RunAgain)
        assert outcome.gated
        assert outcome.group is None
    assert isinstance(fail(core, child, 4.0, breaker_trips=True)[1], RunAgain)
    assert isinstance(fail(core, child, 5.0, breaker_trips=True)[1], GiveUp)


def test_one_for_one_restarts_directly_and_reload_takes_the_group_path() -> None:
    core = core_of()
    child = add(core)
    _, outcome = fail(core, child, 1.0)
    assert outcome == RunAgain(
        RestartChild(RecoveryAction.RESTART, 0.0, ErrorSeverity.CRITICAL), None, False
    )
    reloading = add(core, "r", recovery=RecoveryStrategy.Reload())
    _, outcome = fail(core, reloading, 1.0)
    assert isinstance(outcome, RunAgain)
    assert outcome.group == (reloading,)


def test_a_retry_runs_in_place() -> None:
    core = core_of(strategy=StrategyKind.ONE_FOR_ALL)
    child = add(core, recovery=RETRY_ONCE)
    add(core, "b")
    _, outcome = fail(core, child, 1.0)
    assert outcome == RunAgain(RetryChild(0.5, 1, ErrorSeverity.CRITICAL), None, False)


@pytest.mark.parametrize("current", [True, False])
def test_a_stopped_run_is_settled_without_a_decision(current: bool) -> None:
    core = core_of()
    child = add(core)
    assert core.decide(child, ChildExit(stopped=True), now=1.0, rand=0.5, current=current) == (
        None,
        Settle(),
    )
    assert child.state is (ChildState.STOPPED if current else ChildState.RUNNING)
    assert core.decisions == 0


# -- apply ---------------------------------------------------------------------------------


def state_of(child: Child) -> ChildState:
    """The child's state, read anew (not narrowed by an earlier assertion)."""
    return child.state


def test_apply_counts_restarts_retries_and_stopped_children() -> None:
    core = core_of()
    child = add(core)
    retry = RunAgain(RetryChild(0.5, 1), None, False)
    restart = RunAgain(RestartChild(RecoveryAction.RESTART), None, False)
    for outcome in (retry, retry, restart):
        core.apply(child, outcome)
    assert (child.restarts, child.retries, core.restarts) == (3, 2, 3)
    assert child.state is ChildState.RUNNING  # a direct restart leaves the state be
    core.apply(child, RunAgain(RestartChild(RecoveryAction.RESTART), (child,), False))
    assert state_of(child) is ChildState.WAITING  # its group restarts it
    for _ in range(2):
        core.apply(child, RemoveChild(ChildEnd.RESTART_BUDGET))
    assert (core.stopped_children, child.state) == (2, ChildState.FAILED)
    core.apply(child, RemoveChild(ChildEnd.STOPPED))
    assert (core.stopped_children, child.state) == (2, ChildState.STOPPED)
    core.apply(child, RemoveChild(ChildEnd.FAILED))
    assert state_of(child) is ChildState.FAILED


def test_the_first_give_up_wins() -> None:
    core = core_of()
    a, b = add(core, "a"), add(core, "b")
    first = core.give_up(a, ValueError("first"), EscalateFailure())
    assert (a.state, core.state, core.failure) == (ChildState.FAILED, SupervisorState.FAILED, first)
    assert core.give_up(b, ValueError("second"), EscalateFailure()) is first
    assert b.state is ChildState.RUNNING


# -- affected ------------------------------------------------------------------------------


def test_a_group_leaves_out_the_children_a_sibling_owns() -> None:
    core = core_of(strategy=StrategyKind.ONE_FOR_ALL)
    a, owned, c = add(core, "a"), add(core, "owned", owner="a"), add(core, "c")
    assert core.affected(a) == [a, c]
    assert core.affected(owned) == [a, owned, c]


# -- the failure given up with ---------------------------------------------------------------


def test_intensity_exceeded_names_the_limit_and_the_last_failure() -> None:
    core = core_of(max_restarts=1, restart_window=60.0)
    child = add(core)
    fail(core, child, 1.0)
    error = ValueError("boom")
    _, outcome = fail(core, child, 2.0, error)
    assert isinstance(outcome, GiveUp)
    failure = outcome.failure
    assert isinstance(failure, RestartIntensityExceeded)
    assert str(failure) == (
        "supervisor 'sup' exceeded 1 restarts in 60.0 s (last failure: child 'a': ValueError: boom)"
    )
    assert failure.__cause__ is error


@pytest.mark.parametrize(
    ("config", "spec", "text"),
    [
        ({"max_restarts": None, "child_limit": RestartLimit(2, 5.0)}, {}, "2 restarts in 5.0 s"),
        (
            {"max_restarts": None, "child_limit": RestartLimit(2, 5.0)},
            {"restart_limit": RestartLimit(3, 7.0)},
            "3 restarts in 7.0 s",
        ),
        ({"max_restarts": None}, {}, "its restart limit"),
    ],
)
def test_without_intensity_the_limit_named_is_the_childs(
    config: dict[str, Any], spec: dict[str, Any], text: str
) -> None:
    core = core_of(**config)
    child = add(core, **spec)
    failure = core.give_up(child, None, EscalateFailure(intensity_exceeded=True))
    assert str(failure) == f"supervisor 'sup' exceeded {text} (last failure: child 'a')"


def test_an_escalation_names_the_child_its_error_and_the_root_cause() -> None:
    core = core_of()
    child = add(core, recovery=RecoveryStrategy.Escalate())
    error = RuntimeError("outer")
    error.__cause__ = OSError("disk")
    _, outcome = fail(core, child, 1.0, error)
    assert isinstance(outcome, GiveUp)
    failure = outcome.failure
    assert isinstance(failure, EscalatedError)
    assert str(failure) == (
        "child 'a' of supervisor 'sup' escalated RuntimeError: outer (root cause: OSError: disk)"
    )
    assert (failure.supervisor, failure.child, failure.__cause__) == ("sup", "a", error)


def test_an_escalation_without_a_cause_or_an_error() -> None:
    core = core_of()
    child = add(core)
    failure = core.give_up(child, ExceptionGroup("g", [ValueError("x")]), EscalateFailure())
    assert str(failure) == "child 'a' of supervisor 'sup' escalated ValueError: x"
    other = core_of()
    failure = other.give_up(add(other), None, EscalateFailure())
    assert str(failure) == "child 'a' of supervisor 'sup' escalated None"
    assert failure.__cause__ is None


def test_describe() -> None:
    assert describe(None) == "None"
    assert describe(KeyError("k")) == "KeyError: 'k'"


# -- exits, starts, removal, reconfiguration -----------------------------------------------


def test_exit_events_describe_the_run_and_count_failures() -> None:
    core = core_of()
    child = add(core)
    events = core.exit_events(child, ChildExit(ExceptionGroup("g", [KeyError("k")])))
    exited, occurred = events
    assert isinstance(exited, ChildExited)
    assert isinstance(occurred, ErrorOccurred)
    assert (exited.source, exited.supervisor, exited.child) == ("sup", "sup", "a")
    assert (exited.exit, exited.error_type) == (ExitKind.FAILED, "KeyError")
    assert (occurred.source, occurred.component) == ("sup", "sup/a")
    assert (occurred.error_type, occurred.message) == ("KeyError", "'k'")
    assert occurred.severity is classify_error(KeyError("k")).severity
    core.exit_events(child, ChildExit(ValueError()))
    assert (child.failures, core.failures) == (2, 2)
    for exit, kind in [
        (ChildExit(cancelled=True), ExitKind.CANCELLED),
        (ChildExit(stopped=True), ExitKind.CANCELLED),
        (ChildExit(), ExitKind.RETURNED),
    ]:
        (only,) = core.exit_events(child, exit)
        assert isinstance(only, ChildExited)
        assert (only.exit, only.error_type) == (kind, "")
    assert (child.failures, core.failures) == (2, 2)


def test_a_tracked_childs_starts_are_reported_to_the_policy() -> None:
    """Retry-once children, window 60 s: a run from 10 to 65 is short (the retry is
    spent: restart), one from 10 to 75 is long (the count starts over: retry)."""
    core = core_of(max_restarts=10, restart_window=60.0)
    short, long = add(core, "short", recovery=RETRY_ONCE), add(core, "long", recovery=RETRY_ONCE)
    for child in (short, long):
        _, outcome = fail(core, child, 1.0)
        assert isinstance(outcome.decision, RetryChild)
        core.run_started(child, 10.0)
    _, outcome = fail(core, short, 65.0)
    assert isinstance(outcome.decision, RestartChild)
    _, outcome = fail(core, long, 75.0)
    assert isinstance(outcome.decision, RetryChild)


def test_a_retry_decision_announces_its_attempt_and_a_return_no_error() -> None:
    core = core_of()
    child = add(core, recovery=RETRY_ONCE)
    event, _ = fail(core, child, 1.0)
    assert event is not None
    assert event.attempt == 1
    event, _ = core.decide(child, ChildExit(), now=2.0, rand=0.5)  # permanent: restarted
    assert event is not None
    assert (event.action, event.error_type, event.error) == (RecoveryAction.RESTART, "", "")


def test_a_recovery_function_sees_the_error_and_only_failures() -> None:
    seen: list[BaseException] = []

    def recovery(error: BaseException) -> RecoveryStrategy | None:
        seen.append(error)
        return RecoveryStrategy.Ignore() if isinstance(error, KeyError) else None

    core = core_of()
    child = add(core, restart=Restart.TRANSIENT, recovery=recovery)
    error = KeyError("k")
    assert fail(core, child, 1.0, error)[1] == RemoveChild(ChildEnd.STOPPED)
    assert core.decide(child, ChildExit(), now=2.0, rand=0.5)[1] == RemoveChild(ChildEnd.STOPPED)
    assert seen == [error]


def test_an_exit_is_classified_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[BaseException] = []

    def counting(error: BaseException) -> Any:
        calls.append(error)
        return classify_error(error)

    monkeypatch.setattr(_decision, "classify_error", counting)
    core = core_of()
    child = add(core)
    exit = ChildExit(ValueError())
    exit.classification()
    core.decide(child, exit, now=1.0, rand=0.5)
    assert calls == []  # the policy reuses the exit's classification


def test_discard_forgets_only_the_registered_child_once() -> None:
    core = core_of()
    child = add(core)
    fail(core, child, 1.0)
    assert core.policy.tracks("a")
    impostor = Child(
        name="a",
        spec=child.spec,
        supervisor=cast(Any, None),
        restart=Restart.PERMANENT,
        shutdown_timeout=1.0,
    )
    assert not core.discard(impostor, ChildEnd.STOPPED)
    assert impostor.end_reason is None
    assert core.discard(child, ChildEnd.FAILED)
    assert (child.end_reason, core.get("a"), core.policy.tracks("a")) == (
        ChildEnd.FAILED,
        None,
        False,
    )
    assert not core.discard(child, ChildEnd.STOPPED)
    again = add(core)
    again.end_reason = ChildEnd.RESTART_BUDGET
    assert core.discard(again, ChildEnd.STOPPED)
    assert again.end_reason is ChildEnd.RESTART_BUDGET  # the first reason stays


def test_reconfigure_replaces_the_config_and_the_policys_bounds() -> None:
    core = core_of(max_restarts=1)
    backoff = Backoff(initial=3.0, jitter=0.0)
    config = SupervisorConfig(
        name="sup",
        max_restarts=7,
        restart_window=5.0,
        child_limit=RestartLimit(2, 4.0),
        backoff=backoff,
    )
    core.reconfigure(config)
    assert core.config is config
    assert core.policy.intensity is not None
    assert (core.policy.intensity.max_restarts, core.policy.intensity.window) == (7, 5.0)
    assert (core.policy.child_limit, core.policy.backoff) == (RestartLimit(2, 4.0), backoff)


@pytest.mark.parametrize("restart", list(Restart))
def test_only_a_temporary_sibling_is_dropped_from_a_group_restart(restart: Restart) -> None:
    core = core_of()
    assert core.temporary_sibling(add(core, restart=restart)) is (restart is Restart.TEMPORARY)
