"""``ActorRef``: how everyone talks to an actor."""

from __future__ import annotations

import functools
import math
from typing import TYPE_CHECKING, Any

import trio

from ..errors import AskTimeout, MailboxFull
from ..types import TRACEPARENT, ActorId
from ._envelope import Ask, Reply, Traced
from ._mailbox import MailboxStatistics

if TYPE_CHECKING:
    from ._cell import ActorCell, ActorStatistics

# Bound once: ``tell`` runs once per message, and each is two module lookups less.
_checkpoint_if_cancelled = trio.lowlevel.checkpoint_if_cancelled
_cancel_shielded_checkpoint = trio.lowlevel.cancel_shielded_checkpoint


class ActorRef:
    """A cheap, hashable handle on an actor, valid across its restarts.

    ``await ref.tell(msg)`` waits for mailbox room (backpressure);
    ``ref.tell_nowait(msg)`` raises :class:`~mister_smith.errors.MailboxFull`
    instead; ``await ref.ask(msg, timeout=...)`` returns the handler's reply. Sending
    to a stopped actor raises :class:`~mister_smith.errors.ActorStopped`.
    """

    __slots__ = ("_cell",)

    def __init__(self, cell: ActorCell) -> None:
        self._cell = cell

    @property
    def name(self) -> str:
        """The actor's unique name in its system."""
        return self._cell.name

    @property
    def actor_id(self) -> ActorId:
        """The actor's id (stable across restarts)."""
        return self._cell.actor_id

    @property
    def role(self) -> str | None:
        """The role given at spawn, if any."""
        return self._cell.options.role

    @property
    def capabilities(self) -> frozenset[str]:
        """Capabilities declared at spawn (used by capability-based routing)."""
        return self._cell.options.capabilities

    @property
    def accepts_delegated(self) -> bool:
        """Whether the actor's class handles :class:`~mister_smith.actors.Delegated`
        messages (see :attr:`Actor.accepts_delegated`): read from the running
        incarnation, else from the class its factory builds."""
        cell = self._cell
        if cell.incarnation is not None:
            return bool(type(cell.incarnation.instance).accepts_delegated)
        factory: Any = cell.options.factory
        while isinstance(factory, functools.partial):
            factory = factory.func
        return isinstance(factory, type) and bool(getattr(factory, "accepts_delegated", False))

    @property
    def load(self) -> int:
        """Messages queued plus the one in flight: the live load routing reads."""
        # Plain counters (no channel statistics object): routing reads this per member.
        # A sender blocked on a full mailbox is counted when it resumes, so this can be
        # one short for a moment; never negative.
        return self._cell.mailbox.load()

    @property
    def is_alive(self) -> bool:
        """Whether the actor still accepts messages."""
        return not self._cell.closed

    async def tell(self, message: Any) -> None:
        """Send ``message``, waiting while the mailbox is full.

        Raises:
            ActorStopped: the actor is stopped (the message was not accepted).
        """
        cell = self._cell
        traceparent = TRACEPARENT.get()
        if traceparent is not None and not isinstance(message, Ask):
            message = Traced(message, traceparent)
        await _checkpoint_if_cancelled()
        if cell.closed:
            raise cell.stopped_error()
        mailbox = cell.mailbox
        try:
            mailbox.send.send_nowait(message)
        except trio.WouldBlock:
            try:
                await mailbox.send.send(message)
            except (trio.ClosedResourceError, trio.BrokenResourceError):
                raise cell.stopped_error() from None
            mailbox.accepted_late()  # (maybe woken by the final drain of a stopping actor)
            return
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            raise cell.stopped_error() from None
        if mailbox._watchers is None:
            mailbox.accepted += 1  # open mailbox: nothing folded yet
        else:
            mailbox.accepted_now()
        await _cancel_shielded_checkpoint()

    def tell_nowait(self, message: Any) -> None:
        """Send ``message`` if the mailbox has room.

        Raises:
            MailboxFull: the mailbox is at capacity.
            ActorStopped: the actor is stopped.
        """
        cell = self._cell
        if cell.closed:
            raise cell.stopped_error()
        mailbox = cell.mailbox
        traceparent = TRACEPARENT.get()
        if traceparent is not None:
            message = Traced(message, traceparent)
        try:
            mailbox.send.send_nowait(message)
        except trio.WouldBlock:
            raise MailboxFull(
                f"mailbox of actor {cell.name!r} is full ({mailbox.capacity} messages)"
            ) from None
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            raise cell.stopped_error() from None
        if mailbox._watchers is None:
            mailbox.accepted += 1
        else:
            mailbox.accepted_now()

    async def ask(self, message: Any, *, timeout: float | None = None) -> Any:
        """Send ``message`` and wait for the handler's return value.

        The deadline covers waiting for mailbox room *and* for the reply. If the actor
        crashes while handling the message, or stops before handling it, this fails at
        once rather than waiting for the deadline.

        Args:
            message: The message.
            timeout: Seconds (default: the system's ``ask_timeout``; ``math.inf`` waits
                forever).

        Raises:
            AskTimeout: no reply in time (a ``TimeoutError``).
            ActorCrashed: handling this message crashed the actor (cause attached).
            ActorStopped: the actor stopped before handling it.
        """
        timeout = self._ask_timeout(timeout)
        reply = Reply()
        with trio.move_on_after(timeout):
            await self.tell(Ask(message, reply, TRACEPARENT.get()))
            await reply.event.wait()
        return self._answer(reply, timeout)

    def _ask_timeout(self, timeout: float | None) -> float:
        """``timeout``, or the system's ``ask_timeout``; refused if negative."""
        if timeout is None:
            return self._cell.system.ask_timeout
        if not timeout >= 0:
            raise ValueError(f"ask timeout must be >= 0, got {timeout!r}")
        return timeout

    def _answer(self, reply: Reply, timeout: float) -> Any:
        """What an ask returns once its wait is over: the handler's value, its error
        raised, or ``AskTimeout`` (the reply is then marked abandoned)."""
        if not reply.event.is_set():
            reply.abandoned = True
            name = self._cell.name
            raise AskTimeout(
                f"no reply from actor {name!r} within {timeout} s"
                if math.isfinite(timeout)
                else f"no reply from actor {name!r}"
            )
        if reply.error is not None:
            raise reply.error
        return reply.value

    async def stop(self) -> None:
        """Stop the actor for good; queued messages become dead letters."""
        await self._cell.system.stop(self)

    def statistics(self) -> ActorStatistics:
        """The actor's counters (live load included)."""
        return self._cell.statistics()

    def mailbox_statistics(self) -> MailboxStatistics:
        """The mailbox's counters."""
        return self._cell.mailbox.statistics()

    async def wait_stopped(self) -> None:
        """Wait until the actor has stopped for good."""
        await self._cell.terminated().wait()

    def __hash__(self) -> int:
        # Refs are equal exactly when they share a cell: hash the cell's identity (a
        # C-level hash; the ActorId's attrs/UUID hash costs ~10x more on routing paths).
        return object.__hash__(self._cell)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ActorRef) and other._cell is self._cell

    def __repr__(self) -> str:
        return f"<ActorRef {self._cell.name} {self._cell.actor_id}>"

    def __str__(self) -> str:
        return self._cell.name
