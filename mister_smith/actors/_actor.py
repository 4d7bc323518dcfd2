"""The ``Actor`` base class and the context each incarnation receives."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, ClassVar

import trio

from ..errors import ActorStopped, SupervisionError
from ..events import EventBus
from ..supervision import heartbeat
from ..types import CallerIdentity, Restart

if TYPE_CHECKING:
    from ..supervision import Supervisor
    from ._cell import ActorCell
    from ._ref import ActorRef
    from ._system import ActorSystem


class Actor:
    """Base class of actors: subclass it and implement :meth:`handle`.

    A fresh instance is built from the factory given to
    :meth:`~mister_smith.actors.ActorSystem.spawn` at every (re)start, so state resets
    on restart, as in OTP. Messages are handled one at a time, in arrival order.
    """

    heartbeat_by_default: ClassVar[bool] = False
    """Whether ``spawn`` watches this kind of actor by heartbeat unless told otherwise
    (see the ``heartbeat`` option of :meth:`~mister_smith.actors.ActorSystem.spawn`)."""

    accepts_delegated: ClassVar[bool] = False
    """Whether :meth:`handle` understands :class:`~mister_smith.actors.Delegated`
    messages and then calls tools only where every delegator may too (an ``Agent``
    does). ``AgentTool`` sends such an actor the caller it works for; any other actor
    gets the bare message and acts under its own grants."""

    async def handle(self, message: Any, ctx: ActorContext) -> Any:
        """Handle one message; the return value is the reply to an ``ask``.

        An exception crashes this incarnation: the message goes to dead letters (it is
        never redelivered) and the supervisor decides what happens next.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement handle()")

    async def on_start(self, ctx: ActorContext) -> None:
        """Called before the first message of each incarnation."""

    async def on_stop(self, ctx: ActorContext) -> None:
        """Called when an incarnation ends (stop, crash or shutdown). Awaits here are
        shielded up to the actor's shutdown timeout."""

    async def on_restart(self, ctx: ActorContext, error: BaseException | None) -> None:
        """Called on a new incarnation after a restart, before :meth:`on_start`."""


class ActorContext:
    """What an actor incarnation can reach: its ref, the system, the event bus.

    One is built for each incarnation (by the message loop); the child actors it spawns
    are stopped when that incarnation ends.
    """

    __slots__ = ("_cell", "_children", "_ended", "_lock", "_number")

    def __init__(self, cell: ActorCell, incarnation: int) -> None:
        self._cell = cell
        self._number = incarnation
        self._children: Supervisor | None = None
        self._lock: trio.Lock | None = None  # made on first ctx.spawn (memory per actor)
        self._ended = False
        """Its incarnation has ended (its children are being or were stopped)."""

    @property
    def ref(self) -> ActorRef:
        """This actor's own ref."""
        return self._cell.ref

    @property
    def name(self) -> str:
        """This actor's name."""
        return self._cell.name

    @property
    def system(self) -> ActorSystem:
        """The actor system."""
        return self._cell.system

    @property
    def events(self) -> EventBus:
        """The event bus."""
        return self._cell.system.events

    @property
    def identity(self) -> CallerIdentity:
        """This actor's caller identity, minted by the system's authority at spawn.

        Present it to a ``ToolBus`` sharing that authority; it is the same object in
        every incarnation and is revoked when the actor is gone for good, so a later
        actor of the same name gets nothing granted to this one. Keep it to yourself:
        whoever holds it can call tools as this actor.
        """
        return self._cell.identity

    @property
    def incarnation(self) -> int:
        """1 for the first run, 2 after the first restart, ..."""
        return self._number

    def heartbeat(self) -> None:
        """Tell the supervisor this actor's handler is making progress.

        Only matters for actors spawned with ``heartbeat=True`` (agents by default):
        a handler silent for ``heartbeat_timeout`` seconds is taken for hung, cancelled
        and handled as a crash. A no-op otherwise.
        """
        heartbeat()

    @asynccontextmanager
    async def keep_beating(self) -> AsyncIterator[None]:
        """Send heartbeats every ``heartbeat_interval`` while the body runs.

        Wrap awaits that are bounded by a deadline of their own and may legitimately
        outlast ``heartbeat_timeout`` (a model request, a tool call), so they are not
        mistaken for a hang. A no-op for actors without heartbeats.
        """
        every = self._cell.options.heartbeat_interval
        if every is None:
            yield
            return
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_beat, every)
            try:
                yield
            finally:
                nursery.cancel_scope.cancel()

    async def spawn(self, factory: Callable[..., Actor], *args: Any, **options: Any) -> ActorRef:
        """Spawn a child actor supervised under this actor: the children are stopped
        whenever this actor's incarnation ends (restart or stop).

        Raises:
            ActorStopped: this context's incarnation has ended (a context kept or
                passed on past its incarnation spawns nothing: no one would stop it).
        """
        if self._lock is None:
            self._lock = trio.Lock()
        async with self._lock:  # concurrent ctx.spawn calls share one supervisor
            if self._ended:
                await trio.lowlevel.checkpoint()
                raise ActorStopped(
                    f"incarnation {self._number} of actor {self._cell.name!r} has ended: "
                    "no child was spawned"
                )
            if self._children is None:
                parent = self._cell.supervisor
                try:
                    self._children = await parent.start_supervisor(
                        f"{self._cell.name}::children",
                        restart=Restart.TEMPORARY,
                        owner=self._cell.name,  # stopped with this actor's incarnation
                    )
                except SupervisionError as exc:  # the system is shutting down
                    await trio.lowlevel.checkpoint()  # (see below)
                    raise ActorStopped(
                        f"supervisor {parent.name!r} is {parent.state}: no child of actor "
                        f"{self._cell.name!r} was spawned"
                    ) from exc
            children = self._children
        try:
            return await self._cell.system.spawn(factory, *args, supervisor=children, **options)
        except ActorStopped:
            # Refused because this actor's own children are being stopped: when that is
            # because this actor is being stopped (a shutdown, a group restart), its
            # cancellation is what ends the handler, not a crash of its own.
            await trio.lowlevel.checkpoint()
            raise

    async def _stop_children(self) -> None:
        children = self._children
        self._children = None
        if children is not None:
            parent = self._cell.supervisor
            with contextlib.suppress(LookupError):
                await parent.stop_child(children.name)


async def _beat(every: float) -> None:
    while True:
        heartbeat()
        await trio.sleep(every)
