"""``DurableActorRef``: the ref of a durable actor, whose sends commit to a store first."""

from __future__ import annotations

import itertools
import uuid
from typing import TYPE_CHECKING, Any

import trio

from ..errors import AskTimeout, DurabilityUnavailable
from ..persistence import to_payload
from ..types import TRACEPARENT
from ._durable import Durable, DurableMailbox
from ._envelope import Ask, Reply, Traced
from ._ref import ActorRef

if TYPE_CHECKING:
    from ._durable import DurableMailboxes


_ID_PREFIX = uuid.uuid4().hex
"""Unique to this process: a sent message's default id is this plus a counter (one
``uuid4`` per message costs an ``os.urandom`` call, tens of microseconds on some hosts)."""

_ID_COUNTER = itertools.count(1)


class DurableActorRef(ActorRef):
    """An :class:`ActorRef` on a durable actor (spawned with ``durable=True``).

    ``tell`` and ``ask`` encode the message with the system's codec and append it to the
    actor's durable mailbox in the store *before* handing it to the actor; they return
    (``tell``) or start waiting for the reply (``ask``) once that committed. A message
    sent again with a ``message_id`` the store still remembers (pending, or settled
    within ``persistence.dedupe_window``) is not delivered again: ``tell`` returns
    ``False`` for it. A durable ask's reply is not durable: after a process restart the
    replayed message is handled like a ``tell``.
    """

    __slots__ = ()

    async def tell(self, message: Any, *, message_id: str | None = None) -> bool:  # type: ignore[override]
        """Persist ``message``, then send it, waiting while the mailbox is full.

        Args:
            message: The message (a registered attrs class or plain JSON values).
            message_id: The sender's id of this message (default: a fresh one). Sending
                the same id again while it is remembered delivers nothing.

        Returns:
            ``True`` if the message was accepted, ``False`` if it was a duplicate.

        Raises:
            MessageNotDurable: the message cannot be encoded (nothing was written).
            ActorStopped: the actor is stopped (a message already written is settled as
                a dead letter).
            DurabilityUnavailable: the store cannot be opened.
        """
        cell = self._cell
        traceparent = TRACEPARENT.get()
        if traceparent is not None and not isinstance(message, Ask):
            message = Traced(message, traceparent)
        await trio.lowlevel.checkpoint_if_cancelled()
        if cell.closed:
            raise cell.stopped_error()
        durable: DurableMailboxes = cell.system.durable  # type: ignore[assignment]
        inner = message.message if isinstance(message, Ask | Traced) else message
        payload = to_payload(durable.codec, inner)
        store = durable.current
        if store is None:
            store = await durable.store()
        appended = await store.append(
            cell.name,
            payload,
            message_id=f"{_ID_PREFIX}-{next(_ID_COUNTER)}" if message_id is None else message_id,
        )
        mailbox = cell.mailbox
        assert isinstance(mailbox, DurableMailbox)
        if appended.duplicate:
            mailbox.duplicates += 1
            return False
        item = Durable(message, appended.seq, appended.message_id)
        # Committed: from here on the message is either handed to the actor or settled.
        try:
            if cell.closed:
                raise trio.ClosedResourceError
            try:
                mailbox.send.send_nowait(item)
            except trio.WouldBlock:
                await mailbox.send.send(item)
                mailbox.accepted_late()
                return True
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            durable.dead_letter(cell.name, appended.seq, "refused: the actor is stopped")
            raise cell.stopped_error() from None
        except BaseException:
            durable.dead_letter(cell.name, appended.seq, "refused: the send was cancelled")
            raise
        mailbox.accepted_now()
        return True

    def tell_nowait(self, message: Any) -> None:
        """Refused: a durable send must wait for its commit.

        Raises:
            DurabilityUnavailable: always (use ``await tell``).
        """
        raise DurabilityUnavailable(
            f"actor {self._cell.name!r} is durable: tell_nowait cannot wait for the "
            "commit (use await tell)"
        )

    async def ask(
        self, message: Any, *, timeout: float | None = None, message_id: str | None = None
    ) -> Any:
        """Persist ``message``, send it and wait for the handler's return value (see
        :meth:`ActorRef.ask`; the deadline covers the commit too).

        Raises:
            AskTimeout: no reply in time; also when ``message_id`` was a duplicate
                (the first copy's reply went to its own sender).
            MessageNotDurable: the message cannot be encoded.
        """
        cell = self._cell
        timeout = self._ask_timeout(timeout)
        reply = Reply()
        accepted = True
        with trio.move_on_after(timeout):
            accepted = await self.tell(
                Ask(message, reply, TRACEPARENT.get()), message_id=message_id
            )
            if accepted:
                await reply.event.wait()
        if not accepted:
            raise AskTimeout(
                f"actor {cell.name!r} already has message {message_id!r}: no second reply"
            )
        return self._answer(reply, timeout)
