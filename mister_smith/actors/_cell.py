"""The actor cell: what an actor keeps across its restarts (identity, mailbox, options)."""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import attrs
import trio

from ..errors import ActorStopped
from ..supervision import ChildState
from ..types import ActorId, CallerIdentity
from ._mailbox import Mailbox

if TYPE_CHECKING:
    from ..supervision import Child, Supervisor
    from ._actor import Actor, ActorContext
    from ._domain import ActorDomain
    from ._system import ActorSystem


_ENDING = frozenset({ChildState.STOPPING, ChildState.STOPPED, ChildState.FAILED})


class ActorStatus(enum.Enum):
    """Where an actor is in its life (the wider design's agent status, simplified)."""

    STARTING = "starting"
    IDLE = "idle"
    BUSY = "busy"
    RESTARTING = "restarting"
    STOPPING = "stopping"
    STOPPED = "stopped"


@attrs.frozen
class ActorStatistics:
    """Counters of one actor (stable across its restarts)."""

    name: str
    status: ActorStatus
    queued: int
    capacity: int
    accepted: int
    handled: int
    failed: int
    dead_lettered: int
    restarts: int
    in_flight: int
    replayed: int = 0
    """Messages replayed from its durable mailbox at spawn (counted in ``accepted``)."""

    @property
    def load(self) -> int:
        """Queued plus in-flight messages: the live load used by load-balanced routing."""
        return self.queued + self.in_flight


@attrs.define(eq=False)
class Reply:
    """Where an ``ask``'s answer goes."""

    event: trio.Event = attrs.field(factory=trio.Event)
    value: Any = None
    error: BaseException | None = None
    abandoned: bool = False

    def set_value(self, value: Any) -> None:
        if not self.event.is_set():
            self.value = value
            self.event.set()

    def set_error(self, error: BaseException) -> None:
        if not self.event.is_set():
            self.error = error
            self.event.set()


@attrs.define(eq=False, slots=True)
class Ask:
    """A message sent with ``ask``: the payload plus its reply slot (and the sender's
    W3C trace context, restored around the handler)."""

    message: Any
    reply: Reply
    traceparent: str | None = None


@attrs.define(eq=False, slots=True)
class Traced:
    """A message sent with ``tell`` from inside a trace, and that trace's context."""

    message: Any
    traceparent: str


def payload(envelope: Any) -> Any:
    """The user's message inside a mailbox item."""
    return envelope.message if isinstance(envelope, Ask | Traced) else envelope


@attrs.frozen
class ActorOptions:
    """How an actor was spawned: what every incarnation is built and run with.

    Attributes:
        factory: Builds a fresh :class:`Actor` for every (re)start.
        args: Arguments for ``factory``.
        handler_timeout: Per-message deadline, or ``None``.
        middleware: Wrapped around ``handle``, outermost first.
        role: Free-form role label.
        capabilities: Declared capabilities (capability routing).
        heartbeat_interval: For actors watched by heartbeat: how often the idle loop
            beats (``None``: not watched).
    """

    factory: Callable[..., Actor]
    args: tuple[Any, ...] = ()
    handler_timeout: float | None = None
    middleware: tuple[Any, ...] = ()
    role: str | None = None
    capabilities: frozenset[str] = frozenset()
    heartbeat_interval: float | None = None


class ActorCell:
    """What an actor keeps across restarts: identity, mailbox, options, and the child
    (and incarnation) supervision runs it as now."""

    __slots__ = (
        "_terminated",
        "actor_id",
        "announced",
        "child",
        "closed",
        "ctx",
        "current",
        "domain",
        "identity",
        "incarnations",
        "instance",
        "last_error",
        "mailbox",
        "name",
        "options",
        "ref",
        "supervisor",
        "system",
    )

    def __init__(
        self, system: ActorSystem, name: str, mailbox: Mailbox, options: ActorOptions
    ) -> None:
        from ._ref import ActorRef

        self.system = system
        self.name = name
        self.actor_id = ActorId.new()
        self.mailbox = mailbox
        self.options = options
        self.incarnations = 0
        self.instance: Actor | None = None
        """The current incarnation's actor object."""
        self.current: Any = None
        """The envelope being handled (``None`` while idle)."""
        self.last_error: BaseException | None = None
        """What ended the previous incarnation, for ``on_restart`` (consumed there)."""
        self.closed = False
        self.announced = False
        """Its ``AgentSpawned`` was emitted (the spawn completed)."""
        self._terminated: trio.Event | None = None
        self.child: Child | None = None
        self.supervisor: Supervisor | None = None
        """The supervisor running it now (a domain's new one after a domain restart)."""
        self.domain: ActorDomain | None = None
        """The domain holding it, when it was spawned into one."""
        self.ctx: ActorContext | None = None
        self.identity: CallerIdentity | None = None
        """Minted at spawn, kept across restarts, revoked once the actor is gone."""
        self.ref = ActorRef(self)

    @property
    def role(self) -> str | None:
        """The role label given at spawn."""
        return self.options.role

    @property
    def capabilities(self) -> frozenset[str]:
        """Capabilities declared at spawn."""
        return self.options.capabilities

    def terminated(self) -> trio.Event:
        """Set once the actor is gone for good (made on first use: memory per actor)."""
        if self._terminated is None:
            self._terminated = trio.Event()
            if self.closed:
                self._terminated.set()
        return self._terminated

    def stopped_error(self) -> ActorStopped:
        return ActorStopped(f"actor {self.name!r} is stopped")

    @property
    def status(self) -> ActorStatus:
        if self.closed:
            return ActorStatus.STOPPED
        child = self.child
        if child is None:
            return ActorStatus.STARTING
        state = child.state
        if state is ChildState.RUNNING:
            return ActorStatus.BUSY if self.current is not None else ActorStatus.IDLE
        if state in _ENDING:
            supervisor = child.supervisor
            domain = self.domain
            if domain is not None and domain.restartable and supervisor.state == "failed":
                return ActorStatus.RESTARTING  # with its domain, by the domain's parent
            return ActorStatus.STOPPING
        if self.incarnations > 0:  # waiting out a restart delay, or starting again
            return ActorStatus.RESTARTING
        return ActorStatus.STARTING

    def statistics(self) -> ActorStatistics:
        mailbox = self.mailbox
        return ActorStatistics(
            name=self.name,
            status=self.status,
            queued=mailbox.queued(),
            capacity=mailbox.capacity,
            accepted=mailbox.accepted,
            handled=mailbox.handled,
            failed=mailbox.failed,
            dead_lettered=mailbox.dead_lettered,
            restarts=0 if self.child is None else self.child.restarts,
            in_flight=mailbox.in_flight(),
            replayed=mailbox.replayed,
        )

    def dead_letter(self, envelope: Any, reason: str, error: BaseException) -> None:
        """Record ``envelope`` as never handled, and fail its ``ask`` if it has one."""
        self.mailbox.dead_lettered_one()
        if isinstance(envelope, Ask):
            envelope.reply.set_error(error)
        self.system._record_dead_letter(self, payload(envelope), reason)
