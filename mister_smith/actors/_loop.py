"""The actor's message loop: one incarnation, from ``on_start`` to ``on_stop``.

:func:`serve` is what supervision runs for an actor (the child's function). It builds a
fresh :class:`Actor` from the cell's options and begins an
:class:`~._incarnation.Incarnation` (whose fields only this loop writes), then handles
the mailbox's messages one at a time, accounting each in the mailbox (see
:mod:`._mailbox`): handled, or dead-lettered with its reason when the handler crashed,
a middleware refused it, or the actor was stopped while handling it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from contextvars import Token
from typing import TYPE_CHECKING, Any, Protocol

import trio

from ..errors import (
    ActorCrashed,
    ActorStopped,
    HandlerTimeout,
    HandlingInterrupted,
    MessageRejected,
)
from ..supervision import SupervisorState, current_child, heartbeat, shutdown_grace
from ..types import TRACEPARENT, Restart
from ._actor import Actor, ActorContext
from ._cell import ActorCell
from ._durable import DurableMailbox
from ._durable_loop import serve_durable
from ._envelope import ENVELOPES, Ask
from ._incarnation import IDLE

if TYPE_CHECKING:
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


async def serve(
    cell: ActorCell, *, task_status: trio.TaskStatus[ActorRef] = trio.TASK_STATUS_IGNORED
) -> None:
    """Run one incarnation of the actor in ``cell`` (the supervised child's function)."""
    child = current_child()
    if child is not None:  # (a new child object after its domain restarted)
        cell.bind(child)
    if cell.closed:  # stopped for good before this incarnation could start
        task_status.started(cell.ref)
        return
    options = cell.options
    instance = options.factory(*options.args)
    if not isinstance(instance, Actor):
        raise TypeError(f"actor factory {options.factory!r} returned {instance!r}, not an Actor")
    previous = cell.incarnation
    incarnation = cell.begin(instance)
    ctx = incarnation.ctx
    try:
        # (A hook the actor does not override is the base class's no-op: not awaited.)
        if previous is not None and _defines(instance.on_restart, _NO_RESTART_HOOK):
            # The error that ended the previous incarnation: a restart caused by a
            # sibling's crash is told ``None``, not an old crash of its own.
            await instance.on_restart(ctx, previous.error)
        if _defines(instance.on_start, _NO_START_HOOK):
            await instance.on_start(ctx)
        task_status.started(cell.ref)
        del task_status  # (this frame lives as long as the actor: keep no starter object)
        # The message loop, inlined: one coroutine frame less per live actor.
        mailbox = cell.mailbox
        receive = mailbox.receive
        handler: Handler = instance.handle
        for layer in reversed(options.middleware):
            handler = _wrap(layer, handler)
        timeout = options.handler_timeout
        beat_every = options.heartbeat_interval
        if isinstance(mailbox, DurableMailbox):  # (decided per incarnation, not per message)
            await serve_durable(cell, incarnation, mailbox, handler, timeout, beat_every)
            return
        while True:
            try:
                if beat_every is None:
                    envelope = await receive.receive()
                else:
                    envelope = await receive_beating(receive, beat_every)
            except (trio.EndOfChannel, trio.ClosedResourceError):
                return  # the actor was stopped for good: its mailbox is closed
            incarnation.current = envelope
            if isinstance(envelope, ENVELOPES) or TRACEPARENT.get() is not None:
                message, trace = open_envelope(envelope)
            else:  # (open_envelope's common case, inline: a plain message, no trace)
                message, trace = envelope, None
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
                incarnation.current = IDLE
                cell.dead_letter(envelope, f"rejected: {exc}", exc)
                continue
            except Exception as exc:
                incarnation.current = IDLE
                mailbox.failed_one()
                incarnation.error = exc
                crashed = ActorCrashed(f"actor {cell.name!r} crashed handling the message")
                crashed.__cause__ = exc
                cell.dead_letter(envelope, f"crashed while handling it: {exc!r}", crashed)
                raise
            except BaseException:
                incarnation.current = IDLE
                error = interrupted(cell)
                if isinstance(error, ActorCrashed):  # failed from outside: hung, injected
                    mailbox.failed_one()
                    incarnation.error = error.__cause__
                    reason = f"crashed while handling it: {error.__cause__!r}"
                else:
                    reason = "stopped while handling it"
                cell.dead_letter(envelope, reason, error)
                raise
            finally:
                if trace is not None or TRACEPARENT.get() is not None:
                    restore_trace(trace)
            incarnation.current = IDLE
            mailbox.handled_one()
            if isinstance(envelope, Ask):
                envelope.reply.set_value(result)
    finally:
        # Without an on_stop of its own or children there is nothing to await here, so no
        # grace scope is opened (two cancel scopes saved on every stop).
        try:
            if _defines(instance.on_stop, _NO_STOP_HOOK):
                with shutdown_grace():
                    try:
                        await instance.on_stop(ctx)
                    except Exception:
                        logger.exception("on_stop of actor %s failed", cell.name)
        finally:
            # Even when on_stop overran its grace (Cancelled): children never outlive
            # their parent. Bounded by the children's own shutdown timeouts.
            ctx._ended = True
            if ctx._children is not None:
                with trio.CancelScope(shield=True):
                    await ctx._stop_children()


_NO_START_HOOK = Actor.on_start
_NO_STOP_HOOK = Actor.on_stop
_NO_RESTART_HOOK = Actor.on_restart


def _defines(hook: Callable[..., Awaitable[None]], base: Callable[..., Awaitable[None]]) -> bool:
    """Whether an actor's lifecycle ``hook`` is its own, not the base class's no-op
    (``base``): overridden in its class, or set on the instance."""
    return getattr(hook, "__func__", None) is not base


def interrupted(cell: ActorCell) -> ActorStopped | HandlingInterrupted | ActorCrashed:
    """The error for an ``ask`` whose message was being handled when the supervisor
    stopped the actor: a crash it was failed with (a hung handler's
    ``HeartbeatTimeout``, an injected failure), for good (stop, shutdown, a temporary
    actor), or to restart it (a sibling's crash under OneForAll / RestForOne, or its
    domain's supervisor giving up, after which the domain's parent restarts it)."""
    child = cell.child
    failure = None if child is None else child.failing_with
    if failure is not None:
        crashed = ActorCrashed(f"actor {cell.name!r} crashed handling the message: {failure}")
        crashed.__cause__ = failure
        return crashed
    if cell.closed or child is None or child.restart is Restart.TEMPORARY:
        return cell.stopped_error()
    state = child.supervisor.state
    domain = cell.domain
    failed = state is SupervisorState.FAILED
    domain_restarts = failed and domain is not None and domain.restartable
    if state is not SupervisorState.RUNNING and not domain_restarts:
        return cell.stopped_error()
    return HandlingInterrupted(
        f"actor {cell.name!r} was restarted by its supervisor while handling the message"
    )


async def receive_beating(receive: trio.MemoryReceiveChannel[Any], every: float) -> Any:
    """Receive the next message, sending a heartbeat every ``every`` seconds meanwhile
    (an idle actor is alive; only a handler can hang)."""
    while True:
        heartbeat()
        with trio.move_on_after(every):
            return await receive.receive()


def open_envelope(envelope: Any) -> tuple[Any, Token[str | None] | None]:
    """The message in ``envelope``, with the sender's trace context set for its handler
    (so the handler's spans join the sender's trace); undo it with
    :func:`restore_trace`. Setting a context variable copies the context, so it is
    skipped when there is no trace and none is set."""
    if isinstance(envelope, ENVELOPES):
        message = envelope.message
        traceparent = envelope.traceparent
    else:
        message, traceparent = envelope, None
    if traceparent is None and TRACEPARENT.get() is None:
        return message, None
    return message, TRACEPARENT.set(traceparent)


def restore_trace(trace: Token[str | None] | None) -> None:
    """Undo the handler's trace context: back to the one before it (``None``), also
    when the handler set one of its own and left it set."""
    if trace is not None:
        TRACEPARENT.reset(trace)
    elif TRACEPARENT.get() is not None:
        TRACEPARENT.set(None)


def _wrap(layer: MessageMiddleware, inner: Handler) -> Handler:
    async def handler(message: Any, ctx: ActorContext) -> Any:
        return await layer.run(message, ctx, inner)

    return handler
