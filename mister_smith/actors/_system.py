"""The actor system: spawning actors into domains, their registry, lookup and stopping."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Iterable, Sequence
from contextlib import suppress
from typing import Any

import attrs
import trio

from ..errors import (
    ActorNameTaken,
    ActorNotFound,
    ActorStopped,
    DurabilityUnavailable,
    MessageNotDurable,
    PoolExhausted,
    SupervisionError,
)
from ..events import AgentSpawned, AgentStopped, EventBus
from ..persistence import MAX_READ_LIMIT, from_payload
from ..supervision import (
    INHERIT,
    Backoff,
    Child,
    ChildEnd,
    ChildSpec,
    Inherit,
    RecoveryPolicy,
    Restart,
    RestartLimit,
    StrategyKind,
    SupervisionStrategyBase,
    Supervisor,
    SupervisorState,
)
from ..types import ActorId, IdentityAuthority, Role
from ._actor import Actor
from ._cell import ActorCell, ActorOptions
from ._dead_letters import DeadLetterLog, DeadLetterRecord
from ._domain import ActorDomain
from ._durable import Durable, DurableMailbox, DurableMailboxes
from ._durable_loop import settle_left
from ._loop import MessageMiddleware, serve
from ._mailbox import Mailbox, Totals
from ._ref import ActorRef

logger = logging.getLogger("mister_smith.actors")

DEFAULT_RESTART_LIMIT = RestartLimit(max_restarts=3, window=60.0)
"""Each actor's own restart budget unless configured: 3 restarts within 60 s (the
design's ``SupervisionSettings`` defaults, counted per actor)."""


@attrs.frozen
class ActorSystemStatistics:
    """Totals over every actor the system has run (live and stopped)."""

    live_actors: int
    spawned: int
    """Spawns completed, each announced by ``AgentSpawned``; an actor stopped while it
    started (before ``spawn`` returned) is neither announced nor counted."""
    accepted: int
    handled: int
    failed: int
    dead_lettered: int
    refused: int = 0
    """Spawns refused because ``max_actors`` actors were alive."""
    domains: int = 0
    """Live domains (the default one, overflow siblings, teams, ...)."""
    replayed: int = 0
    """Messages replayed from durable mailboxes at spawn (counted in ``accepted``)."""


