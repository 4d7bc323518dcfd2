"""``SupervisorCore`` (the sans-IO supervisor) driven by a hypothesis state machine.

Children are added, started and exit (returning, failing with errors of several
recovery strategies, or stopped on purpose) at non-decreasing instants; after every
step the machine checks what the core said against what it must say:

* a stopped exit, or any exit once the supervisor gave up, is settled without a
  decision; every other failure gets exactly one ``SupervisionDecision``;
* the counters (failures, decisions, restarts, stopped children) match the steps;
* restarts counted by intensity never exceed ``max_restarts`` within a window (the one
  beyond gives up), and no child exceeds its own budget (the one beyond is removed);
* a group restart names the failed child's strategy group in start order, a direct
  restart only happens when that group is the child alone (and there is no reload);
* giving up sets the state and a failure chained to the child's error, once.
"""

from __future__ import annotations

from typing import Any, cast

import attrs
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from mister_smith.errors import (
    ConfigError,
    NetworkError,
    RecoveryAction,
    RecoveryStrategy,
    SupervisionError,
)
from mister_smith.events import ChildExited, ErrorOccurred, SupervisionDecision
from mister_smith.supervision import (
    Child,
    ChildEnd,
    ChildExit,
    ChildSpec,
    ChildState,
    GiveUp,
    RemoveChild,
    RestartLimit,
    RetryChild,
    RunAgain,
    Settle,
    StrategyKind,
    SupervisorConfig,
    SupervisorCore,
    SupervisorState,
)
from mister_smith.types import Restart

ERRORS: dict[str, Any] = {
    "return": None,
    "value": lambda: ValueError("bug"),
    "network": lambda: NetworkError("down"),
    "config": lambda: ConfigError("stale"),
    "supervision": lambda: SupervisionError("give up"),
}
RECOVERIES: list[RecoveryStrategy | None] = [
    None,
    RecoveryStrategy.Restart(),
    RecoveryStrategy.Retry(max_attempts=1, delay=0.5),
    RecoveryStrategy.Ignore(),
    RecoveryStrategy.Escalate(),
]
COUNTED = {RecoveryAction.RESTART, RecoveryAction.RELOAD, RecoveryAction.FAILOVER}
steps = st.integers(min_value=0, max_value=12).map(lambda quarters: quarters / 4)


async def _noop() -> None:
    """A child function (never run here: the core does no I/O)."""


@attrs.define
class Restarted:
    at: float
    child: str
    action: RecoveryAction
    intensity: bool
    """Counted by the supervisor-wide intensity."""
    budget: bool
    """Counted by the child's own budget."""


