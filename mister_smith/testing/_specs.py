"""Declarative, printable descriptions of a system under test and what happens to it.

A :class:`SupervisorSpec` tree (with :class:`ActorSpec`, :class:`WorkerSpec` leaves and
:class:`FlakyToolSpec` tools), a message workload of :class:`Send` and :class:`CallTool`
operations, and a failure schedule of :class:`ScheduledFailure` entries. Every ``repr``
is a Python expression rebuilding the value (given the public imports), so a failing
hypothesis example prints as a ready-made reproduction.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import attrs

from ..errors import RecoveryStrategy
from ..supervision import Backoff, StrategyKind
from ..types import Restart
from ._failures import FailureType


class PrettyRepr:
    """Makes hypothesis (and IPython) print the ``repr`` rather than attrs fields."""

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self))


def _kwargs(pairs: list[tuple[str, Any, Any]]) -> str:
    """``name=value`` for each (name, value, default) whose value is not the default."""
    return "".join(f", {name}={_show(value)}" for name, value, default in pairs if value != default)


def _show(value: Any) -> str:
    if isinstance(value, Restart):
        return f"Restart.{value.name}"
    if isinstance(value, StrategyKind):
        return f"StrategyKind.{value.name}"
    return repr(value)


@attrs.frozen(repr=False)
class ActorSpec(PrettyRepr):
    """An actor in a tree: a :class:`~mister_smith.testing.ScriptedActor` doing :class:`Work`.

    Attributes:
        name: Unique actor name.
        restart: Its restart type.
        handler_timeout: Per-message deadline (``None``: none).
        mailbox_capacity: Its mailbox bound.
        recovery: Recovery override for its failures (``None``: the error's own).
    """

    name: str
    restart: Restart = Restart.TRANSIENT
    handler_timeout: float | None = None
    mailbox_capacity: int = 64
    recovery: RecoveryStrategy | None = None

    def __repr__(self) -> str:
        extra = _kwargs(
            [
                ("restart", self.restart, Restart.TRANSIENT),
                ("handler_timeout", self.handler_timeout, None),
                ("mailbox_capacity", self.mailbox_capacity, 64),
                ("recovery", self.recovery, None),
            ]
        )
        return f"ActorSpec({self.name!r}{extra})"


@attrs.frozen(repr=False)
class WorkerSpec(PrettyRepr):
    """A plain supervised child that idles (heartbeating when monitored).

    Attributes:
        name: Unique child name.
        restart: Its restart type.
        heartbeat_timeout: When set, the worker is monitored and beats three times per
            timeout, so only an injected silence or hang makes it miss.
        recovery: Recovery override for its failures (``None``: the error's own).
    """

    name: str
    restart: Restart = Restart.PERMANENT
    heartbeat_timeout: float | None = None
    recovery: RecoveryStrategy | None = None

    def __repr__(self) -> str:
        extra = _kwargs(
            [
                ("restart", self.restart, Restart.PERMANENT),
                ("heartbeat_timeout", self.heartbeat_timeout, None),
                ("recovery", self.recovery, None),
            ]
        )
        return f"WorkerSpec({self.name!r}{extra})"


@attrs.frozen(repr=False)
class FlakyToolSpec(PrettyRepr):
    """A tool registered on the tool bus: a :class:`~mister_smith.testing.FlakyTool`.

    Attributes:
        name: Unique tool name.
        timeout: The bus deadline for its calls.
        work: Seconds each call takes.
    """

    name: str
    timeout: float = 5.0
    work: float = 0.0

    def __repr__(self) -> str:
        extra = _kwargs([("timeout", self.timeout, 5.0), ("work", self.work, 0.0)])
        return f"FlakyToolSpec({self.name!r}{extra})"


@attrs.frozen(repr=False)
class SupervisorSpec(PrettyRepr):
    """A supervisor and what runs under it, started in order.

    Nested supervisors and workers are started from specs at every (re)start of this
    supervisor, and so are its actors (re-spawned under the same names), so restarting
    a supervisor restarts its whole subtree.

    Attributes:
        name: Unique supervisor name.
        children: What it supervises, in start order.
        strategy: Its restart strategy.
        max_restarts: Restarts allowed within ``restart_window``.
        restart_window: Seconds of the intensity window.
        restart: Its own restart type under its parent.
        recovery: How its parent recovers from its failure (``None``: the error's own,
            ``Escalate`` for supervision errors).
        backoff: Delays between its restarts (``None``: restart at once).
        tools: Tools registered on the tool bus (only read on the root of a tree).
    """

    name: str
    children: tuple[SupervisorSpec | ActorSpec | WorkerSpec, ...] = ()
    strategy: StrategyKind = StrategyKind.ONE_FOR_ONE
    max_restarts: int = 3
    restart_window: float = 60.0
    restart: Restart = Restart.PERMANENT
    recovery: RecoveryStrategy | None = None
    backoff: Backoff | None = None
    tools: tuple[FlakyToolSpec, ...] = ()

    def walk(self) -> Iterator[SupervisorSpec | ActorSpec | WorkerSpec]:
        """This supervisor and every node below it, depth first, in start order."""
        yield self
        for child in self.children:
            if isinstance(child, SupervisorSpec):
                yield from child.walk()
            else:
                yield child

    def supervisors(self) -> list[SupervisorSpec]:
        """Every supervisor spec of the tree (this one first)."""
        return [node for node in self.walk() if isinstance(node, SupervisorSpec)]

    def actors(self) -> list[ActorSpec]:
        """Every actor spec of the tree."""
        return [node for node in self.walk() if isinstance(node, ActorSpec)]

    def workers(self) -> list[WorkerSpec]:
        """Every worker spec of the tree."""
        return [node for node in self.walk() if isinstance(node, WorkerSpec)]

    def parents(self) -> dict[str, SupervisorSpec]:
        """The supervisor spec directly above each node, by node name."""
        found: dict[str, SupervisorSpec] = {}
        for node in self.supervisors():
            for child in node.children:
                found[child.name] = node
        return found

    def path(self, name: str) -> tuple[str, ...]:
        """Supervisor names from this root down to (not including) node ``name``.

        Raises:
            LookupError: no node has that name.
        """
        parents = self.parents()
        if name == self.name:
            return ()
        if name not in parents:
            raise LookupError(f"no node named {name!r} in tree {self.name!r}")
        chain: list[str] = []
        node = parents[name]
        while True:
            chain.append(node.name)
            if node.name == self.name:
                break
            node = parents[node.name]
        return tuple(reversed(chain))

    def depth(self) -> int:
        """Levels of supervisors (1 for a supervisor without nested supervisors)."""
        nested = [c.depth() for c in self.children if isinstance(c, SupervisorSpec)]
        return 1 + max(nested, default=0)

    def __repr__(self) -> str:
        return self._render(0)

    def _render(self, indent: int) -> str:
        pad = "    " * (indent + 1)
        extra = _kwargs(
            [
                ("strategy", self.strategy, StrategyKind.ONE_FOR_ONE),
                ("max_restarts", self.max_restarts, 3),
                ("restart_window", self.restart_window, 60.0),
                ("restart", self.restart, Restart.PERMANENT),
                ("recovery", self.recovery, None),
                ("backoff", self.backoff, None),
                ("tools", self.tools, ()),
            ]
        )
        if not self.children:
            return f"SupervisorSpec({self.name!r}{extra})"
        rendered = [
            child._render(indent + 2) if isinstance(child, SupervisorSpec) else repr(child)
            for child in self.children
        ]
        body = "".join(f"\n{pad}    {text}," for text in rendered)
        head = f"SupervisorSpec(\n{pad}{self.name!r}{extra},"
        return f"{head}\n{pad}children=({body}\n{pad}),\n{'    ' * indent})"


NodeSpec = SupervisorSpec | ActorSpec | WorkerSpec
"""Any node of a tree spec."""


@attrs.frozen
class Work:
    """The message tree actors handle: take ``duration`` seconds, then reply ``seq``."""

    seq: int
    duration: float = 0.0


@attrs.frozen(repr=False)
class Send(PrettyRepr):
    """Send :class:`Work` to an actor at ``at`` seconds into the run.

    Attributes:
        at: Seconds after the workload starts.
        actor: The actor's name.
        ask: ``ask`` (wait for the reply) rather than ``tell``.
        work: Seconds the actor spends on it.
        timeout: Deadline of the ``ask``, or of waiting for mailbox room for a ``tell``.
    """

    at: float
    actor: str
    ask: bool = False
    work: float = 0.0
    timeout: float = 10.0

    def __repr__(self) -> str:
        extra = _kwargs(
            [("ask", self.ask, False), ("work", self.work, 0.0), ("timeout", self.timeout, 10.0)]
        )
        return f"Send({self.at!r}, {self.actor!r}{extra})"


@attrs.frozen(repr=False)
class CallTool(PrettyRepr):
    """Call a tool through the tool bus at ``at`` seconds into the run.

    Attributes:
        at: Seconds after the workload starts.
        tool: The tool's name.
        timeout: The call's deadline (``None``: the tool's own).
    """

    at: float
    tool: str
    timeout: float | None = None

    def __repr__(self) -> str:
        extra = _kwargs([("timeout", self.timeout, None)])
        return f"CallTool({self.at!r}, {self.tool!r}{extra})"


Operation = Send | CallTool


@attrs.frozen(repr=False)
class ScheduledFailure(PrettyRepr):
    """Inject ``failure`` into the node or tool called ``target`` at ``at`` seconds."""

    at: float
    target: str
    failure: FailureType

    def __repr__(self) -> str:
        return f"ScheduledFailure({self.at!r}, {self.target!r}, {self.failure!r})"


@attrs.frozen(repr=False)
class Scenario(PrettyRepr):
    """A tree, a workload and a failure schedule, run together by the harness.

    Attributes:
        tree: The system under test.
        workload: Messages and tool calls, by start time.
        schedule: Failures, by injection time.
        settle: Seconds to let the system recover after the last event.
    """

    tree: SupervisorSpec
    workload: tuple[Operation, ...] = ()
    schedule: tuple[ScheduledFailure, ...] = ()
    settle: float = 30.0

    def __repr__(self) -> str:
        def block(items: tuple[Any, ...]) -> str:
            if not items:
                return "()"
            return "(" + "".join(f"\n        {item!r}," for item in items) + "\n    )"

        settle = "" if self.settle == 30.0 else f"\n    settle={self.settle!r},"
        return (
            f"Scenario(\n    tree={self.tree._render(1)},\n    workload={block(self.workload)},"
            f"\n    schedule={block(self.schedule)},{settle}\n)"
        )
