"""The observer: a live, read-only view of a running system, like Erlang's Observer.

:class:`Observer` gathers, on demand and on the Trio loop, what an operator wants to
see at a glance — the supervision tree (each node's state and restarts), the actors
(mailbox depth and capacity, load, outcomes, dead letters, restarts), the tools
(calls, outcomes, p50/p99), the circuit breakers' last known states, and the recent
supervision decisions and events — as one JSON-ready dict.

The monitoring server serves it as ``GET /observer.json`` and a self-contained page at
``GET /observer`` (HTML, CSS and a script served by the same server: no CDN, no build
step, works offline) that polls it. Every part of the view is bounded (``max_nodes``,
``max_actors``, ``max_events``...), so a system with 100,000 actors answers in bounded
time and size, and the page says how much it left out.

What it leaves out on purpose: message contents, task results and error *texts* (they
may carry user data or secrets, and the endpoint has no authentication); errors are
shown by type and dead letters by the kind of their reason, as in ``/metrics``.
"""

from __future__ import annotations

import enum
import heapq
import importlib.resources
import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final, Protocol

import attrs

from ..events import CircuitStateChanged, Event, SupervisionDecision
from ..supervision import TreeSnapshot
from ._sources import ActorMetricsSource

OBSERVER_PATH: Final = "/observer"
"""The observer page."""

OBSERVER_JSON_PATH: Final = "/observer.json"
"""The JSON view the page polls."""

OBSERVER_SCRIPT_PATH: Final = "/observer.js"
"""The page's script (served separately, so the page's CSP forbids inline scripts)."""

_TEXT_LIMIT: Final = 160
_SKIPPED_FIELDS: Final = frozenset(
    {"message", "result", "error", "summary", "usage", "event_id", "causation_id", "timestamp"}
)
"""Event fields never shown: contents and error texts (see the module docstring), and
fields shown separately."""


class ToolStatisticsLike(Protocol):
    """One tool's counters (what ``ToolBus.statistics().tools[name]`` holds)."""

    @property
    def calls(self) -> int:
        """Calls that reached the bus."""
        ...

    @property
    def succeeded(self) -> int:
        """Calls that returned."""
        ...

    @property
    def failures(self) -> int:
        """Calls whose tool raised."""
        ...

    @property
    def timeouts(self) -> int:
        """Calls past their deadline."""
        ...

    @property
    def denied(self) -> int:
        """Calls refused by permissions."""
        ...

    @property
    def invalid(self) -> int:
        """Calls refused by argument validation."""
        ...

    @property
    def in_flight(self) -> int:
        """Calls running now."""
        ...

    @property
    def latency(self) -> Any:
        """A histogram snapshot with ``p50`` and ``p99`` in seconds."""
        ...


class ToolBusStatisticsLike(Protocol):
    """A tool bus's counters (what ``ToolBus.statistics()`` returns)."""

    @property
    def tools(self) -> Mapping[str, ToolStatisticsLike]:
        """Per-tool counters, by name."""
        ...


class ObserverSource(Protocol):
    """What the monitoring server asks for the observer view (an :class:`Observer`)."""

    def observe(self) -> dict[str, Any]:
        """The current view, JSON-ready."""
        ...


class EventHistorySource(Protocol):
    """An event bus's history (an ``EventBus``)."""

    def history(self) -> list[Event]:
        """The events still in its history ring buffer, oldest first."""
        ...


@attrs.frozen
class ObserverLimits:
    """How much of a large system the observer view shows.

    Attributes:
        max_nodes: Supervision-tree nodes listed (depth first); the rest are counted.
        max_actors: Actors listed, the most loaded first; the rest are counted.
        max_tools: Tools listed, the most called first.
        max_events: Recent events listed (newest last).
        max_decisions: Recent supervision decisions listed.
        max_breakers: Circuit breakers listed.
    """

    max_nodes: int = attrs.field(default=2000, validator=attrs.validators.ge(1))
    max_actors: int = attrs.field(default=500, validator=attrs.validators.ge(1))
    max_tools: int = attrs.field(default=200, validator=attrs.validators.ge(1))
    max_events: int = attrs.field(default=50, validator=attrs.validators.ge(0))
    max_decisions: int = attrs.field(default=25, validator=attrs.validators.ge(0))
    max_breakers: int = attrs.field(default=100, validator=attrs.validators.ge(0))


