"""The actor cell: mailbox and accounting shared by every incarnation of an actor."""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import attrs
import trio

from ..errors import ActorStopped
from ..supervision import ChildState
from ..types import ActorId, CallerIdentity

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
class MailboxStatistics:
    """Counters of an actor's mailbox.

    ``accepted == handled + dead_lettered + queued + in_flight`` at all times.
    """

    capacity: int
    queued: int
    accepted: int
    handled: int
    dead_lettered: int
    in_flight: int


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


class ActorCell:
    """Everything an actor keeps across restarts: identity, mailbox, counters."""

    __slots__ = (
        "_terminated",
        "accepted",
        "actor_id",
        "announced",
        "args",
        "capabilities",
        "child",
        "closed",
        "ctx",
        "current",
        "dead_lettered",
        "domain",
        "factory",
        "failed",
        "folded",
        "handled",
        "handler_timeout",
        "heartbeat_interval",
        "identity",
        "incarnations",
        "instance",
        "last_error",
        "mailbox_capacity",
        "middleware",
        "name",
        "receive",
        "ref",
        "role",
        "send",
        "supervisor",
        "system",
    )

    def __init__(
        self,
        system: ActorSystem,
        factory: Callable[..., Actor],
        args: tuple[Any, ...],
        *,
        name: str,
        mailbox_capacity: int,
        handler_timeout: float | None,
        middleware: tuple[Any, ...],
        role: str | None,
        capabilities: frozenset[str],
    ) -> None:
        from ._ref import ActorRef

        self.system = system
        self.factory = factory
        self.args = args
        self.name = name
        self.actor_id = ActorId.new()
        self.mailbox_capacity = mailbox_capacity
        self.send, self.receive = trio.open_memory_channel[Any](mailbox_capacity)
        self.handler_timeout = handler_timeout
        self.middleware = middleware
        self.role = role
        self.capabilities = capabilities
        self.accepted = 0
        self.handled = 0
        self.failed = 0
        self.dead_lettered = 0
        self.incarnations = 0
        self.current: Any = None
        self.last_error: BaseException | None = None
        self.closed = False
        self.announced = False
        """Its ``AgentSpawned`` was emitted (the spawn completed)."""
        self.folded = False
        """Its counters were added to the system's totals of stopped actors; a count made
        after that (a late handled message, a sender woken by the final drain) is added
        there directly with :meth:`count_late`."""
        self._terminated: trio.Event | None = None
        self.child: Child | None = None
        self.supervisor: Supervisor | None = None
        """The supervisor running it now (a domain's new one after a domain restart)."""
        self.domain: ActorDomain | None = None
        """The domain holding it, when it was spawned into one."""
        self.heartbeat_interval: float | None = None
        """Set for actors watched by heartbeat: how often the idle loop beats."""
        self.instance: Actor | None = None
        self.ctx: ActorContext | None = None
        self.identity: CallerIdentity | None = None
        """Minted at spawn, kept across restarts, revoked once the actor is gone."""
        self.ref = ActorRef(self)

    def terminated(self) -> trio.Event:
        """Set once the actor is gone for good (made on first use: memory per actor)."""
        if self._terminated is None:
            self._terminated = trio.Event()
            if self.closed:
                self._terminated.set()
        return self._terminated

    def stopped_error(self) -> ActorStopped:
        return ActorStopped(f"actor {self.name!r} is stopped")

    def queued(self) -> int:
        return self.send.statistics().current_buffer_used

    def in_flight(self) -> int:
        """Accepted messages neither queued nor finished: the one being handled, or one
        trio handed straight to the waiting actor task that has not run yet."""
        # A sender blocked on a full mailbox counts its message as accepted when its
        # task resumes, a moment after trio moved the message into the buffer: clamp.
        return max(0, self.accepted - self.handled - self.dead_lettered - self.queued())

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

    def mailbox_statistics(self) -> MailboxStatistics:
        return MailboxStatistics(
            capacity=self.mailbox_capacity,
            queued=self.queued(),
            accepted=self.accepted,
            handled=self.handled,
            dead_lettered=self.dead_lettered,
            in_flight=self.in_flight(),
        )

    def statistics(self) -> ActorStatistics:
        return ActorStatistics(
            name=self.name,
            status=self.status,
            queued=self.queued(),
            capacity=self.mailbox_capacity,
            accepted=self.accepted,
            handled=self.handled,
            failed=self.failed,
            dead_lettered=self.dead_lettered,
            restarts=0 if self.child is None else self.child.restarts,
            in_flight=self.in_flight(),
        )

    def count_late(self, index: int) -> None:
        """Count one more accepted (0), handled (1), failed (2) or dead-lettered (3)
        message in the system totals, when this cell's counters were already folded."""
        if self.folded:
            self.system._stopped_totals[index] += 1

    def dead_letter(self, envelope: Any, reason: str, error: BaseException) -> None:
        """Record ``envelope`` as never handled, and fail its ``ask`` if it has one."""
        self.dead_lettered += 1
        self.count_late(3)
        if isinstance(envelope, Ask):
            envelope.reply.set_error(error)
        self.system._record_dead_letter(self, payload(envelope), reason)
