"""``SupervisorCore``: a supervisor's children, state and decisions, without any I/O.

The Trio shell (:mod:`._supervisor`) runs the children and feeds the core what happens
to them — a child added, a run started, a run exited — with the time passed in. The
core keeps the registry (children in start order, by name), the supervisor's state,
the counters and the :class:`SupervisorPolicy`; for each exit it classifies the error
once, builds the events to announce, and says what the shell must do next as one small
value (:data:`Outcome`). Keeping this free of Trio lets tests drive it directly.
"""

from __future__ import annotations

import enum
from collections.abc import Callable

import attrs

from ..errors import (
    ErrorClassification,
    EscalatedError,
    RecoveryAction,
    RestartIntensityExceeded,
    SupervisionError,
    classify_error,
    root_cause,
    unwrap_single,
)
from ..events import (
    ChildExited,
    ErrorOccurred,
    Event,
    ExitKind,
    SupervisionDecision,
    event_time,
)
from ..types import Restart
from ._child import Child, ChildEnd, ChildSpec, ChildState
from ._config import SupervisorConfig
from ._decision import (
    Decision,
    EscalateFailure,
    LeaveChild,
    RestartChild,
    RetryChild,
    StopChild,
    SupervisorPolicy,
)
from ._intensity import RestartLimit


class SupervisorState(enum.StrEnum):
    """Where a supervisor is in its life (compares equal to its string value)."""

    RUNNING = "running"
    """Supervising; accepts children."""
    STOPPING = "stopping"
    """Stopping its children (a shutdown, an error in its body)."""
    STOPPED = "stopped"
    """Done; all its children ended."""
    FAILED = "failed"
    """It gave up (restart intensity exceeded, an escalation) and stops its children."""


@attrs.frozen
class ChildExit:
    """How one run of a child ended, as the shell saw it.

    Attributes:
        error: What it raised (an injected failure or missed heartbeats included).
        cancelled: It ended by a cancellation it did not ask for.
        stopped: The supervisor was stopping it on purpose (shutdown, group restart,
            ``stop_child``): no decision is made.
    """

    error: BaseException | None = None
    cancelled: bool = False
    stopped: bool = False
    _classified: list[ErrorClassification] = attrs.field(factory=list, eq=False, repr=False)

    def classification(self) -> ErrorClassification:
        """``classify_error(error)``, computed once per exit."""
        if not self._classified:
            assert self.error is not None
            self._classified.append(classify_error(self.error))
        return self._classified[0]


@attrs.frozen
class Settle:
    """Nothing to do: the exit was on purpose, or already decided."""


_SETTLED = Settle()
"""The one :class:`Settle` (it holds nothing): not allocated again at every stop."""


@attrs.frozen
class RunAgain:
    """Run the child again.

    Attributes:
        decision: The policy's decision: a retry in place, or a recovery.
        group: For a restart under ``OneForAll`` / ``RestForOne`` (or one needing the
            reload hook), the siblings to stop and restart with it, in start order;
            ``None``: just this child, after the delay (and the breaker, if gated).
        gated: The restart waits for the child's circuit breaker.
    """

    decision: RetryChild | RestartChild
    group: tuple[Child, ...] | None
    gated: bool


@attrs.frozen
class RemoveChild:
    """The child leaves the supervisor for good, for ``reason``."""

    reason: ChildEnd


@attrs.frozen
class GiveUp:
    """The supervisor gives up with ``failure`` (its ``__cause__`` is the child's error)."""

    failure: SupervisionError


Outcome = Settle | RunAgain | RemoveChild | GiveUp
"""What the shell must do about a child's exit."""