@attrs.define(eq=False)
class Observer:
    """Builds the observer view of a running system from its public statistics.

    Every source is optional: a view without actors simply has none. The runtime
    builds one from its root supervisor, actor system, tool bus and event bus.

    Attributes:
        tree: Returns a snapshot of the root supervisor (``lambda:
            supervision.snapshot(root)``).
        actors: Returns the live actors (``actor_system.actors``).
        tools: Returns the tool bus's statistics (``tool_bus.statistics``).
        events: The event bus, whose history gives recent events, decisions and the
            breakers' last states.
        limits: How much of each part is shown.
        clock: Returns the current time, shown as ``now`` (event timestamps are on the
            same Trio clock).
    """

    tree: Callable[[], TreeSnapshot] | None = None
    actors: Callable[[], Iterable[ActorMetricsSource]] | None = None
    tools: Callable[[], ToolBusStatisticsLike] | None = None
    events: EventHistorySource | None = None
    limits: ObserverLimits = attrs.field(factory=ObserverLimits)
    clock: Callable[[], float] | None = None

    def observe(self) -> dict[str, Any]:
        """The current view, JSON-ready (plain dicts, lists, strings and numbers).

        Call it on the Trio loop: it reads ``statistics()`` of loop-owned objects.
        """
        history = list(self.events.history()) if self.events is not None else []
        return {
            "now": self.clock() if self.clock is not None else None,
            "tree": self._tree(),
            "actors": self._actors(),
            "tools": self._tools(),
            "breakers": self._breakers(history),
            "decisions": self._decisions(history),
            "events": self._events(history),
        }

    def _tree(self) -> dict[str, Any] | None:
        if self.tree is None:
            return None
        budget = [self.limits.max_nodes]
        root = self.tree()
        total = len(root.walk())
        return {"root": _node(root, budget), "nodes": total, "omitted": max(0, budget[0] * -1)}

    def _actors(self) -> dict[str, Any]:
        if self.actors is None:
            return {"total": 0, "omitted": 0, "items": []}
        rows: list[dict[str, Any]] = []
        for actor in self.actors():
            stats = actor.statistics()
            queued = stats.queued
            in_flight = int(getattr(stats, "in_flight", 0) or 0)
            rows.append(
                {
                    "name": stats.name,
                    "status": _plain(getattr(stats, "status", "")),
                    "queued": queued,
                    "capacity": stats.capacity,
                    "in_flight": in_flight,
                    "load": queued + in_flight,
                    "handled": getattr(stats, "handled", None),
                    "failed": getattr(stats, "failed", None),
                    "dead_lettered": getattr(stats, "dead_lettered", None),
                    "restarts": getattr(stats, "restarts", None),
                }
            )
        shown = heapq.nsmallest(self.limits.max_actors, rows, key=_by_load)
        return {"total": len(rows), "omitted": len(rows) - len(shown), "items": shown}

    def _tools(self) -> dict[str, Any]:
        if self.tools is None:
            return {"total": 0, "omitted": 0, "items": []}
        tools = self.tools().tools
        rows: list[dict[str, Any]] = [
            {
                "name": name,
                "calls": stats.calls,
                "succeeded": stats.succeeded,
                "failures": stats.failures,
                "timeouts": stats.timeouts,
                "denied": stats.denied,
                "invalid": stats.invalid,
                "in_flight": stats.in_flight,
                "p50": _finite(getattr(stats.latency, "p50", 0.0)),
                "p99": _finite(getattr(stats.latency, "p99", 0.0)),
            }
            for name, stats in tools.items()
        ]
        shown = heapq.nsmallest(self.limits.max_tools, rows, key=_by_calls)
        return {"total": len(rows), "omitted": len(rows) - len(shown), "items": shown}

    def _breakers(self, history: list[Event]) -> list[dict[str, Any]]:
        latest: dict[str, CircuitStateChanged] = {}
        for event in history:
            if isinstance(event, CircuitStateChanged):
                latest.pop(event.breaker, None)  # re-insert: most recent change last
                latest[event.breaker] = event
        changes = (
            list(latest.values())[-self.limits.max_breakers :] if self.limits.max_breakers else []
        )
        return [
            {"breaker": _text(event.breaker), "state": event.new_state, "since": event.timestamp}
            for event in reversed(changes)
        ]

    def _decisions(self, history: list[Event]) -> list[dict[str, Any]]:
        if not self.limits.max_decisions:
            return []
        decisions = [event for event in history if isinstance(event, SupervisionDecision)]
        return [
            {
                "time": event.timestamp,
                "supervisor": _text(event.supervisor),
                "child": _text(event.child),
                "error_type": _text(event.error_type),
                "severity": event.severity.name.lower(),
                "action": event.action.value,
                "attempt": event.attempt,
            }
            for event in decisions[-self.limits.max_decisions :]
        ]

    def _events(self, history: list[Event]) -> list[dict[str, Any]]:
        if not self.limits.max_events:
            return []
        return [_event(event) for event in history[-self.limits.max_events :]]


