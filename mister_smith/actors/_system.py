"""The actor system: spawning, naming, lookup, stopping, dead letters."""

from __future__ import annotations

import collections
import itertools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager, suppress
from typing import Any, Protocol

import attrs
import trio

from ..errors import (
    ActorCrashed,
    ActorNameTaken,
    ActorNotFound,
    ActorStopped,
    HandlerTimeout,
    HandlingInterrupted,
    MessageRejected,
)
from ..events import AgentSpawned, AgentStopped, DeadLetter, EventBus, bounded_payload, cut_text
from ..supervision import (
    Child,
    ChildSpec,
    ChildState,
    RecoveryPolicy,
    Restart,
    Supervisor,
    open_supervisor,
    shutdown_grace,
)
from ..types import IdentityAuthority, Role
from ._actor import Actor, ActorContext
from ._cell import ActorCell, Ask
from ._ref import ActorRef

logger = logging.getLogger("mister_smith.actors")

Handler = Callable[[Any, ActorContext], Awaitable[Any]]


class MessageMiddleware(Protocol):
    """Wraps an actor's handling of one message (see ``mister_smith.async_patterns``).

    ``run`` must call ``handler(message, ctx)`` at most once and return its result,
    or raise to reject the message (the rejection counts as the handler failing).
    """

    async def run(self, message: Any, ctx: ActorContext, handler: Handler) -> Any:
        """Run ``handler`` around this middleware's hooks."""
        ...


@attrs.frozen
class DeadLetterRecord:
    """One entry of the dead-letter log.

    The log outlives the actor, so it is bounded by bytes as well as by count: a
    message over :data:`~mister_smith.events.DEFAULT_PAYLOAD_LIMIT` bytes is kept as a
    :class:`~mister_smith.events.PayloadPreview` (type name, size, ``repr`` head), and
    a long reason is cut; the ``DeadLetter`` event carries the same.
    """

    actor: str
    message: Any
    reason: str
    timestamp: float


