"""The failure-injection property suite.

Hypothesis generates a supervision tree of supervisors, actors, workers and tools, a
message workload and a failure schedule (crashes, hangs, slow handlers, errors of every
kind and severity, tool timeouts). Each example runs in a fresh Trio run on a
``MockClock`` under :class:`~mister_smith.testing.SystemTestHarness`, and afterwards:

- nothing is lost silently: ``accepted == handled + dead_lettered`` per actor and in
  total, and the counters agree with the events;
- no task outlives the runtime (a Trio instrument counts spawns and exits);
- every failure got at most one supervision decision, exactly one unless its
  supervisor was stopping it, and each decision matches the error's recovery strategy
  as :class:`~mister_smith.supervision.SupervisorPolicy` carries it out (a retry may
  fall back to a restart; past the restart intensity the supervisor escalates, past a
  child's own budget the child is stopped) — the event history is replayed through a
  fresh policy per supervisor incarnation;
- no supervisor exceeded its restart intensity without escalating, and an escalation
  reaching the runtime's root ends the run with that error;
- shutdown completed within its bound (virtual time).

The ``ci`` hypothesis profile runs a few hundred examples in seconds;
``MISTER_SMITH_HYPOTHESIS_PROFILE=thorough`` runs thousands.
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Iterator, Sequence

import attrs
import pytest
import trio
from hypothesis import given, settings
from hypothesis import strategies as st

from mister_smith import errors as error_module
from mister_smith.config import AgentConfig
from mister_smith.errors import (
    ActorCrashed,
    MisterSmithError,
    RecoveryAction,
    RecoveryStrategy,
    SupervisionError,
    ToolNotFound,
)
from mister_smith.events import (
    ChildExited,
    ChildStarted,
    DeadLetter,
    ErrorOccurred,
    Event,
    ExitKind,
    SupervisionDecision,
    SupervisorStopped,
    ToolCalled,
)
from mister_smith.supervision import RestartIntensity, RestartLimit, RetryChild, SupervisorPolicy
from mister_smith.testing import (
    ActorSpec,
    CallTool,
    FailureType,
    FlakyToolSpec,
    Injection,
    Scenario,
    ScenarioReport,
    ScheduledFailure,
    SupervisorSpec,
    SystemTestHarness,
    TaskCounter,
    run_virtual,
)
from mister_smith.testing.strategies import scenarios
from mister_smith.types import Restart, StrategyKind

EXAMPLES = settings().max_examples * 4
"""Examples per property: 200 under the ``ci`` profile, 4,000 under ``thorough``."""


@pytest.fixture(autouse=True)
def _quiet_logs() -> Iterator[None]:
    """Supervision logs every decision; thousands of examples need no log records."""
    logging.disable(logging.CRITICAL)
    yield
    logging.disable(logging.NOTSET)


# -- what the supervisors were told about their children --------------------------------


@attrs.frozen
class ChildInfo:
    """A child's restart type and recovery override, as its supervisor knows them."""

    restart: Restart
    recovery: RecoveryStrategy | None = None


@attrs.frozen
class Limits:
    """A supervisor's restart intensity (``None``: none), strategy and per-child budget."""

    max_restarts: int | None
    window: float
    strategy: StrategyKind = StrategyKind.ONE_FOR_ONE
    child_limit: RestartLimit | None = None


def supervision_table(
    tree: SupervisorSpec, config: AgentConfig
) -> tuple[dict[tuple[str, str], ChildInfo], dict[str, Limits]]:
    """Child infos by (supervisor, child) and limits by supervisor name, for the runtime's
    ``root`` and ``actors`` supervisors and every supervisor of ``tree``.

    ``actors`` is the actor system's domain: no supervisor-wide intensity, a restart
    budget per child (the tree's top supervisor is one of its children)."""
    sup = config.supervision
    children = {
        ("root", "actors"): ChildInfo(Restart.PERMANENT),
        ("actors", tree.name): ChildInfo(tree.restart, tree.recovery),
    }
    limits = {
        "root": Limits(sup.max_restart_attempts, sup.restart_window, sup.restart_strategy),
        "actors": Limits(
            None,
            sup.restart_window,
            child_limit=RestartLimit(sup.max_restart_attempts, sup.restart_window),
        ),
    }
    for node in tree.supervisors():
        limits[node.name] = Limits(node.max_restarts, node.restart_window, node.strategy)
        for child in node.children:
            children[(node.name, child.name)] = ChildInfo(child.restart, child.recovery)
    return children, limits


