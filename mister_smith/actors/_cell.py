"""The actor cell: what an actor keeps across its restarts (identity, mailbox, options).

A cell holds only what outlives an incarnation: the actor's identity (name and caller
identity, which carries its ``ActorId``), its mailbox and spawn options, its ref, where
it was placed, the supervised child running it and its latest
:class:`~._incarnation.Incarnation`. Everything else is derived (:attr:`ActorCell.status`,
:attr:`~ActorCell.supervisor`, :attr:`~ActorCell.domain`). Its fields change only
through its own methods: :meth:`~ActorCell.bind` and :meth:`~ActorCell.begin` (the
loop), :meth:`~ActorCell.announce` and :meth:`~ActorCell.close` (the system).
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import attrs
import trio

from ..errors import ActorStopped
from ..supervision import ChildState, Supervisor, SupervisorState
from ..types import ActorId, CallerIdentity
from ._actor import ActorContext
from ._durable import DurableMailbox
from ._durable_ref import DurableActorRef
from ._envelope import Ask, payload
from ._incarnation import Incarnation
from ._mailbox import Mailbox
from ._ref import ActorRef

if TYPE_CHECKING:
    from ..supervision import Child
    from ._actor import Actor
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
    (and incarnation) supervision runs it as now (see the module).

    Attributes:
        system: The owning actor system.
        name: Unique name in the system.
        identity: The caller identity minted at spawn (kept across restarts, revoked
            once the actor is gone); it carries the :attr:`actor_id`.
        mailbox: The mailbox, which survives restarts.
        options: How it was spawned.
        placement: Where it was spawned: its domain, or the plain supervisor it runs
            under when that is no domain of the system.
        ref: Its one :class:`ActorRef` (a ``DurableActorRef`` for a durable mailbox).
        child: The supervised child running it (``None`` until its spawn started it;
            a new one after its domain restarted).
        incarnation: Its latest incarnation (``None`` before the first one began).
        closed: It is gone for good (sends are refused).
        announced: Its spawn completed (``AgentSpawned`` was emitted).
    """

    __slots__ = (
        "_terminated",
        "announced",
        "child",
        "closed",
        "identity",
        "incarnation",
        "mailbox",
        "name",
        "options",
        "placement",
        "ref",
        "system",
    )

    def __init__(
        self,
        system: ActorSystem,
        name: str,
        identity: CallerIdentity,
        mailbox: Mailbox,
        options: ActorOptions,
        placement: ActorDomain | Supervisor,
    ) -> None:
        self.system = system
        self.name = name
        self.identity = identity
        self.mailbox = mailbox
        self.options = options
        self.placement = placement
        self.child: Child | None = None
        self.incarnation: Incarnation | None = None
        self.closed = False
        self.announced = False
        self._terminated: trio.Event | None = None
        self.ref: ActorRef = (
            DurableActorRef(self) if isinstance(mailbox, DurableMailbox) else ActorRef(self)
        )

    # -- identity and placement (derived) --------------------------------------------------

    @property
    def actor_id(self) -> ActorId:
        """The actor's id (stable across restarts), carried by its identity."""
        actor_id = self.identity.actor_id
        assert actor_id is not None  # minted with it at spawn
        return actor_id

    @property
    def role(self) -> str | None:
        """The role label given at spawn."""
        return self.options.role

    @property
    def capabilities(self) -> frozenset[str]:
        """Capabilities declared at spawn."""
        return self.options.capabilities

    @property
    def domain(self) -> ActorDomain | None:
        """The domain holding it, when it was spawned into one."""
        placement = self.placement
        return None if isinstance(placement, Supervisor) else placement

    @property
    def supervisor(self) -> Supervisor:
        """The supervisor running it now (a domain's new one after a domain restart)."""
        child = self.child
        if child is not None:
            return child.supervisor
        placement = self.placement
        return placement if isinstance(placement, Supervisor) else placement.supervisor

    # -- writes, by its owners -------------------------------------------------------------

    def bind(self, child: Child) -> None:
        """Supervision runs it as ``child`` now (its spawn, or its domain's restart)."""
        self.child = child

    def begin(self, instance: Actor) -> Incarnation:
        """Start its next incarnation, handling messages with ``instance`` (and a fresh
        :class:`ActorContext`). Returns the new incarnation."""
        previous = self.incarnation
        number = 1 if previous is None else previous.number + 1
        incarnation = Incarnation(number, instance, ActorContext(self, number))
        self.incarnation = incarnation
        return incarnation

    def announce(self) -> bool:
        """Its spawn completed: returns ``True`` (and remembers it) unless it is already
        gone, in which case nothing is to be announced."""
        if self.closed:
            return False
        self.announced = True
        return True

    def close(self) -> bool:
        """It is gone for good: refuse sends from now on. ``False`` if it already was."""
        if self.closed:
            return False
        self.closed = True
        return True

    # -- lifecycle -------------------------------------------------------------------------

    def terminated(self) -> trio.Event:
        """Set once the actor is gone for good (made on first use: memory per actor)."""
        if self._terminated is None:
            self._terminated = trio.Event()
            if self.closed:
                self._terminated.set()
        return self._terminated

    def wake_waiters(self) -> None:
        """Wake whoever waits in :meth:`terminated` (once closed)."""
        if self._terminated is not None:
            self._terminated.set()

    def stopped_error(self) -> ActorStopped:
        """The error a send to this stopped actor raises."""
        return ActorStopped(f"actor {self.name!r} is stopped")

    @property
    def status(self) -> ActorStatus:
        """Where it is in its life, from its child's state and its incarnation."""
        if self.closed:
            return ActorStatus.STOPPED
        child = self.child
        if child is None:
            return ActorStatus.STARTING
        state = child.state
        incarnation = self.incarnation
        if state is ChildState.RUNNING:
            busy = incarnation is not None and incarnation.busy
            return ActorStatus.BUSY if busy else ActorStatus.IDLE
        if state in _ENDING:
            domain = self.domain
            failed = child.supervisor.state is SupervisorState.FAILED
            if domain is not None and domain.restartable and failed:
                return ActorStatus.RESTARTING  # with its domain, by the domain's parent
            return ActorStatus.STOPPING
        if incarnation is not None:  # waiting out a restart delay, or starting again
            return ActorStatus.RESTARTING
        return ActorStatus.STARTING

    def statistics(self) -> ActorStatistics:
        """Its counters now."""
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
        self.system._record_dead_letter(self.name, payload(envelope), reason)
