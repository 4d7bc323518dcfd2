"""System invariants the harness checks: accounting, counters against events, intensity."""

from __future__ import annotations

import collections
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..errors import RecoveryAction
from ..events import (
    AgentSpawned,
    ChildExited,
    DeadLetter,
    Event,
    ExitKind,
    SupervisionDecision,
    SupervisorStopped,
    ToolCalled,
    ToolOutcome,
)
from ..supervision import Supervisor

if TYPE_CHECKING:
    from ._harness import SystemTestHarness

INTENSITY_ACTIONS = frozenset(
    {RecoveryAction.RESTART, RecoveryAction.RELOAD, RecoveryAction.FAILOVER}
)
"""Decisions that always count toward a supervisor's restart intensity."""


def check_invariants(harness: SystemTestHarness) -> list[str]:
    """Every broken invariant of the system under ``harness`` (see
    :meth:`SystemTestHarness.check_invariants`)."""
    problems: list[str] = []
    log = harness.event_log()
    problems += _actor_accounting(harness, log)
    problems += _supervisor_counters(harness, log)
    problems += _tool_counters(harness, log)
    if harness.closed:
        problems += [f"task {name!r} outlived the runtime" for name in harness.leaked_tasks()]
        shutdown = harness.shutdown
        if shutdown is not None and not shutdown.within_bound:
            problems.append(
                f"shutdown took {shutdown.duration:g} s, more than its bound {shutdown.bound:g} s"
            )
    return problems


def _actor_accounting(harness: SystemTestHarness, log: Sequence[Event]) -> list[str]:
    problems: list[str] = []
    totals = collections.Counter[str]()
    dead_by_name = collections.Counter[str]()
    for ref in harness.known_actors():
        stats = ref.statistics()
        in_mailbox = stats.queued + stats.in_flight
        if stats.accepted != stats.handled + stats.dead_lettered + in_mailbox:
            problems.append(
                f"actor {stats.name!r}: accepted {stats.accepted} != handled {stats.handled} "
                f"+ dead-lettered {stats.dead_lettered} + queued {stats.queued} "
                f"+ in flight {stats.in_flight}"
            )
        if not ref.is_alive and in_mailbox:
            problems.append(
                f"actor {stats.name!r} stopped with {stats.queued} queued and "
                f"{stats.in_flight} in flight: those messages were lost"
            )
        totals.update(
            accepted=stats.accepted,
            handled=stats.handled,
            failed=stats.failed,
            dead_lettered=stats.dead_lettered,
        )
        dead_by_name[stats.name] += stats.dead_lettered
    system = harness.actor_system.statistics()
    for field in ("accepted", "handled", "failed", "dead_lettered"):
        if getattr(system, field) != totals[field]:
            problems.append(
                f"actor system {field} is {getattr(system, field)} but its actors sum to "
                f"{totals[field]}"
            )
    in_mailboxes = sum(
        r.statistics().queued + r.statistics().in_flight for r in harness.known_actors()
    )
    if system.accepted != system.handled + system.dead_lettered + in_mailboxes:
        problems.append(
            f"actor system: accepted {system.accepted} != handled {system.handled} + "
            f"dead-lettered {system.dead_lettered} + {in_mailboxes} queued or in flight"
        )
    events_by_name = collections.Counter(e.actor for e in log if isinstance(e, DeadLetter))
    for name in sorted(set(events_by_name) | set(dead_by_name)):
        if events_by_name[name] != dead_by_name[name]:
            problems.append(
                f"actor {name!r}: {events_by_name[name]} DeadLetter events but "
                f"dead_lettered counters sum to {dead_by_name[name]}"
            )
    spawned_events = sum(1 for e in log if isinstance(e, AgentSpawned))
    if spawned_events != system.spawned:
        problems.append(
            f"{spawned_events} AgentSpawned events but the actor system spawned {system.spawned}"
        )
    return problems


def _segments(log: Sequence[Event], name: str) -> list[list[Event]]:
    """The events of each incarnation of the supervisor ``name``, oldest first.

    Incarnations of a supervisor name never overlap: a new one starts after the old
    one's :class:`SupervisorStopped`.
    """
    segments: list[list[Event]] = [[]]
    for event in log:
        if isinstance(event, SupervisorStopped) and event.supervisor == name:
            segments[-1].append(event)
            segments.append([])
        elif isinstance(event, SupervisionDecision | ChildExited) and event.supervisor == name:
            segments[-1].append(event)
    return segments