LIBRARY_ERRORS: dict[str, type[MisterSmithError]] = {
    name: kind
    for name, kind in vars(error_module).items()
    if isinstance(kind, type) and issubclass(kind, MisterSmithError)
}


def error_of(decision: SupervisionDecision, injected: dict[str, BaseException]) -> BaseException:
    """The exception behind ``decision``: an injected one (by its text, which is unique),
    else a library error of that type with its default severity and recovery."""
    if decision.error in injected:
        return injected[decision.error]
    kind = LIBRARY_ERRORS.get(decision.error_type)
    if kind is None:
        raise AssertionError(f"decision about an unexpected error: {decision!r}")
    return kind(decision.error)


# -- replaying the decisions ------------------------------------------------------------


def replay_decisions(
    log: Sequence[Event],
    children: dict[tuple[str, str], ChildInfo],
    limits: dict[str, Limits],
    injected: dict[str, BaseException],
) -> list[str]:
    """Replay every child exit through a fresh :class:`SupervisorPolicy` per supervisor
    incarnation and return every way the recorded decisions differ from it.

    A run is announced (``ChildStarted``) once it says it has started, but the policy
    counts it as started when it begins running; a run that fails while starting (a
    nested supervisor hit while it starts its children) is never announced. Starting
    takes no virtual time in these trees, so such a run began at its exit's time.
    """
    problems: list[str] = []
    models: dict[str, SupervisorPolicy] = {}
    announced: set[tuple[str, str]] = set()

    def model(name: str) -> SupervisorPolicy:
        if name not in models:
            limit = limits[name]
            intensity = (
                None
                if limit.max_restarts is None
                else RestartIntensity(limit.max_restarts, limit.window)
            )
            models[name] = SupervisorPolicy(intensity, child_limit=limit.child_limit)
        return models[name]

    for index, event in enumerate(log):
        if isinstance(event, SupervisorStopped):
            models.pop(event.supervisor, None)
            continue
        if isinstance(event, ChildStarted) and event.supervisor in limits:
            model(event.supervisor).child_started(event.child, event.timestamp)
            announced.add((event.supervisor, event.child))
            continue
        if not isinstance(event, ChildExited) or event.supervisor not in limits:
            continue
        key = (event.supervisor, event.child)
        if key not in announced and event.exit is not ExitKind.CANCELLED:
            model(event.supervisor).child_started(event.child, event.timestamp)
        announced.discard(key)
        following = log[index + 1 : index + 3]
        if event.exit is ExitKind.FAILED:
            if not following or not isinstance(following[0], ErrorOccurred):
                problems.append(f"failed exit without ErrorOccurred: {event!r}")
                continue
            following = following[1:]
        decision = following[0] if following else None
        if not (
            isinstance(decision, SupervisionDecision)
            and decision.supervisor == event.supervisor
            and decision.child == event.child
        ):
            continue  # undecided: checked against the supervisor's state by the caller
        if event.exit is ExitKind.CANCELLED:
            problems.append(f"a cancelled exit got a decision: {decision!r}")
            continue
        info = children.get((event.supervisor, event.child))
        if info is None:
            continue  # not a child the scenario declared (e.g. an actor's own children)
        error = None if event.exit is ExitKind.RETURNED else error_of(decision, injected)
        expected = model(event.supervisor).decide(
            event.child,
            info.restart,
            error,
            now=event.timestamp,
            strategy=None if error is None else info.recovery,
        )
        attempt = expected.attempt if isinstance(expected, RetryChild) else 0
        if (expected.action, attempt, expected.severity) != (
            decision.action,
            decision.attempt,
            decision.severity,
        ):
            problems.append(
                f"{event.supervisor}/{event.child}: decided {decision.action.value} "
                f"(attempt {decision.attempt}, {decision.severity.name}) about "
                f"{decision.error_type}, expected {expected.action and expected.action.value} "
                f"(attempt {attempt}, {expected.severity.name})"
            )
    return problems


def group_restarts_explain(
    log: Sequence[Event], limits: dict[str, Limits], index: int, exit_event: ChildExited
) -> bool:
    """Whether an undecided failure at ``log[index]`` happened while its supervisor was
    stopping the child for a group restart (one-for-all / rest-for-one)."""
    if limits[exit_event.supervisor].strategy is StrategyKind.ONE_FOR_ONE:
        return False
    return any(
        isinstance(e, SupervisionDecision)
        and e.supervisor == exit_event.supervisor
        and e.timestamp == exit_event.timestamp
        and e.action is not RecoveryAction.ESCALATE
        for e in log[:index]
    )