@attrs.frozen
class ActorSystemStatistics:
    """Totals over every actor the system has run (live and stopped)."""

    live_actors: int
    spawned: int
    accepted: int
    handled: int
    failed: int
    dead_lettered: int


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
    """

    def __init__(
        self,
        supervisor: Supervisor,
        events: EventBus,
        *,
        mailbox_capacity: int = 1000,
        ask_timeout: float = 30.0,
        dead_letter_log_size: int = 1000,
        middleware: Sequence[MessageMiddleware] = (),
        default_restart: Restart = Restart.TRANSIENT,
        identities: IdentityAuthority | None = None,
    ) -> None:
        if mailbox_capacity < 1:
            raise ValueError(f"mailbox_capacity must be >= 1, got {mailbox_capacity!r}")
        if not ask_timeout >= 0:
            raise ValueError(f"ask_timeout must be >= 0, got {ask_timeout!r}")
        self.supervisor = supervisor
        self.events = events
        self.mailbox_capacity = mailbox_capacity
        self.ask_timeout = ask_timeout
        self.middleware = tuple(middleware)
        self.default_restart = default_restart
        self.identities = IdentityAuthority() if identities is None else identities
        self._dead_letters: collections.deque[DeadLetterRecord] = collections.deque(
            maxlen=dead_letter_log_size
        )
        self._cells: dict[str, ActorCell] = {}
        self._counter = itertools.count(1)
        self._spawned = 0
        self._stopped_totals = [0, 0, 0, 0]  # accepted, handled, failed, dead_lettered
        self._termination_listeners: list[Callable[[ActorRef], object]] = []

    # -- spawning ---------------------------------------------------------------------

    async def spawn(
        self,
        factory: Callable[..., Actor],
        *args: Any,
        name: str | None = None,
        supervisor: Supervisor | None = None,
        restart: Restart | None = None,
        mailbox_capacity: int | None = None,
        handler_timeout: float | None = None,
        recovery: RecoveryPolicy | None = None,
        shutdown_timeout: float | None = None,
        role: str | None = None,
        capabilities: Sequence[str] = (),
        middleware: Sequence[MessageMiddleware] = (),
        roles: Iterable[Role] = (),
    ) -> ActorRef:
        """Start an actor built by ``factory(*args)`` and return its ref once started.

        Args:
            factory: Builds a fresh :class:`Actor` for every (re)start.
            args: Arguments for ``factory``.
            name: Unique name (default: derived from the factory).
            supervisor: Where it runs (default: the system's supervisor).
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

        Raises:
            ActorNameTaken: ``name`` is already in use.
            ActorStopped: the supervisor is shutting down (nothing was spawned).
            UnknownRole: a role was not registered with :attr:`identities`.
            TypeError: a role is given by name (a name is not a credential).
        """
        if not callable(factory):
            raise TypeError(f"actor factory must be callable, got {factory!r}")
        if name is None:
            base = getattr(factory, "__name__", "actor").lower()
            name = f"{base}-{next(self._counter)}"
            while name in self._cells:
                name = f"{base}-{next(self._counter)}"
        elif not isinstance(name, str) or not name:
            raise ValueError(f"actor name must be a non-empty string, got {name!r}")
        elif _RESERVED in name:
            raise ValueError(f"actor names may not contain {_RESERVED!r}: {name!r}")
        elif name in self._cells:
            raise ActorNameTaken(f"an actor named {name!r} already exists")
        capacity = self.mailbox_capacity if mailbox_capacity is None else mailbox_capacity
        if capacity < 1:
            raise ValueError(f"mailbox_capacity must be >= 1, got {capacity!r}")
        if handler_timeout is not None and not handler_timeout > 0:
            raise ValueError(f"handler_timeout must be > 0, got {handler_timeout!r}")
        cell = ActorCell(
            self,
            factory,
            tuple(args),
            name=name,
            mailbox_capacity=capacity,
            handler_timeout=handler_timeout,
            middleware=self.middleware + tuple(middleware),
            role=role,
            capabilities=frozenset(capabilities) if capabilities else _NO_CAPABILITIES,
        )
        cell.ctx = ActorContext(cell)
        cell.identity = self.identities.mint(name, roles=roles, actor_id=cell.actor_id)
        sup = self.supervisor if supervisor is None else supervisor
        cell.supervisor = sup
        self._cells[name] = cell
        spec = ChildSpec.of(
            self._serve,
            cell,
            name=name,
            restart=self.default_restart if restart is None else restart,
            recovery=recovery,
            shutdown_timeout=shutdown_timeout,
            on_terminated=self._child_terminated,
        )
        if sup.state != "running":
            self._cells.pop(name, None)
            self.identities.revoke(cell.identity)
            raise ActorStopped(
                f"supervisor {sup.name!r} is {sup.state}: actor {name!r} was not spawned"
            )
        try:
            cell.child = await sup.start_child(spec)
        except BaseException:
            self._cells.pop(name, None)
            self.identities.revoke(cell.identity)
            cell.closed = True
            cell.terminated().set()
            raise
        self._spawned += 1
        if not cell.closed:  # (it may have been stopped while starting)
            cell.announced = True
            self.events.emit(
                AgentSpawned(source=sup.name, actor_id=cell.actor_id, name=name, role=role)
            )
        return cell.ref

    # -- the actor loop -----------------------------------------------------------------

    async def _serve(
        self, cell: ActorCell, *, task_status: trio.TaskStatus[ActorRef] = trio.TASK_STATUS_IGNORED
    ) -> None:
        ctx = cell.ctx
        assert ctx is not None
        if cell.closed:  # stopped for good before this incarnation could start
            task_status.started(cell.ref)
            return
        instance = cell.factory(*cell.args)
        if not isinstance(instance, Actor):
            raise TypeError(f"actor factory {cell.factory!r} returned {instance!r}, not an Actor")
        cell.instance = instance
        cell.incarnations += 1
        # The error that ended the previous incarnation, consumed here: a restart
        # caused by a sibling's crash is told ``None``, not an old crash of its own.
        previous_error, cell.last_error = cell.last_error, None
        try:
            if cell.incarnations > 1:
                await instance.on_restart(ctx, previous_error)
            await instance.on_start(ctx)
            task_status.started(cell.ref)
            # The message loop is inlined here: one coroutine frame less per actor.
            receive = cell.receive
            handler: Handler = instance.handle
            for layer in reversed(cell.middleware):
                handler = _wrap(layer, handler)
            timeout = cell.handler_timeout
            while True:
                try:
                    envelope = await receive.receive()
                except (trio.EndOfChannel, trio.ClosedResourceError):
                    return  # the actor was stopped for good: its mailbox is closed
                cell.current = envelope
                message = envelope.message if isinstance(envelope, Ask) else envelope
                try:
                    if timeout is None:
                        result = await handler(message, ctx)
                    else:
                        with trio.move_on_after(timeout) as scope:
                            result = await handler(message, ctx)
                        if scope.cancelled_caught:
                            raise HandlerTimeout(
                                f"actor {cell.name!r} took longer than {timeout} s on a message"
                            )
                except MessageRejected as exc:
                    # Refused before the handler saw it: not the actor's failure.
                    cell.current = None
                    cell.dead_letter(envelope, f"rejected: {exc}", exc)
                    continue
                except Exception as exc:
                    cell.current = None
                    cell.failed += 1
                    cell.count_late(2)
                    cell.last_error = exc
                    crashed = ActorCrashed(f"actor {cell.name!r} crashed handling the message")
                    crashed.__cause__ = exc
                    cell.dead_letter(envelope, f"crashed while handling it: {exc!r}", crashed)
                    raise
                except BaseException:
                    cell.current = None
                    cell.dead_letter(envelope, "stopped while handling it", _interrupted(cell))
                    raise
                cell.current = None
                cell.handled += 1
                if cell.folded:  # it stopped itself while handling this message
                    cell.count_late(1)
                if isinstance(envelope, Ask):
                    envelope.reply.set_value(result)
        finally:
            try:
                with shutdown_grace():
                    try:
                        await instance.on_stop(ctx)
                    except Exception:
                        logger.exception("on_stop of actor %s failed", cell.name)
            finally:
                # Even when on_stop overran its grace (Cancelled): children never
                # outlive their parent. Bounded by the children's own shutdown timeouts.
                with trio.CancelScope(shield=True):
                    await ctx._stop_children()

    # -- stopping -----------------------------------------------------------------------

    def _child_terminated(self, child: Child) -> None:
        cell: ActorCell = child.spec.args[0]  # the spec runs self._serve(cell)
        self._terminate(cell, _end_reason(child))

    def _terminate(self, cell: ActorCell, reason: str) -> None:
        """The actor is gone for good: refuse sends, dead-letter what is queued."""
        if cell.closed:
            return
        cell.closed = True
        if cell.identity is not None:
            self.identities.revoke(cell.identity)  # a reused name gets none of its grants
        while True:
            try:
                envelope = cell.receive.receive_nowait()
            except (trio.WouldBlock, trio.EndOfChannel, trio.ClosedResourceError):
                break
            cell.dead_letter(envelope, f"actor {reason}", cell.stopped_error())
        cell.receive.close()
        cell.send.close()
        if self._cells.get(cell.name) is cell:
            del self._cells[cell.name]
        totals = self._stopped_totals
        totals[0] += cell.accepted
        totals[1] += cell.handled
        totals[2] += cell.failed
        totals[3] += cell.dead_lettered
        cell.folded = True
        if cell.announced:
            self.events.emit(
                AgentStopped(
                    source=cell.supervisor.name if cell.supervisor else "",
                    actor_id=cell.actor_id,
                    name=cell.name,
                    reason=reason,
                )
            )
        if cell._terminated is not None:
            cell._terminated.set()
        for listener in list(self._termination_listeners):
            try:
                listener(cell.ref)
            except Exception:
                logger.exception("actor termination listener failed")

    def _record_dead_letter(self, cell: ActorCell, message: Any, reason: str) -> None:
        now = trio.current_time()
        # Bounded by bytes: the message may be large and outlive its actor here.
        message, reason = bounded_payload(message), cut_text(reason)
        self._dead_letters.append(DeadLetterRecord(cell.name, message, reason, now))
        self.events.emit(
            DeadLetter(source=cell.name, actor=cell.name, message=message, reason=reason)
        )

    async def stop(self, ref: ActorRef | str) -> None:
        """Stop an actor for good (graceful within its shutdown timeout). Idempotent."""
        cell = self._cell_of(ref)
        if cell.closed:
            await trio.lowlevel.checkpoint()
            return
        child = cell.child
        if child is None and cell.supervisor is not None:
            # Stopped while its spawn is still starting it: find the child by name.
            with suppress(LookupError):
                child = cell.supervisor.child(cell.name)
        try:
            if child is not None and cell.supervisor is not None:
                with suppress(LookupError):
                    await cell.supervisor.stop_child(child)
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
        return list(self._dead_letters)

    def statistics(self) -> ActorSystemStatistics:
        """Totals over live and stopped actors."""
        accepted, handled, failed, dead = self._stopped_totals
        for cell in self._cells.values():
            accepted += cell.accepted
            handled += cell.handled
            failed += cell.failed
            dead += cell.dead_lettered
        return ActorSystemStatistics(
            live_actors=len(self._cells),
            spawned=self._spawned,
            accepted=accepted,
            handled=handled,
            failed=failed,
            dead_lettered=dead,
        )

    async def shutdown(self) -> None:
        """Stop every actor (through the supervisor, reverse start order)."""
        await self.supervisor.stop()


_NO_CAPABILITIES: frozenset[str] = frozenset()

_RESERVED = "::"
"""Separator of names the system derives (``parent::children``); refused in actor names."""


def _interrupted(cell: ActorCell) -> ActorStopped | HandlingInterrupted:
    """The error for an ``ask`` whose message was being handled when the supervisor
    stopped the actor: for good (stop, shutdown, a temporary actor) or to restart it
    (a sibling's crash under OneForAll / RestForOne)."""
    child, supervisor = cell.child, cell.supervisor
    for_good = (
        cell.closed
        or child is None
        or supervisor is None
        or supervisor.state != "running"
        or child.restart is Restart.TEMPORARY
    )
    if for_good:
        return cell.stopped_error()
    return HandlingInterrupted(
        f"actor {cell.name!r} was restarted by its supervisor while handling the message"
    )


def _end_reason(child: Child) -> str:
    """Why a supervised actor is gone for good: its supervisor shut down, it failed
    and was not restarted, or it was stopped."""
    if child.supervisor.state != "running":
        return "shut down"
    if child.state is ChildState.FAILED:
        return "failed"
    return "stopped"


def _wrap(layer: MessageMiddleware, inner: Handler) -> Handler:
    async def handler(message: Any, ctx: ActorContext) -> Any:
        return await layer.run(message, ctx, inner)

    return handler


@asynccontextmanager
async def open_actor_system(
    *,
    events: EventBus | None = None,
    name: str = "actors",
    mailbox_capacity: int = 1000,
    ask_timeout: float = 30.0,
    dead_letter_log_size: int = 1000,
    middleware: Sequence[MessageMiddleware] = (),
    max_restarts: int = 3,
    restart_window: float = 60.0,
    shutdown_timeout: float = 5.0,
) -> AsyncIterator[ActorSystem]:
    """Open an actor system with its own supervisor; stop every actor on exit.

    Actors whose mailboxes are not empty at shutdown have their messages recorded as
    dead letters (reason: shut down).
    """
    bus = EventBus() if events is None else events
    async with open_supervisor(
        name,
        events=bus,
        max_restarts=max_restarts,
        restart_window=restart_window,
        shutdown_timeout=shutdown_timeout,
        keep_alive=True,
    ) as supervisor:
        system = ActorSystem(
            supervisor,
            bus,
            mailbox_capacity=mailbox_capacity,
            ask_timeout=ask_timeout,
            dead_letter_log_size=dead_letter_log_size,
            middleware=middleware,
        )
        yield system
        await supervisor.stop()