def _by_load(row: dict[str, Any]) -> tuple[int, str]:
    return -int(row["load"]), str(row["name"])


def _by_calls(row: dict[str, Any]) -> tuple[int, str]:
    return -int(row["calls"]), str(row["name"])


def _node(snapshot: TreeSnapshot, budget: list[int]) -> dict[str, Any]:
    """``snapshot`` as a dict; ``budget[0]`` counts the nodes left to show (it goes
    negative by the number left out)."""
    budget[0] -= 1
    children = []
    for child in snapshot.children:
        if budget[0] <= 0:
            budget[0] -= len(child.walk())
            continue
        children.append(_node(child, budget))
    return {
        "name": _text(snapshot.name),
        "kind": snapshot.kind,
        "state": _plain(snapshot.state),
        "restarts": snapshot.restarts,
        "children": children,
    }


def _event(event: Event) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for field in attrs.fields(type(event)):
        if field.name in _SKIPPED_FIELDS or field.name == "source":
            continue
        value = getattr(event, field.name)
        if field.name == "reason" and isinstance(value, str):
            value = value.split(":", 1)[0]  # the kind of reason, not the quoted error
        if isinstance(value, enum.Enum):
            value = value.name.lower() if isinstance(value.value, int) else value.value
        if isinstance(value, bool | int | float | str) or value is None:
            fields[field.name] = _text(value) if isinstance(value, str) else _number(value)
        elif isinstance(value, tuple | list) and all(isinstance(v, str) for v in value):
            fields[field.name] = [_text(v) for v in value[:20]]
    return {
        "type": event.event_type,
        "time": event.timestamp,
        "source": _text(event.source),
        "fields": fields,
    }


def _plain(value: object) -> str:
    return str(value.value) if isinstance(value, enum.Enum) else str(value)


def _text(value: str) -> str:
    return value if len(value) <= _TEXT_LIMIT else value[: _TEXT_LIMIT - 1] + "…"


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _number(value: bool | float | None) -> bool | float | None:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _asset(name: str) -> bytes:
    return (
        importlib.resources.files("mister_smith.monitoring")
        .joinpath("_observer_page", name)
        .read_bytes()
    )


OBSERVER_HTML: Final = _asset("observer.html")
"""The observer page (HTML with its stylesheet)."""

OBSERVER_SCRIPT: Final = _asset("observer.js")
"""The observer page's script."""