# -- the property -----------------------------------------------------------------------


@attrs.define
class Outcome:
    """What one example's run left behind for the checks."""

    harness: SystemTestHarness
    report: ScenarioReport
    escalated: SupervisionError | None
    leaked: list[str]
    spawned_exited: tuple[int, int]
    while_running: list[str]


def run_example(scenario: Scenario, config: AgentConfig) -> Outcome:
    """Run ``scenario`` in a fresh virtual-time Trio run, counting tasks."""
    counter = TaskCounter()
    report = ScenarioReport(scenario)
    box: list[SystemTestHarness] = []
    escalated: list[SupervisionError] = []
    while_running: list[str] = []

    async def main() -> None:
        counter.mark()
        try:
            async with SystemTestHarness.open(config) as harness:
                box.append(harness)
                await harness.run_scenario(scenario, report=report)
                # Mid-life too: live actors, running supervisors' counters.
                while_running.extend(f"while running: {p}" for p in harness.check_invariants())
        except SupervisionError as exc:
            escalated.append(exc)

    run_virtual(main, instruments=[counter])
    leaked = [task.name for task in counter.live_since_mark()]
    return Outcome(
        box[0],
        report,
        escalated[0] if escalated else None,
        leaked,
        (counter.spawned, counter.exited),
        while_running,
    )


def check_example(scenario: Scenario, config: AgentConfig, outcome: Outcome) -> None:
    """Assert every invariant of the suite on one example's outcome."""
    harness = outcome.harness
    log = harness.event_log()
    problems = outcome.while_running + harness.check_invariants()
    problems += [f"task {name!r} outlived trio.run's main" for name in outcome.leaked]

    # -- decisions match the recovery strategies, replayed through the policy -------------
    children, limits = supervision_table(scenario.tree, config)
    injections = harness.injections()
    injected = {str(i.error): i.error for i in injections if i.error is not None}
    problems += replay_decisions(log, children, limits, injected)
    for index, event in enumerate(log):
        if not (isinstance(event, ChildExited) and event.exit is ExitKind.FAILED):
            continue
        if event.supervisor not in limits:
            continue
        nxt = log[index + 2] if index + 2 < len(log) else None
        decided = (
            isinstance(nxt, SupervisionDecision)
            and nxt.supervisor == event.supervisor
            and nxt.child == event.child
        )
        if decided:
            continue
        halted = any(
            isinstance(e, SupervisorStopped) and e.supervisor == event.supervisor
            for e in log[index:]
        )
        if not halted and not group_restarts_explain(log, limits, index, event):
            problems.append(f"failure without a decision while its supervisor ran on: {event!r}")

    # -- escalation reaching the root ends the run ----------------------------------------
    root_escalated = any(
        isinstance(e, SupervisionDecision)
        and e.supervisor == "root"
        and e.action is RecoveryAction.ESCALATE
        for e in log
    )
    if root_escalated != (outcome.escalated is not None):
        problems.append(
            f"root escalation decided: {root_escalated}, run ended with {outcome.escalated!r}"
        )

    # -- every applied injection surfaced exactly once --------------------------------------
    problems += injection_traces(injections, log)

    # -- actor failures: handler errors == failed exits --------------------------------------
    tree_supervisors = {node.name for node in scenario.tree.supervisors()}
    failed_exits = collections.Counter(
        e.child
        for e in log
        if isinstance(e, ChildExited)
        and e.exit is ExitKind.FAILED
        and e.supervisor in tree_supervisors
    )
    failed_counts = collections.Counter[str]()
    for ref in harness.known_actors():
        failed_counts[ref.name] += ref.statistics().failed
    for actor in scenario.tree.actors():
        if failed_counts[actor.name] != failed_exits[actor.name]:
            problems.append(
                f"actor {actor.name!r}: failed counter {failed_counts[actor.name]} but "
                f"{failed_exits[actor.name]} failed exits"
            )

    assert not problems, "\n".join(problems)