class SupervisorCoreMachine(RuleBasedStateMachine):
    @initialize(
        strategy=st.sampled_from(list(StrategyKind)),
        max_restarts=st.none() | st.integers(0, 4),
        window=st.sampled_from([1.0, 2.5, 10.0]),
        child_budget=st.none() | st.integers(0, 3),
    )
    def open(
        self,
        strategy: StrategyKind,
        max_restarts: int | None,
        window: float,
        child_budget: int | None,
    ) -> None:
        self.config = SupervisorConfig(
            name="s",
            strategy=strategy,
            max_restarts=max_restarts,
            restart_window=window,
            child_limit=None if child_budget is None else RestartLimit(child_budget, window),
        )
        self.core = SupervisorCore(self.config)
        self.now = 0.0
        self.failures = 0
        self.decisions = 0
        self.restarts = 0
        self.stopped_children = 0
        self.restarted: list[Restarted] = []
        self.running: set[str] = set()
        self.gave_up: BaseException | None = None

    # -- steps ------------------------------------------------------------------------

    @rule(delta=steps)
    def advance(self, delta: float) -> None:
        self.now += delta

    @precondition(lambda self: len(self.core) < 6 and not self.core.halted())
    @rule(restart=st.sampled_from(list(Restart)), recovery=st.sampled_from(RECOVERIES))
    def add(self, restart: Restart, recovery: RecoveryStrategy | None) -> None:
        spec = ChildSpec.of(_noop, restart=restart, recovery=recovery)

        def make(name: str) -> Child:
            return Child(
                name=name,
                spec=spec,
                supervisor=cast(Any, None),
                restart=restart,
                shutdown_timeout=1.0,
            )

        child = self.core.add(spec, make)
        self.core.run_started(child, self.now)
        self.running.add(child.name)
        assert child.state is ChildState.RUNNING

    @precondition(lambda self: bool(self.running))
    @rule(data=st.data(), kind=st.sampled_from(sorted(ERRORS)), stopped=st.booleans())
    def exit(self, data: st.DataObject, kind: str, stopped: bool) -> None:
        name = data.draw(st.sampled_from(sorted(self.running)))
        child = self.core.get(name)
        assert child is not None
        make_error = ERRORS[kind]
        error = None if make_error is None else make_error()
        exit = ChildExit(error, stopped=stopped)
        halted_before = self.core.halted()
        events = self.core.exit_events(child, exit)
        assert isinstance(events[0], ChildExited)
        if error is not None:
            self.failures += 1
            assert isinstance(events[1], ErrorOccurred)
        decided, outcome = self.core.decide(child, exit, now=self.now, rand=0.5)
        self.running.discard(name)
        if stopped or halted_before:
            assert decided is None
            assert isinstance(outcome, Settle)
            assert child.state is ChildState.STOPPED
            self.core.discard(child, ChildEnd.STOPPED)
            return
        if decided is not None:
            self.decisions += 1
            assert isinstance(decided, SupervisionDecision)
            assert decided.child == name
        else:
            assert error is None  # only a normal return may need no decision
        self.core.apply(child, outcome)
        if isinstance(outcome, GiveUp):
            assert decided is not None
            assert decided.action is RecoveryAction.ESCALATE
            assert self.core.state is SupervisorState.FAILED
            assert outcome.failure is self.core.failure
            assert outcome.failure.__cause__ is error
            self.gave_up = outcome.failure
        elif isinstance(outcome, RemoveChild):
            if outcome.reason is ChildEnd.RESTART_BUDGET:
                self.stopped_children += 1
                assert decided is not None
                assert decided.action is RecoveryAction.STOP
            assert self.core.discard(child, outcome.reason)
        else:
            assert isinstance(outcome, RunAgain)
            self.restarts += 1
            action = outcome.decision.action
            assert action is not None
            assert decided is not None
            assert decided.action is action
            group = self.core.affected(child)
            if outcome.group is None:
                assert isinstance(outcome.decision, RetryChild) or (
                    len(group) == 1 and not outcome.decision.reload
                )
            else:
                assert list(outcome.group) == group
                for member in group:  # the shell stops and restarts them all
                    self.running.discard(member.name)
            counted = action in COUNTED or (
                action is RecoveryAction.IGNORE and child.restart is Restart.PERMANENT
            )
            self.restarted.append(Restarted(self.now, name, action, counted, counted))
            # the shell runs it (and any group) again
            for member in [child] if outcome.group is None else list(outcome.group):
                if self.core.get(member.name) is member:
                    self.core.run_started(member, self.now)
                    self.running.add(member.name)

    # -- invariants ---------------------------------------------------------------------

    @invariant()
    def counters_match(self) -> None:
        core = self.core
        assert (core.failures, core.decisions, core.restarts, core.stopped_children) == (
            self.failures,
            self.decisions,
            self.restarts,
            self.stopped_children,
        )

    @invariant()
    def intensity_and_budgets_hold(self) -> None:
        window = self.config.restart_window
        if self.config.max_restarts is not None:
            for entry in self.restarted:
                recent = [
                    r
                    for r in self.restarted
                    if r.intensity and entry.at - window < r.at <= entry.at
                ]
                assert len(recent) <= self.config.max_restarts
        limit = self.config.child_limit
        if limit is not None:
            for entry in self.restarted:
                mine = [
                    r
                    for r in self.restarted
                    if r.budget and r.child == entry.child and entry.at - window < r.at <= entry.at
                ]
                assert len(mine) <= limit.max_restarts

    @invariant()
    def gave_up_once(self) -> None:
        if self.gave_up is not None:
            assert self.core.halted()
            assert self.core.failure is self.gave_up


TestSupervisorCore = SupervisorCoreMachine.TestCase