class ActorSystem:
    """Spawns actors under supervision and keeps their registry.

    Open one with :func:`open_actor_system` (or get ``runtime.actor_system`` from the
    runtime). Every actor runs as a child of a supervisor (the system's own by
    default); its mailbox belongs to the child, so messages queued while it restarts
    are delivered to the new incarnation.

    Invariant, per actor and in total: ``accepted == handled + dead_lettered`` once the
    actor has stopped (plus what is queued or in flight while it runs).

    Every actor gets a caller identity (``ctx.identity``) minted by :attr:`identities`
    at spawn; it lives across restarts and is revoked when the actor is gone for good.
    Tool buses accept it when they share the authority (the runtime wires one).

    Fault isolation: every actor has its own restart budget (``restart_limit``, Akka's
    ``maxNrOfRetries`` within ``withinTimeRange``; overridable per spawn). An actor that
    spends it is stopped for good — its queued messages become dead letters with the
    reason ``restart intensity exceeded``, pending asks fail with
    :class:`~mister_smith.errors.ActorStopped`, ``AgentStopped`` is emitted — and
    nothing else is touched. The supervisors the system creates (its
    :class:`ActorDomain` s) count no supervisor-wide intensity of their own, so a burst
    of ordinary failures spread over many actors never stops the system. A domain that
    does give up (an explicit ``Escalate``, or a team whose own intensity is spent) is
    restarted by its parent with every actor it held.

    Bounds: ``max_actors`` live actors at most (more spawns raise
    :class:`~mister_smith.errors.PoolExhausted`); ``max_children_per_supervisor``
    children per domain supervisor (the default domain then overflows into sibling
    domains ``<name>#2``, ``#3``, ...; an explicit full domain refuses with
    ``PoolExhausted``).

    Build one over a supervisor you own (``ActorSystem(supervisor, events)``: actors run
    directly under it, which is nobody's child here), or as a restartable domain of a
    parent supervisor with :meth:`start` (what the runtime does).
    """

    def __init__(
        self,
        supervisor: Supervisor | None,
        events: EventBus,
        *,
        name: str = "actors",
        mailbox_capacity: int = 1000,
        ask_timeout: float = 30.0,
        dead_letter_log_size: int = 1000,
        middleware: Sequence[MessageMiddleware] = (),
        default_restart: Restart = Restart.TRANSIENT,
        identities: IdentityAuthority | None = None,
        restart_limit: RestartLimit | None = DEFAULT_RESTART_LIMIT,
        backoff: Backoff | None = None,
        escalation_timeout: float | None = None,
        max_actors: int | None = None,
        max_children_per_supervisor: int | None = None,
        heartbeat_interval: float = 5.0,
        heartbeat_timeout: float = 15.0,
        durable: DurableMailboxes | None = None,
    ) -> None:
        if mailbox_capacity < 1:
            raise ValueError(f"mailbox_capacity must be >= 1, got {mailbox_capacity!r}")
        if not ask_timeout >= 0:
            raise ValueError(f"ask_timeout must be >= 0, got {ask_timeout!r}")
        if max_actors is not None and max_actors < 1:
            raise ValueError(f"max_actors must be >= 1 or None, got {max_actors!r}")
        if max_children_per_supervisor is not None and max_children_per_supervisor < 1:
            raise ValueError(
                "max_children_per_supervisor must be >= 1 or None, got "
                f"{max_children_per_supervisor!r}"
            )
        if not 0 < heartbeat_interval <= heartbeat_timeout:
            raise ValueError(
                "heartbeats need 0 < heartbeat_interval <= heartbeat_timeout, got "
                f"{heartbeat_interval!r} and {heartbeat_timeout!r}"
            )
        self.events = events
        self.durable = durable
        """Where durable actors keep their mailboxes (``None``: no durable spawns)."""
        self.mailbox_capacity = mailbox_capacity
        self.ask_timeout = ask_timeout
        self.middleware = tuple(middleware)
        self.default_restart = default_restart
        self.identities = IdentityAuthority() if identities is None else identities
        self._dead_letters = DeadLetterLog(events, dead_letter_log_size)
        self._cells: dict[str, ActorCell] = {}
        self._counter = itertools.count(1)
        self._spawned = 0
        self._refused = 0
        self._stopped = Totals()  # the counters of every mailbox closed so far
        self._termination_listeners: list[Callable[[ActorRef], object]] = []
        self._on_child_terminated = self._child_terminated  # one bound method, not one per spawn
        self.restart_limit = restart_limit
        self.backoff = backoff
        self.escalation_timeout = escalation_timeout
        self.max_actors = max_actors
        self.max_children_per_supervisor = max_children_per_supervisor
        self.heartbeat_interval = heartbeat_interval
        self.heartbeat_timeout = heartbeat_timeout
        self._overflow: list[ActorDomain] = []
        self._by_supervisor: dict[Supervisor, ActorDomain] = {}
        self._overflow_lock = trio.Lock()
        if supervisor is None:
            # Attached by start(): a restartable domain the system starts itself.
            self._default = ActorDomain(name, self, None, restartable=True)
        else:
            self._default = ActorDomain(supervisor.name, self, supervisor, restartable=False)
            self._by_supervisor[supervisor] = self._default
        self._domains: dict[str, ActorDomain] = {self._default.name: self._default}

    @classmethod
    async def start(
        cls,
        parent: Supervisor,
        events: EventBus,
        *,
        name: str = "actors",
        shutdown_timeout: float | None = None,
        **options: Any,
    ) -> ActorSystem:
        """An actor system whose default domain is a new supervisor ``name`` under
        ``parent``: if it ever gives up, ``parent`` restarts it (counted in its own
        intensity) with every actor it holds. ``options`` are the constructor's."""
        system = cls(None, events, name=name, **options)
        domain = system._default
        domain.parent = parent
        await parent.start_supervisor(
            name,
            max_restarts=None,
            child_limit=system.restart_limit,
            backoff=system.backoff,
            escalation_timeout=system.escalation_timeout,
            shutdown_timeout=shutdown_timeout,
            default_restart=system.default_restart,
            children=domain.specs(),
            on_child_removed=domain.child_removed,
            on_terminated=domain.gone,
            on_started=domain.started,
        )
        return system

    # -- domains ------------------------------------------------------------------------

    @property
    def supervisor(self) -> Supervisor:
        """The default domain's supervisor (a new object after each of its restarts)."""
        return self._default.supervisor

    @property
    def default_domain(self) -> ActorDomain:
        """Where actors go when ``spawn`` names no supervisor."""
        return self._default

    def domains(self) -> list[ActorDomain]:
        """Every live domain: the default one, its overflow siblings, then the others."""
        return list(self._domains.values())

    def domain(self, name: str) -> ActorDomain:
        """The live domain called ``name``.

        Raises:
            LookupError: no such domain.
        """
        try:
            return self._domains[name]
        except KeyError:
            raise LookupError(f"actor system has no domain {name!r}") from None

    async def start_domain(
        self,
        name: str,
        *,
        parent: ActorDomain | Supervisor | None = None,
        strategy: SupervisionStrategyBase | StrategyKind | None = None,
        max_restarts: int | None = None,
        restart_window: float | None = None,
        child_limit: RestartLimit | Inherit | None = INHERIT,
        restart: Restart = Restart.TRANSIENT,
        restart_limit: RestartLimit | Inherit | None = INHERIT,
        backoff: Backoff | Inherit | None = INHERIT,
        shutdown_timeout: float | None = None,
    ) -> ActorDomain:
        """Start a domain: a supervisor of actors under ``parent`` (default: the default
        domain) that keeps its actors across its own restarts.

        By default it counts restarts per actor like the default domain
        (``child_limit``: the system's ``restart_limit``) and has no supervisor-wide
        intensity. Give ``max_restarts`` (within ``restart_window``) for OTP semantics
        instead, e.g. a team whose members depend on each other: when they crash faster
        than that, the domain gives up and its parent restarts it with all its members
        (``restart``: transient by default, so a stopped domain stays down), counted
        in the parent's intensity and in the domain's own ``restart_limit`` (default:
        the parent's per-child budget). Once that is spent, the domain and its actors
        stop for good; its siblings are untouched.

        Raises:
            ValueError: the name is taken or reserved.
            ActorStopped: the parent is not running.
        """
        if not name or _RESERVED in name or "#" in name:
            raise ValueError(f"domain names must be non-empty without '::' or '#': {name!r}")
        if name in self._domains or name in self._cells:
            raise ValueError(f"the actor system already has a domain or actor named {name!r}")
        parent_domain, parent_supervisor = self._resolve(parent)
        domain = ActorDomain(name, self, None, restartable=True, parent=parent_domain or parent)
        persistent = parent_domain is not None and parent_domain.restartable
        self._domains[name] = domain
        try:
            await parent_supervisor.start_supervisor(
                name,
                strategy=strategy,
                max_restarts=max_restarts,
                restart_window=restart_window,
                child_limit=self.restart_limit if child_limit is INHERIT else child_limit,
                backoff=self.backoff if backoff is INHERIT else backoff,
                escalation_timeout=self.escalation_timeout,
                restart=restart,
                restart_limit=None if restart_limit is INHERIT else restart_limit,
                shutdown_timeout=shutdown_timeout,
                children=domain.specs(),
                on_child_removed=domain.child_removed,
                # Under a restartable domain, that domain ends it (see ActorDomain).
                on_terminated=None if persistent else domain.gone,
                on_started=domain.started,
            )
        except BaseException as exc:
            self._domains.pop(name, None)
            if isinstance(exc, SupervisionError):
                raise ActorStopped(
                    f"supervisor {parent_supervisor.name!r} is {parent_supervisor.state}: "
                    f"domain {name!r} was not started"
                ) from exc
            raise
        if parent_domain is not None:
            parent_domain.admit(name, domain, parent_supervisor.child(name).spec)
        return domain

    def _resolve(
        self, target: ActorDomain | Supervisor | None
    ) -> tuple[ActorDomain | None, Supervisor]:
        """The domain (if any) and the supervisor ``target`` stands for now."""
        if target is None:
            return self._default, self._default.supervisor
        if isinstance(target, ActorDomain):
            if target.system is not self:
                raise ValueError(f"{target!r} belongs to another actor system")
            if target.terminated:
                raise ActorStopped(f"domain {target.name!r} is stopped")
            return target, target.supervisor
        domain = self._by_supervisor.get(target)
        return domain, target

    def _rebind_domain(self, domain: ActorDomain, supervisor: Supervisor) -> None:
        """A (new) supervisor instance of ``domain`` is running."""
        old = domain._supervisor
        if old is not None and self._by_supervisor.get(old) is domain:
            del self._by_supervisor[old]
        domain._supervisor = supervisor
        if not domain.terminated:
            self._by_supervisor[supervisor] = domain

    def _domain_terminated(self, domain: ActorDomain) -> None:
        if self._domains.get(domain.name) is domain:
            del self._domains[domain.name]
        if domain._supervisor is not None and self._by_supervisor.get(domain._supervisor) is domain:
            del self._by_supervisor[domain._supervisor]
        if domain in self._overflow:
            self._overflow.remove(domain)

    async def _with_room(self, domain: ActorDomain | None, supervisor: Supervisor) -> Supervisor:
        """Where a new actor goes: ``supervisor`` unless it holds
        ``max_children_per_supervisor`` children (then an overflow sibling of the default
        domain, or ``PoolExhausted`` for an explicit one)."""
        limit = self.max_children_per_supervisor
        if limit is None or supervisor.child_count < limit:
            return supervisor
        if domain is not self._default:
            raise PoolExhausted(
                f"supervisor {supervisor.name!r} holds max_children_per_supervisor={limit} children"
            )
        async with self._overflow_lock:
            for sibling in self._overflow:
                # A sibling waiting for its parent to restart it has no room now.
                running = not sibling.terminated and sibling.supervisor.state == "running"
                if running and sibling.supervisor.child_count < limit:
                    return sibling.supervisor
            default = self._default
            number = len(self._overflow) + 2
            while f"{default.name}#{number}" in self._domains:
                number += 1
            parent = default.parent_supervisor() if default.restartable else default.supervisor
            assert parent is not None
            sibling = await self._start_overflow(f"{default.name}#{number}", parent)
            self._overflow.append(sibling)
            return sibling.supervisor

    async def _start_overflow(self, name: str, parent: Supervisor) -> ActorDomain:
        domain = ActorDomain(name, self, None, restartable=True, parent=parent)
        self._domains[name] = domain
        try:
            await parent.start_supervisor(
                name,
                max_restarts=None,
                child_limit=self.restart_limit,
                backoff=self.backoff,
                escalation_timeout=self.escalation_timeout,
                restart=Restart.PERMANENT,
                default_restart=self.default_restart,
                children=domain.specs(),
                on_child_removed=domain.child_removed,
                on_terminated=domain.gone,
                on_started=domain.started,
            )
        except BaseException:
            self._domains.pop(name, None)
            raise
        return domain

    # -- spawning ---------------------------------------------------------------------

    async def spawn(
        self,
        factory: Callable[..., Actor],
        *args: Any,
        name: str | None = None,
        supervisor: Supervisor | ActorDomain | None = None,
        restart: Restart | None = None,
        mailbox_capacity: int | None = None,
        handler_timeout: float | None = None,
        recovery: RecoveryPolicy | None = None,
        shutdown_timeout: float | None = None,
        role: str | None = None,
        capabilities: Sequence[str] = (),
        middleware: Sequence[MessageMiddleware] = (),
        roles: Iterable[Role] = (),
        max_restarts: int | None = None,
        restart_window: float | None = None,
        heartbeat: bool | None = None,
        durable: bool = False,
    ) -> ActorRef:
        """Start an actor built by ``factory(*args)`` and return its ref once started.

        Args:
            factory: Builds a fresh :class:`Actor` for every (re)start.
            args: Arguments for ``factory``.
            name: Unique name (default: derived from the factory).
            supervisor: Where it runs: an :class:`ActorDomain`, a supervisor (a domain's
                or your own), or by default the default domain (overflowing into
                siblings past ``max_children_per_supervisor``).
            restart: Restart type (default: transient — restarted after a crash,
                not after a stop).
            mailbox_capacity: Mailbox bound (default: the system's).
            handler_timeout: Per-message deadline; exceeding it is a failure.
            recovery: Recovery policy for its crashes (default: the error's own).
            shutdown_timeout: Grace for ``on_stop`` when stopped.
            role: Free-form role label (shown in events; used by teams and routing).
                It grants nothing: permissions come from ``roles``.
            capabilities: Declared capabilities (used by capability routing).
            middleware: Wrapped around ``handle`` after the system's middleware.
            roles: :class:`~mister_smith.types.Role` objects registered with
                :attr:`identities`, carried by the actor's identity (``ctx.identity``).
            max_restarts: This actor's own restart budget: restarts allowed within
                ``restart_window`` before it is stopped for good (default: the
                system's ``restart_limit``; giving either sets a limit of its own).
            restart_window: Seconds of that budget's window.
            heartbeat: Watch the actor for hung handlers: a handler that runs
                ``heartbeat_timeout`` seconds without calling ``ctx.heartbeat()``
                (or awaiting inside ``ctx.keep_beating()``) is cancelled and handled as
                a crash (``HeartbeatTimeout``, restarted). Default: the factory's
                ``heartbeat_by_default`` (``True`` for agents).
            durable: Keep its mailbox in the system's store (a
                :class:`~mister_smith.actors.DurableActorRef` is returned): every
                message sent is committed before ``tell`` returns and settled after it
                was handled, and the messages a previous run of this ``name`` left
                pending are replayed first. Needs an explicit ``name``.

        Raises:
            ActorNameTaken: ``name`` is already in use.
            ActorStopped: the supervisor is shutting down (nothing was spawned).
            PoolExhausted: ``max_actors`` actors are alive, or the named domain is
                full (``max_children_per_supervisor``).
            UnknownRole: a role was not registered with :attr:`identities`.
            TypeError: a role is given by name (a name is not a credential).
            DurabilityUnavailable: ``durable=True`` in a system without a store, or the
                store cannot be opened.
        """
        if not callable(factory):
            raise TypeError(f"actor factory must be callable, got {factory!r}")
        if durable and name is None:
            raise ValueError(
                "a durable actor needs an explicit name: its mailbox in the store is found "
                "by it after a restart"
            )
        target = self._default if supervisor is None else supervisor
        if isinstance(target, Supervisor):
            target = self._by_supervisor.get(target, target)
        if isinstance(target, ActorDomain) and target.restarting:
            # Its parent restarts it after a backoff: the actor goes to the new instance.
            await target.wait_running()
        if name is None:
            base = getattr(factory, "__name__", "actor").lower()
            name = f"{base}-{next(self._counter)}"
            while name in self._cells:
                name = f"{base}-{next(self._counter)}"
        elif not isinstance(name, str) or not name:
            raise ValueError(f"actor name must be a non-empty string, got {name!r}")
        elif _RESERVED in name:
            raise ValueError(f"actor names may not contain {_RESERVED!r}: {name!r}")
        elif name in self._cells or name in self._domains:
            raise ActorNameTaken(f"an actor or domain named {name!r} already exists")
        if self.max_actors is not None and len(self._cells) >= self.max_actors:
            self._refused += 1
            raise PoolExhausted(
                f"actor limit reached: {self.max_actors} live actors (actors.max_agents)"
            )
        limit = self._restart_limit_of(max_restarts, restart_window)
        beats = getattr(factory, "heartbeat_by_default", False) if heartbeat is None else heartbeat
        capacity = self.mailbox_capacity if mailbox_capacity is None else mailbox_capacity
        if capacity < 1:
            raise ValueError(f"mailbox_capacity must be >= 1, got {capacity!r}")
        if handler_timeout is not None and not handler_timeout > 0:
            raise ValueError(f"handler_timeout must be > 0, got {handler_timeout!r}")
        options = ActorOptions(
            factory,
            tuple(args),
            handler_timeout=handler_timeout,
            middleware=self.middleware + tuple(middleware),
            role=role,
            capabilities=frozenset(capabilities) if capabilities else _NO_CAPABILITIES,
            heartbeat_interval=self.heartbeat_interval if beats else None,
        )
        mailbox = await self._durable_mailbox(name, capacity) if durable else Mailbox(capacity)
        domain, sup = self._resolve(supervisor)
        limit_children = self.max_children_per_supervisor
        if limit_children is not None and sup.child_count >= limit_children:
            sup = await self._with_room(domain, sup)  # an overflow sibling (or refused)
            domain = self._by_supervisor.get(sup)
        actor_id = ActorId.new()
        identity = self.identities.mint(name, roles=roles, actor_id=actor_id)
        cell = ActorCell(self, name, identity, mailbox, options, sup if domain is None else domain)
        self._cells[name] = cell
        held = domain is not None and domain.restartable
        spec = ChildSpec.of(
            serve,
            cell,
            name=name,
            restart=self.default_restart if restart is None else restart,
            recovery=recovery,
            shutdown_timeout=shutdown_timeout,
            heartbeat_timeout=self.heartbeat_timeout if beats else None,
            restart_limit=limit,
            # In a restartable domain, the domain ends the actor when it is gone for good
            # (it survives the domain's restarts); elsewhere its own child does.
            on_terminated=None if held else self._on_child_terminated,
        )
        if sup.state is not SupervisorState.RUNNING:
            self._cells.pop(name, None)
            self.identities.revoke(identity)
            raise ActorStopped(
                f"supervisor {sup.name!r} is {sup.state}: actor {name!r} was not spawned"
            )
        try:
            cell.bind(await sup.start_child(spec))
        except BaseException:
            # Gone for good like any actor (unregistered, identity revoked, waiters
            # woken): what was sent meanwhile (by the actor's own on_start, or by
            # someone who found it registered) is dead-lettered.
            self._terminate(cell, "failed to start")
            raise
        if domain is not None and not cell.closed:
            if domain.supervisor is not sup:
                # The domain restarted while this actor was starting: the new supervisor
                # did not know it, and the old one is gone.
                self._terminate(cell, "shut down")
                raise ActorStopped(f"domain {domain.name!r} restarted while {name!r} spawned")
            domain.admit(name, cell, spec)
        if cell.announce():  # (unless it was stopped while starting: then not counted)
            self._spawned += 1
            self.events.emit(AgentSpawned(source=sup.name, actor_id=actor_id, name=name, role=role))
        return cell.ref

    async def _durable_mailbox(self, name: str, capacity: int) -> DurableMailbox:
        """A durable mailbox whose backlog is what ``name`` left pending."""
        if self.durable is None:
            raise DurabilityUnavailable(
                f"actor {name!r} cannot be durable: this actor system has no store"
            )
        store = await self.durable.store()
        await self.durable.wait_settled()  # a previous actor of this name settled its own
        pending = []
        after = 0
        while True:
            page = await store.pending(name, after=after, limit=MAX_READ_LIMIT)
            pending.extend(page)
            if len(page) < MAX_READ_LIMIT:
                break
            after = page[-1].seq
        if name in self._cells or name in self._domains:
            raise ActorNameTaken(f"an actor or domain named {name!r} already exists")
        mailbox = DurableMailbox(capacity)
        codec = self.durable.codec
        for stored in pending:
            mailbox.accepted += 1
            mailbox.replayed += 1
            try:
                message = from_payload(codec, stored.payload)
            except MessageNotDurable as exc:
                reason = f"poison: {exc}"
                mailbox.dead_lettered_one()
                self._record_dead_letter(name, stored.payload, reason)
                self.durable.dead_letter(name, stored.seq, reason)
                continue
            mailbox.backlog.append(Durable(message, stored.seq, stored.message_id))
        return mailbox

    def _restart_limit_of(
        self, max_restarts: int | None, restart_window: float | None
    ) -> RestartLimit | None:
        """The restart budget an actor spawned with these overrides gets of its own
        (``None``: its supervisor's default)."""
        if max_restarts is None and restart_window is None:
            return None
        default = self.restart_limit or DEFAULT_RESTART_LIMIT
        return RestartLimit(
            default.max_restarts if max_restarts is None else max_restarts,
            default.window if restart_window is None else restart_window,
        )

    # -- stopping -----------------------------------------------------------------------

    def _child_terminated(self, child: Child) -> None:
        cell = self._cells.get(child.name)  # actor names are unique in the system
        if cell is not None and cell.child in (None, child):
            self._terminate(cell, (child.end_reason or ChildEnd.STOPPED).value)

    def _terminate(self, cell: ActorCell, reason: str) -> None:
        """The actor is gone for good: refuse sends, dead-letter what is queued."""
        if not cell.close():
            return
        domain = cell.domain
        if domain is not None:
            domain.forget(cell.name)
        self.identities.revoke(cell.identity)  # a reused name gets none of its grants
        mailbox = cell.mailbox
        if isinstance(mailbox, DurableMailbox):
            settle_left(cell, mailbox.close(), reason)
        for envelope in mailbox.close():
            cell.dead_letter(envelope, f"actor {reason}", cell.stopped_error())
        if self._cells.get(cell.name) is cell:
            del self._cells[cell.name]
        mailbox.fold_into(self._stopped)
        if cell.announced:
            self.events.emit(
                AgentStopped(
                    source=cell.supervisor.name,
                    actor_id=cell.actor_id,
                    name=cell.name,
                    reason=reason,
                )
            )
        cell.wake_waiters()
        if self._termination_listeners:
            for listener in list(self._termination_listeners):
                try:
                    listener(cell.ref)
                except Exception:
                    logger.exception("actor termination listener failed")

    def _record_dead_letter(self, actor: str, message: Any, reason: str) -> None:
        self._dead_letters.record(actor, message, reason)

    async def stop(self, ref: ActorRef | str) -> None:
        """Stop an actor for good (graceful within its shutdown timeout). Idempotent."""
        cell = self._cell_of(ref)
        if cell.closed:
            await trio.lowlevel.checkpoint()
            return
        supervisor = cell.supervisor
        child = cell.child
        try:
            if child is None:
                # Stopped while its spawn is still starting it: find the child by name.
                child = supervisor.child(cell.name)
            await supervisor.stop_child(child)
        except LookupError:
            pass
        finally:
            self._terminate(cell, "stopped")  # even if our caller is cancelled meanwhile

    def add_termination_listener(self, listener: Callable[[ActorRef], object]) -> None:
        """Call ``listener(ref)`` whenever an actor is gone for good (however it ended)."""
        self._termination_listeners.append(listener)

    def remove_termination_listener(self, listener: Callable[[ActorRef], object]) -> None:
        """Undo :meth:`add_termination_listener`."""
        self._termination_listeners.remove(listener)

    # -- queries ------------------------------------------------------------------------

    def _cell_of(self, ref: ActorRef | str) -> ActorCell:
        if isinstance(ref, ActorRef):
            if ref._cell.system is not self:
                raise ValueError(f"{ref!r} belongs to another actor system")
            return ref._cell
        return self._lookup_cell(ref)

    def _lookup_cell(self, name: str) -> ActorCell:
        try:
            return self._cells[name]
        except KeyError:
            raise ActorNotFound(f"no actor named {name!r}") from None

    def lookup(self, name: str) -> ActorRef:
        """The live actor called ``name``.

        Raises:
            ActorNotFound: no such live actor.
        """
        return self._lookup_cell(name).ref

    def get(self, name: str) -> ActorRef | None:
        """The live actor called ``name``, or ``None``."""
        cell = self._cells.get(name)
        return None if cell is None else cell.ref

    def actors(self) -> list[ActorRef]:
        """Every live actor, in spawn order."""
        return [cell.ref for cell in self._cells.values()]

    def dead_letters(self) -> list[DeadLetterRecord]:
        """The bounded dead-letter log, oldest first."""
        return self._dead_letters.records()

    def resize_dead_letter_log(self, size: int) -> None:
        """Keep at most ``size`` dead-letter records from now on (the newest are kept)."""
        self._dead_letters.resize(size)

    def statistics(self) -> ActorSystemStatistics:
        """Totals over live and stopped actors."""
        totals = self._stopped.snapshot()
        for cell in self._cells.values():
            totals = totals + cell.mailbox.counters()
        return ActorSystemStatistics(
            live_actors=len(self._cells),
            spawned=self._spawned,
            accepted=totals.accepted,
            handled=totals.handled,
            failed=totals.failed,
            dead_lettered=totals.dead_lettered,
            refused=self._refused,
            domains=len(self._domains),
            replayed=totals.replayed,
        )

    async def shutdown(self) -> None:
        """Stop every actor (through the supervisors, reverse start order): the overflow
        siblings, then the default domain (with the domains nested in it)."""
        for domain in [*reversed(self._overflow), self._default]:
            parent = domain.parent_supervisor() if domain.restartable else None
            if parent is None:
                await domain.supervisor.stop()
            else:
                with suppress(LookupError):
                    await parent.stop_child(domain.name)

    def reconfigure(
        self,
        *,
        restart_limit: RestartLimit | Inherit | None = INHERIT,
        backoff: Backoff | Inherit | None = INHERIT,
        escalation_timeout: float | Inherit | None = INHERIT,
        ask_timeout: float | None = None,
        heartbeat_interval: float | None = None,
        heartbeat_timeout: float | None = None,
    ) -> None:
        """Change the bounds in force while actors run (none is restarted).

        ``restart_limit`` (each actor's budget unless it has its own), ``backoff`` and
        ``escalation_timeout`` apply to the default domain, its overflow siblings and
        the domains that took the system's defaults; ``ask_timeout`` to asks made from
        now on; the heartbeat settings to actors spawned from now on.
        """
        new_interval = self.heartbeat_interval if heartbeat_interval is None else heartbeat_interval
        new_timeout = self.heartbeat_timeout if heartbeat_timeout is None else heartbeat_timeout
        if not 0 < new_interval <= new_timeout:
            raise ValueError(
                "heartbeats need 0 < heartbeat_interval <= heartbeat_timeout, got "
                f"{new_interval!r} and {new_timeout!r}"
            )
        if ask_timeout is not None and not ask_timeout >= 0:
            raise ValueError(f"ask_timeout must be >= 0, got {ask_timeout!r}")
        old_limit, old_backoff = self.restart_limit, self.backoff
        if restart_limit is not INHERIT:
            self.restart_limit = restart_limit
        if backoff is not INHERIT:
            self.backoff = backoff
        if escalation_timeout is not INHERIT:
            self.escalation_timeout = escalation_timeout
        for domain in self._domains.values():
            supervisor = domain._supervisor
            if supervisor is None or domain.terminated:
                continue
            supervisor.reconfigure(
                child_limit=self.restart_limit
                if supervisor.child_limit == old_limit
                else supervisor.child_limit,
                backoff=self.backoff if supervisor.backoff == old_backoff else supervisor.backoff,
                escalation_timeout=self.escalation_timeout,
            )
        if ask_timeout is not None:
            self.ask_timeout = ask_timeout
        self.heartbeat_interval = new_interval
        self.heartbeat_timeout = new_timeout


_NO_CAPABILITIES: frozenset[str] = frozenset()

DURABLE_CHILD = "durable::mailboxes"
"""The child of a system's supervisor that serves its durable mailboxes' store."""

_RESERVED = "::"
"""Separator of names the system derives (``parent::children``); refused in actor names."""