def injection_traces(injections: Sequence[Injection], log: Sequence[Event]) -> list[str]:
    """Each applied raising injection shows up exactly once — as a failure, or for an
    actor as a rejected message (``MessageRejected`` is not the actor's failure) — or,
    for a child, at most once (its run may end another way at the same moment)."""
    problems: list[str] = []
    messages = collections.Counter(e.message for e in log if isinstance(e, ErrorOccurred))
    messages.update(
        e.reason.removeprefix("rejected: ")
        for e in log
        if isinstance(e, DeadLetter) and e.reason.startswith("rejected: ")
    )
    tool_errors = [e.error or "" for e in log if isinstance(e, ToolCalled)]
    for injection in injections:
        if not injection.applied or injection.error is None:
            continue
        text = str(injection.error)
        if injection.target.startswith("tool:"):
            seen = sum(1 for error in tool_errors if text in error)
            expected_range = (1, 1)
        else:
            seen = messages[text]
            expected_range = (1, 1) if injection.target.startswith("actor:") else (0, 1)
        if not expected_range[0] <= seen <= expected_range[1]:
            problems.append(f"{injection!r} surfaced {seen} times")
    return problems


# -- regression: a tool raising ToolNotFound itself is that tool's failure ---------------


def test_tool_raising_tool_not_found_is_announced_as_counted() -> None:
    scenario = Scenario(
        SupervisorSpec("sup0", tools=(FlakyToolSpec("tool0"),)),
        workload=(CallTool(0.5, "tool0"),),
        schedule=(ScheduledFailure(0.0, "tool0", FailureType.ERROR(ToolNotFound)),),
    )
    config = AgentConfig()
    check_example(scenario, config, run_example(scenario, config))


def test_an_actor_crashed_while_its_domain_respawns_it_is_counted_as_announced() -> None:
    # Shrunk from the property below: actor0 crashes at the very moment its retried
    # domain spawns it again; `spawned` used to count it though it was never announced
    # (no AgentSpawned, no AgentStopped). Whether spawn() resumes before the crash is
    # up to trio's scheduler, so the run is repeated under several of its seeds (its
    # private generator, the one hypothesis seeds in the property).
    scenario = Scenario(
        SupervisorSpec(
            "sup0",
            children=(ActorSpec("actor0", restart=Restart.TEMPORARY), ActorSpec("actor1")),
        ),
        workload=(),
        schedule=(
            ScheduledFailure(
                5.0,
                "sup0",
                FailureType.ERROR(
                    ActorCrashed, recovery=RecoveryStrategy.Retry(max_attempts=1, delay=1.0)
                ),
            ),
            ScheduledFailure(6.0, "actor0", FailureType.CRASH),
        ),
    )
    config = AgentConfig()
    scheduler = trio._core._run._r
    state = scheduler.getstate()
    try:
        for seed in range(6):
            scheduler.seed(seed)
            check_example(scenario, config, run_example(scenario, config))
    finally:
        scheduler.setstate(state)


# -- the properties ------------------------------------------------------------------------


@settings(max_examples=EXAMPLES)
@given(scenario=scenarios())
def test_system_survives_failure_schedules(scenario: Scenario) -> None:
    """Random trees, workloads and failure schedules keep every invariant."""
    config = AgentConfig()
    check_example(scenario, config, run_example(scenario, config))


@settings(max_examples=EXAMPLES // 2)
@given(scenario=scenarios(max_depth=2, max_nodes=4, max_failures=12, horizon=5.0))
def test_dense_failures_on_small_trees(scenario: Scenario) -> None:
    """Many failures in a short time on small trees: intensity and escalation paths."""
    config = AgentConfig()
    check_example(scenario, config, run_example(scenario, config))


@settings(max_examples=EXAMPLES // 4)
@given(
    scenario=scenarios(max_depth=1, max_nodes=3, max_failures=4),
    kind=st.sampled_from([FailureType.HANG, FailureType.SLOW(3.0)]),
    at=st.integers(0, 10).map(lambda n: n / 2),
)
def test_hangs_and_slow_handlers(scenario: Scenario, kind: FailureType, at: float) -> None:
    """Every actor of a flat tree hangs or slows down once, on top of the schedule."""
    extra = tuple(ScheduledFailure(at, actor.name, kind) for actor in scenario.tree.actors())
    schedule = tuple(sorted(scenario.schedule + extra, key=lambda entry: entry.at))
    scenario = attrs.evolve(scenario, schedule=schedule)
    config = AgentConfig()
    check_example(scenario, config, run_example(scenario, config))