@attrs.define(eq=False)
class SupervisorCore:
    """The registry, state, counters and decisions of one supervisor (no I/O).

    Attributes:
        config: The supervisor's configuration (replaced by :meth:`reconfigure`).
        policy: Restart intensity, per-child budgets, retries and backoff.
        state: The supervisor's state.
        failure: Why it gave up, once it has.
    """

    config: SupervisorConfig
    policy: SupervisorPolicy = attrs.field(init=False)
    state: SupervisorState = SupervisorState.RUNNING
    failure: SupervisionError | None = None
    restarts: int = 0
    failures: int = 0
    decisions: int = 0
    stopped_children: int = 0
    _children: dict[str, Child] = attrs.field(factory=dict)
    _name_counter: int = 0

    def __attrs_post_init__(self) -> None:
        config = self.config
        intensity = config.intensity
        self.policy = SupervisorPolicy(
            None if intensity is None else intensity.counter(),
            config.backoff,
            config.child_limit,
        )

    @property
    def name(self) -> str:
        """The supervisor's name."""
        return self.config.name

    def halted(self) -> bool:
        """It no longer supervises (stopping, stopped or given up)."""
        return self.state is not SupervisorState.RUNNING

    # -- registry -------------------------------------------------------------------------

    def children(self) -> list[Child]:
        """The current children, in start order."""
        return list(self._children.values())

    def __len__(self) -> int:
        return len(self._children)

    def get(self, name: str) -> Child | None:
        """The child called ``name``, if any."""
        return self._children.get(name)

    def add(self, spec: ChildSpec, make: Callable[[str], Child]) -> Child:
        """Register a child for ``spec`` (named after it, or after its function, made
        unique) built by ``make(name)``.

        Raises:
            ValueError: the name is taken.
        """
        name = spec.name
        if name is None:
            base = getattr(spec.fn, "__name__", "child")
            self._name_counter += 1
            name = f"{base}-{self._name_counter}"
            while name in self._children:
                self._name_counter += 1
                name = f"{base}-{self._name_counter}"
        elif name in self._children:
            raise ValueError(f"supervisor {self.name!r} already has a child named {name!r}")
        child = make(name)
        self._children[name] = child
        return child

    def discard(self, child: Child, reason: ChildEnd) -> bool:
        """Forget ``child`` (gone for good, for ``reason``); whether it was registered."""
        if self._children.get(child.name) is not child:
            return False
        del self._children[child.name]
        if child.end_reason is None:
            child.end_reason = reason
        self.policy.child_removed(child.name)
        return True

    def reconfigure(self, config: SupervisorConfig) -> None:
        """Bounds in force from now on (restarts counted so far stay counted)."""
        self.policy.reconfigure(
            intensity=config.intensity, child_limit=config.child_limit, backoff=config.backoff
        )
        self.config = config

    # -- runs -----------------------------------------------------------------------------

    def run_started(self, child: Child, now: float) -> None:
        """A run of ``child`` began running (after its delay and breaker)."""
        child.state = ChildState.RUNNING
        child.started_at = now
        if self.policy.tracks(child.name):
            self.policy.child_started(child.name, now)

    def exit_events(self, child: Child, exit: ChildExit, now: float | None = None) -> list[Event]:
        """The events announcing that a run of ``child`` ended as ``exit`` at ``now``
        (default: the Trio clock), counted as a failure when it raised. The shell emits
        them before asking :meth:`decide`, so a listener sees the supervisor as it was
        when the run ended."""
        timestamp = event_time() if now is None else now
        error = exit.error
        leaf = None if error is None else unwrap_single(error)
        if leaf is not None:
            kind, error_type = ExitKind.FAILED, type(leaf).__name__
        elif exit.cancelled or exit.stopped:
            kind, error_type = ExitKind.CANCELLED, ""
        else:
            kind, error_type = ExitKind.RETURNED, ""
        name = self.name
        events: list[Event] = [
            ChildExited(
                source=name,
                timestamp=timestamp,
                supervisor=name,
                child=child.name,
                exit=kind,
                error_type=error_type,
            )
        ]
        if error is not None:
            child.failures += 1
            self.failures += 1
            events.append(
                ErrorOccurred(
                    source=name,
                    timestamp=timestamp,
                    component=f"{name}/{child.name}",
                    error_type=error_type,
                    message=str(leaf),
                    severity=exit.classification().severity,
                )
            )
        return events

    def decide(
        self,
        child: Child,
        exit: ChildExit,
        *,
        now: float,
        rand: float,
        breaker_trips: bool = False,
        current: bool = True,
    ) -> tuple[SupervisionDecision | None, Outcome]:
        """What to do about a run of ``child`` that ended as ``exit`` at ``now``: the
        decision to announce (if any) and the outcome, which :meth:`apply` then records.

        ``rand`` in [0, 1) drives backoff jitter; ``breaker_trips`` says recording this
        failure opens the child's breaker; ``current`` is false for a run another one
        has already replaced, whose exit leaves the child's state be.
        """
        error = exit.error
        if exit.stopped or exit.cancelled or self.halted():
            # Stopped on purpose (shutdown, group restart, stop_child): no decision.
            if current and child.state is not ChildState.STOPPED:
                child.state = ChildState.STOPPED
            return None, _SETTLED
        classification = None if error is None else exit.classification()
        strategy = None if error is None else child.spec.resolve_recovery(error)
        if strategy is None and classification is not None:
            strategy = classification.recovery_strategy
        decision = self.policy.decide(
            child.name,
            child.restart,
            error,
            now=now,
            strategy=strategy,
            has_fallback=child.spec.fallback is not None,
            rand=rand,
            started_at=child.started_at,
            limit=child.spec.restart_limit,
            breaker_trips=breaker_trips,
            classification=classification,
        )
        event = None
        if decision.action is not None:
            leaf = None if error is None else unwrap_single(error)
            event = self.decision_event(child, leaf, decision, now)
        outcome: Outcome
        if isinstance(decision, EscalateFailure):
            outcome = GiveUp(self._failure_for(child, error, decision))
        elif isinstance(decision, StopChild):
            outcome = RemoveChild(ChildEnd.RESTART_BUDGET)
        elif isinstance(decision, LeaveChild):
            # An error the recovery policy says to ignore is a normal exit; a temporary
            # child that crashed (hence not restarted) has failed.
            failed = error is not None and (
                strategy is None or strategy.action is not RecoveryAction.IGNORE
            )
            outcome = RemoveChild(ChildEnd.FAILED if failed else ChildEnd.STOPPED)
        elif isinstance(decision, RetryChild):
            outcome = RunAgain(decision, None, False)
        else:
            group = self.affected(child)
            direct = len(group) == 1 and not decision.reload  # one-for-one: direct path
            outcome = RunAgain(decision, None if direct else tuple(group), decision.gated)
        return event, outcome

    def apply(self, child: Child, outcome: Outcome) -> None:
        """Record ``outcome`` (announced already): states, counters, a failover's spec,
        the supervisor's failure."""
        if isinstance(outcome, GiveUp):
            child.state = ChildState.FAILED
            if self.failure is None:
                self.failure = outcome.failure
                self.state = SupervisorState.FAILED
        elif isinstance(outcome, RemoveChild):
            if outcome.reason is ChildEnd.RESTART_BUDGET:
                self.stopped_children += 1
            child.state = (
                ChildState.STOPPED if outcome.reason is ChildEnd.STOPPED else ChildState.FAILED
            )
        elif isinstance(outcome, RunAgain):
            child.restarts += 1
            self.restarts += 1
            decision = outcome.decision
            if isinstance(decision, RetryChild):
                child.retries += 1
                return
            if decision.failover:
                assert child.spec.fallback is not None
                child.spec = child.spec.fallback
            if outcome.group is not None:
                child.state = ChildState.WAITING

    def affected(self, failed: Child) -> list[Child]:
        """The children a restart of ``failed`` stops and restarts, in start order: its
        strategy's group, less the children owned by a sibling (``ChildSpec.owner``),
        which their owner stops with its own run."""
        group = self.config.strategy.affected(self.children(), failed)
        return [c for c in group if c is failed or c.spec.owner is None]

    def decision_event(
        self,
        child: Child,
        leaf: BaseException | None,
        decision: Decision,
        now: float | None = None,
    ) -> SupervisionDecision:
        """Count a decision and build its event (made at ``now``; default: the Trio
        clock)."""
        assert decision.action is not None
        self.decisions += 1
        return SupervisionDecision(
            source=self.name,
            timestamp=event_time() if now is None else now,
            supervisor=self.name,
            child=child.name,
            error_type="" if leaf is None else type(leaf).__name__,
            error="" if leaf is None else str(leaf),
            severity=decision.severity,
            action=decision.action,
            attempt=decision.attempt if isinstance(decision, RetryChild) else 0,
        )

    def give_up(
        self, child: Child, error: BaseException | None, decision: Decision
    ) -> SupervisionError:
        """Fail the supervisor because of ``child`` (first failure wins); return it."""
        if self.failure is None:
            self.apply(child, GiveUp(self._failure_for(child, error, decision)))
        assert self.failure is not None
        return self.failure

    def _failure_for(
        self, child: Child, error: BaseException | None, decision: Decision
    ) -> SupervisionError:
        """The error the supervisor gives up with, naming the root cause."""
        if self.failure is not None:
            return self.failure
        failure: SupervisionError
        cause = "" if error is None else f": {describe(root_cause(error))}"
        if isinstance(decision, EscalateFailure) and decision.intensity_exceeded:
            failure = RestartIntensityExceeded(
                f"supervisor {self.name!r} exceeded {_limit_text(self.config, child)} "
                f"(last failure: child {child.name!r}{cause})"
            )
        else:
            leaf = None if error is None else unwrap_single(error)
            original = None if error is None else root_cause(error)
            via = (
                f" (root cause: {describe(original)})"
                if original is not None and original is not leaf
                else ""
            )
            failure = EscalatedError(
                f"child {child.name!r} of supervisor {self.name!r} escalated {describe(leaf)}{via}",
                supervisor=self.name,
                child=child.name,
            )
        failure.__cause__ = error
        return failure

    def temporary_sibling(self, member: Child) -> bool:
        """A group restart does not bring back ``member`` (temporary): drop it."""
        return member.restart is Restart.TEMPORARY


def _limit_text(config: SupervisorConfig, child: Child) -> str:
    limit: RestartLimit | None = config.intensity
    if limit is None:  # a breaker that kept opening under a child budget
        limit = child.spec.restart_limit or config.child_limit
    if limit is None:
        return "its restart limit"
    return f"{limit.max_restarts} restarts in {limit.window} s"


def describe(error: BaseException | None) -> str:
    """``Type: message`` of an error (``None`` for none)."""
    if error is None:
        return "None"
    return f"{type(error).__name__}: {error}"
