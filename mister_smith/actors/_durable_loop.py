"""The message loop of a durable actor: the in-memory loop plus settling in the store.

Each message is a :class:`~._durable.Durable` item. The replayed backlog is handled
before the channel. After the handler returned the message is acked; when it is dropped
(the handler crashed on it, a middleware refused it, the actor was stopped for good or
restarted while handling it) it is settled as a dead letter with the reason. A message
being handled when the whole system shuts down stays pending in the store, so the next
run handles it again (at-least-once).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import trio

from ..errors import ActorCrashed, HandlerTimeout, MessageRejected
from ..supervision import SupervisorState
from ..types import Restart
from . import _loop
from ._durable import Durable, DurableMailbox, DurableMailboxes
from ._envelope import Ask
from ._incarnation import IDLE

if TYPE_CHECKING:
    from ._cell import ActorCell
    from ._incarnation import Incarnation
    from ._loop import Handler


def kept_for_replay(cell: ActorCell) -> bool:
    """Whether a message interrupted now stays pending for the next run: its actor is
    going down with its supervisor (a shutdown), not stopped or restarted on its own."""
    if cell.closed:
        return False
    child = cell.child
    if child is None or child.failing_with is not None:
        return False
    state = child.supervisor.state
    if child.restart is Restart.TEMPORARY and state is SupervisorState.RUNNING:
        return False
    return state is SupervisorState.STOPPING


async def serve_durable(
    cell: ActorCell,
    incarnation: Incarnation,
    mailbox: DurableMailbox,
    handler: Handler,
    timeout: float | None,
    beat_every: float | None,
) -> None:
    """Handle the durable mailbox's messages until it is closed (see the module)."""
    ctx = incarnation.ctx
    durable: DurableMailboxes = cell.system.durable  # type: ignore[assignment]
    name = cell.name
    receive = mailbox.receive
    backlog = mailbox.backlog
    while True:
        if backlog:
            item: Durable = backlog.popleft()
            await trio.lowlevel.checkpoint()
        else:
            try:
                if beat_every is None:
                    item = await receive.receive()
                else:
                    item = await _loop.receive_beating(receive, beat_every)
            except (trio.EndOfChannel, trio.ClosedResourceError):
                return
        envelope = item.envelope
        incarnation.current = envelope
        message, trace = _loop.open_envelope(envelope)
        try:
            if timeout is None:
                result = await handler(message, ctx)
            else:
                with trio.move_on_after(timeout) as scope:
                    result = await handler(message, ctx)
                if scope.cancelled_caught:
                    raise HandlerTimeout(
                        f"actor {name!r} took longer than {timeout} s on a message"
                    )
        except MessageRejected as exc:
            incarnation.current = IDLE
            reason = f"rejected: {exc}"
            cell.dead_letter(envelope, reason, exc)
            durable.dead_letter(name, item.seq, reason)
            continue
        except Exception as exc:
            incarnation.current = IDLE
            mailbox.failed_one()
            incarnation.error = exc
            crashed = ActorCrashed(f"actor {name!r} crashed handling the message")
            crashed.__cause__ = exc
            reason = f"crashed while handling it: {exc!r}"
            cell.dead_letter(envelope, reason, crashed)
            durable.dead_letter(name, item.seq, reason)
            raise
        except BaseException:
            incarnation.current = IDLE
            error = _loop.interrupted(cell)
            if isinstance(error, ActorCrashed):
                mailbox.failed_one()
                incarnation.error = error.__cause__
                reason = f"crashed while handling it: {error.__cause__!r}"
            else:
                reason = "stopped while handling it"
            if kept_for_replay(cell):
                cell.dead_letter(envelope, f"{reason} (kept in its durable mailbox)", error)
            else:
                cell.dead_letter(envelope, reason, error)
                durable.dead_letter(name, item.seq, reason)
            raise
        finally:
            _loop.restore_trace(trace)
        incarnation.current = IDLE
        mailbox.handled_one()
        durable.ack(name, item.seq)
        if isinstance(envelope, Ask):
            envelope.reply.set_value(result)
        if durable.backlogged:  # (no extra checkpoint per message otherwise)
            await durable.wait_room()


def settle_left(cell: ActorCell, left: list[Any], reason: str) -> None:
    """Account for what was still queued when the durable actor ended: dead letters in
    memory; in the store too, unless the system shut down (then they stay pending and
    the next ``spawn`` of the name replays them)."""
    durable: DurableMailboxes = cell.system.durable  # type: ignore[assignment]
    keep = reason == "shut down"
    for item in left:
        if keep:
            cell.dead_letter(
                item.envelope, f"actor {reason} (kept in its durable mailbox)", cell.stopped_error()
            )
        else:
            cell.dead_letter(item.envelope, f"actor {reason}", cell.stopped_error())
            durable.dead_letter(cell.name, item.seq, f"actor {reason}")