def _supervisor_counters(harness: SystemTestHarness, log: Sequence[Event]) -> list[str]:
    problems: list[str] = []
    reachable: dict[str, list[Supervisor]] = collections.defaultdict(list)
    for supervisor in harness.supervisors():
        reachable[supervisor.name].append(supervisor)
    for name, same_name in reachable.items():
        if len(same_name) > 1:
            continue  # incarnations of different supervisors would mix
        supervisor = same_name[0]
        segments = _segments(log, name)
        if supervisor.state == "running":
            current = segments[-1]
            stats = supervisor.statistics()
            decisions = sum(1 for e in current if isinstance(e, SupervisionDecision))
            failures = sum(
                1 for e in current if isinstance(e, ChildExited) and e.exit is ExitKind.FAILED
            )
            if decisions != stats.decisions:
                problems.append(
                    f"supervisor {name!r}: {decisions} SupervisionDecision events but "
                    f"decisions counter {stats.decisions}"
                )
            if failures != stats.failures:
                problems.append(
                    f"supervisor {name!r}: {failures} failed ChildExited events but "
                    f"failures counter {stats.failures}"
                )
        for index, segment in enumerate(segments):
            times = [
                e.timestamp
                for e in segment
                if isinstance(e, SupervisionDecision) and e.action in INTENSITY_ACTIONS
            ]
            worst = _max_in_window(times, supervisor.restart_window)
            if supervisor.max_restarts is not None and worst > supervisor.max_restarts:
                problems.append(
                    f"supervisor {name!r} (incarnation {index + 1}) restarted {worst} times "
                    f"within {supervisor.restart_window:g} s, more than max_restarts "
                    f"{supervisor.max_restarts}, without escalating"
                )
            problems.extend(_per_child_budgets(supervisor, segment, index))
    return problems


def _per_child_budgets(supervisor: Supervisor, segment: Sequence[Event], index: int) -> list[str]:
    """Each child restarted at most its own budget's ``max_restarts`` times per window."""
    by_child: dict[str, list[float]] = {}
    for event in segment:
        if isinstance(event, SupervisionDecision) and event.action in INTENSITY_ACTIONS:
            by_child.setdefault(event.child, []).append(event.timestamp)
    problems: list[str] = []
    for child_name, times in by_child.items():
        try:
            spec = supervisor.child(child_name).spec
        except LookupError:
            # Gone for good: its own budget (perhaps larger than the default) left with
            # it, so it cannot be judged here without false alarms.
            continue
        limit = spec.restart_limit or supervisor.child_limit
        if limit is None:
            continue
        worst = _max_in_window(times, limit.window)
        if worst > limit.max_restarts:
            problems.append(
                f"child {child_name!r} of {supervisor.name!r} (incarnation {index + 1}) "
                f"restarted {worst} times within {limit.window:g} s, more than its budget "
                f"{limit.max_restarts}, without being stopped"
            )
    return problems


def _max_in_window(times: Sequence[float], window: float) -> int:
    """The most ``times`` falling in any half-open window ``(t - window, t]``."""
    worst = 0
    start = 0
    for end, now in enumerate(times):
        while times[start] <= now - window:
            start += 1
        worst = max(worst, end - start + 1)
    return worst


def _tool_counters(harness: SystemTestHarness, log: Sequence[Event]) -> list[str]:
    problems: list[str] = []
    bus = harness.tool_bus
    statistics = bus.statistics().tools
    for name, since in harness.gated_tools().items():
        stats = statistics.get(name)
        if stats is None:
            continue
        # A gated tool stays registered, so every call naming it reached its counters
        # (calls an agent refused itself, before the bus, are announced by the agent).
        calls = [
            e
            for e in log[since:]
            if isinstance(e, ToolCalled) and e.tool == name and e.source == bus.name
        ]
        outcomes = collections.Counter(e.outcome for e in calls)
        expected = {
            "calls": (len(calls), stats.calls),
            "succeeded": (outcomes[ToolOutcome.OK], stats.succeeded),
            "timeouts": (outcomes[ToolOutcome.TIMEOUT], stats.timeouts),
            "denials": (outcomes[ToolOutcome.DENIED], stats.denied),
            "invalid arguments": (outcomes[ToolOutcome.INVALID], stats.invalid),
            "failures and cancellations": (
                outcomes[ToolOutcome.FAILED],
                stats.failures + stats.cancelled,
            ),
        }
        for what, (seen, counted) in expected.items():
            if seen + (stats.in_flight if what == "calls" else 0) != counted:
                problems.append(
                    f"tool {name!r}: {seen} ToolCalled events for {what} but counters say {counted}"
                )
    return problems
