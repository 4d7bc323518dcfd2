"""Hypothesis strategies for property tests of systems built on mister_smith.

Import them from here (hypothesis is a test dependency, so the rest of
:mod:`mister_smith.testing` does not need it)::

    from hypothesis import given
    from mister_smith.testing import SystemTestHarness, run_virtual
    from mister_smith.testing.strategies import scenarios

    @given(scenarios())
    def test_survives(scenario):
        async def main():
            async with SystemTestHarness.open() as harness:
                await harness.run_scenario(scenario)
                harness.assert_invariants()
        run_virtual(main)

Every generated value has a ``repr`` that rebuilds it, and every choice shrinks toward
the simplest case (fewer nodes, the first strategy and restart type, earlier times), so
a failing example prints as a small, readable reproduction.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs
from hypothesis import strategies as st

from .. import errors
from ..errors import ErrorSeverity, MisterSmithError, RecoveryStrategy
from ..supervision import Backoff, StrategyKind
from ..types import Restart
from ._failures import FailureType
from ._specs import (
    ActorSpec,
    CallTool,
    FlakyToolSpec,
    NodeSpec,
    Operation,
    Scenario,
    ScheduledFailure,
    Send,
    SupervisorSpec,
    WorkerSpec,
)

__all__ = [
    "ERROR_KINDS",
    "error_failures",
    "failure_schedules",
    "failure_types",
    "message_workloads",
    "recovery_strategies",
    "scenarios",
    "supervision_trees",
]

ERROR_KINDS: tuple[type[Exception], ...] = (
    *sorted(
        (
            kind
            for kind in vars(errors).values()
            if isinstance(kind, type) and issubclass(kind, MisterSmithError)
        ),
        key=lambda kind: kind.__name__,
    ),
    ValueError,
    KeyError,
    ConnectionError,
    TimeoutError,
)
"""Every :class:`~mister_smith.errors.MisterSmithError` kind, plus builtin errors user
code raises (classified as ``RuntimeFault`` or, for ``ConnectionError``,
``NetworkError``)."""

_BACKOFFS = (
    None,
    Backoff(initial=0.5, maximum=4.0, jitter=0.0),
    Backoff(initial=2.0, maximum=10.0),
)
_RESTART_TYPES = (Restart.PERMANENT, Restart.TRANSIENT, Restart.TEMPORARY)
_STRATEGY_KINDS = (StrategyKind.ONE_FOR_ONE, StrategyKind.ONE_FOR_ALL, StrategyKind.REST_FOR_ONE)


def _times(horizon: float) -> st.SearchStrategy[float]:
    """Half-second steps in ``[0, horizon]``: readable and shrinking toward 0."""
    return st.integers(0, max(0, int(horizon * 2))).map(lambda n: n / 2)


def recovery_strategies() -> st.SearchStrategy[RecoveryStrategy]:
    """Every recovery strategy, retries with small attempt counts and delays."""
    return st.one_of(
        st.just(RecoveryStrategy.Restart()),
        st.builds(
            RecoveryStrategy.Retry,
            max_attempts=st.integers(1, 3),
            delay=st.sampled_from([0.0, 0.5, 1.0]),
        ),
        st.sampled_from(
            [
                RecoveryStrategy.Escalate(),
                RecoveryStrategy.Reload(),
                RecoveryStrategy.CircuitBreaker(),
                RecoveryStrategy.Failover(),
                RecoveryStrategy.Ignore(),
            ]
        ),
    )


def error_failures(
    kinds: Sequence[type[Exception]] = ERROR_KINDS,
) -> st.SearchStrategy[FailureType]:
    """``FailureType.ERROR`` of every kind, with and without severity and recovery
    overrides (overrides only on ``MisterSmithError`` kinds)."""

    @st.composite
    def build(draw: st.DrawFn) -> FailureType:
        kind = draw(st.sampled_from(list(kinds)))
        if not issubclass(kind, MisterSmithError):
            return FailureType.ERROR(kind)
        severity = draw(st.none() | st.sampled_from(list(ErrorSeverity)))
        recovery = draw(st.none() | recovery_strategies())
        return FailureType.ERROR(kind, severity=severity, recovery=recovery)

    return build()


def failure_types(
    *,
    crash: bool = True,
    errors: bool = True,
    hang: bool = True,
    slow: bool = True,
    drop_heartbeat: bool = False,
    max_delay: float = 10.0,
) -> st.SearchStrategy[FailureType]:
    """Failures of the kinds asked for (``CRASH`` first, so examples shrink to it)."""
    options: list[st.SearchStrategy[FailureType]] = []
    if crash:
        options.append(st.just(FailureType.CRASH))
    if errors:
        options.append(error_failures())
    if hang:
        options.append(st.just(FailureType.HANG))
    if slow:
        options.append(_times(max_delay).map(FailureType.SLOW))
    if drop_heartbeat:
        options.append(st.just(FailureType.DROP_HEARTBEAT))
    if not options:
        raise ValueError("failure_types() needs at least one kind of failure")
    return st.one_of(options)


def _applicable(node: NodeSpec | FlakyToolSpec) -> st.SearchStrategy[FailureType]:
    if isinstance(node, ActorSpec):
        return failure_types()
    if isinstance(node, WorkerSpec):
        monitored = node.heartbeat_timeout is not None
        return failure_types(hang=monitored, slow=monitored, drop_heartbeat=monitored)
    if isinstance(node, SupervisorSpec):
        return failure_types(hang=False, slow=False)
    return failure_types()


@st.composite
def supervision_trees(
    draw: st.DrawFn,
    *,
    max_depth: int = 4,
    max_children: int = 3,
    max_nodes: int = 10,
    actors: bool = True,
    workers: bool = True,
    max_tools: int = 2,
) -> SupervisorSpec:
    """Random supervision trees: nested supervisors (depth ``<= max_depth``) with every
    strategy, restart type, restart intensity and recovery, over actor and worker leaves,
    plus up to ``max_tools`` tools.

    Nodes are named by kind and position (``sup0``, ``actor0``, ``worker0``, ``tool0``);
    at most ``max_nodes`` nodes below the root.
    """
    if max_depth < 1:
        raise ValueError(f"max_depth must be >= 1, got {max_depth!r}")
    leaf_kinds = [kind for kind, on in (("actor", actors), ("worker", workers)) if on]
    if not leaf_kinds:
        raise ValueError("supervision_trees() needs actors or workers as leaves")
    counters = {"sup": 0, "actor": 0, "worker": 0}
    budget = [max_nodes]

    def name(kind: str) -> str:
        number = counters[kind]
        counters[kind] += 1
        return f"{kind}{number}"

    def supervisor(depth: int) -> SupervisorSpec:
        own_name = name("sup")
        kinds = leaf_kinds + (["sup"] if depth < max_depth else [])
        children: list[NodeSpec] = []
        for _ in range(draw(st.integers(0, max_children))):
            if budget[0] <= 0:
                break
            budget[0] -= 1
            kind = draw(st.sampled_from(kinds))
            if kind == "actor":
                children.append(
                    ActorSpec(
                        name("actor"),
                        restart=draw(
                            st.sampled_from(
                                [Restart.TRANSIENT, Restart.PERMANENT, Restart.TEMPORARY]
                            )
                        ),
                        handler_timeout=draw(st.sampled_from([None, 5.0, 1.0])),
                        mailbox_capacity=draw(st.sampled_from([64, 4, 1])),
                        recovery=draw(st.none() | recovery_strategies()),
                    )
                )
            elif kind == "worker":
                children.append(
                    WorkerSpec(
                        name("worker"),
                        restart=draw(st.sampled_from(_RESTART_TYPES)),
                        heartbeat_timeout=draw(st.sampled_from([None, 3.0, 10.0])),
                        recovery=draw(st.none() | recovery_strategies()),
                    )
                )
            else:
                children.append(supervisor(depth + 1))
        return SupervisorSpec(
            own_name,
            children=tuple(children),
            strategy=draw(st.sampled_from(_STRATEGY_KINDS)),
            max_restarts=draw(st.integers(0, 5).map(lambda n: (3 + n) % 6)),
            restart_window=draw(st.sampled_from([60.0, 5.0, 1.0])),
            restart=draw(st.sampled_from(_RESTART_TYPES)),
            recovery=draw(st.sampled_from([None, RecoveryStrategy.Restart()])),
            backoff=draw(st.sampled_from(_BACKOFFS)),
        )

    root = supervisor(1)
    tools: list[FlakyToolSpec] = []
    for index in range(draw(st.integers(0, max_tools))):
        timeout = draw(st.sampled_from([5.0, 1.0]))
        work = draw(st.sampled_from([0.0, 0.5, 2.0]))
        tools.append(FlakyToolSpec(f"tool{index}", timeout=timeout, work=work))
    return attrs.evolve(root, tools=tuple(tools))


def failure_schedules(
    tree: SupervisorSpec,
    *,
    max_failures: int = 8,
    horizon: float = 20.0,
    supervisors: bool = True,
) -> st.SearchStrategy[tuple[ScheduledFailure, ...]]:
    """Failures at times in ``[0, horizon]`` aimed at ``tree``'s nodes and tools.

    Each target only gets failures that apply to it: actors and tools every kind,
    monitored workers also ``HANG`` / ``SLOW`` / ``DROP_HEARTBEAT``, unmonitored workers
    and supervisors (when ``supervisors``) ``CRASH`` and every ``ERROR`` kind.
    """
    targets: list[NodeSpec | FlakyToolSpec] = [
        node
        for node in tree.walk()
        if not isinstance(node, SupervisorSpec) or (supervisors and node is not tree)
    ]
    targets += list(tree.tools)
    if supervisors:
        targets.append(tree)
    if not targets:
        return st.just(())

    @st.composite
    def entry(draw: st.DrawFn) -> ScheduledFailure:
        target = draw(st.sampled_from(targets))
        return ScheduledFailure(draw(_times(horizon)), target.name, draw(_applicable(target)))

    return st.lists(entry(), max_size=max_failures).map(
        lambda entries: tuple(sorted(entries, key=lambda e: e.at))
    )


def message_workloads(
    tree: SupervisorSpec, *, max_messages: int = 20, horizon: float = 20.0
) -> st.SearchStrategy[tuple[Operation, ...]]:
    """``tell`` / ``ask`` sequences to ``tree``'s actors (with handler work times) and
    calls of its tools, at times in ``[0, horizon]``."""
    actors = [actor.name for actor in tree.actors()]
    tools = [tool.name for tool in tree.tools]
    options: list[st.SearchStrategy[Operation]] = []
    if actors:
        options.append(
            st.builds(
                Send,
                at=_times(horizon),
                actor=st.sampled_from(actors),
                ask=st.booleans(),
                work=st.sampled_from([0.0, 0.5, 2.0]),
                timeout=st.sampled_from([10.0, 1.0]),
            )
        )
    if tools:
        options.append(
            st.builds(
                CallTool,
                at=_times(horizon),
                tool=st.sampled_from(tools),
                timeout=st.sampled_from([None, 1.0]),
            )
        )
    if not options:
        return st.just(())
    return st.lists(st.one_of(options), max_size=max_messages).map(
        lambda ops: tuple(sorted(ops, key=lambda op: op.at))
    )


@st.composite
def scenarios(
    draw: st.DrawFn,
    *,
    max_depth: int = 4,
    max_nodes: int = 10,
    max_failures: int = 8,
    max_messages: int = 20,
    horizon: float = 20.0,
) -> Scenario:
    """A tree, a workload and a failure schedule for it (see the other strategies)."""
    tree = draw(supervision_trees(max_depth=max_depth, max_nodes=max_nodes))
    workload = draw(message_workloads(tree, max_messages=max_messages, horizon=horizon))
    schedule = draw(failure_schedules(tree, max_failures=max_failures, horizon=horizon))
    return Scenario(tree, workload, schedule)
