"""``RemoteActorRef``: an actor on another node (or wherever its name is served),
with the same ``tell`` / ``tell_nowait`` / ``ask`` / ``statistics`` API as a local
:class:`~mister_smith.actors.ActorRef`."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import attrs
import nats.errors
import trio

from ..errors import ActorNotFound, AskTimeout
from ._errors import EnvelopeError, PayloadTooLarge, RemoteError
from ._failures import failure_error
from ._wire import Envelope, Kind

if TYPE_CHECKING:
    from ._node import Node


@attrs.frozen
class RemoteRefStatistics:
    """What this node sent to a remote actor and how it went (counted by the caller:
    the remote actor's own counters live on the node that runs it)."""

    name: str
    subject: str
    told: int
    asked: int
    replied: int
    failed: int
    """Asks answered with an error (crashed, stopped, rejected, ...)."""
    timeouts: int
    not_found: int
    """Asks nobody was serving (no responders)."""


class RemoteActorRef:
    """A handle on the actor a cluster serves under ``name``.

    ``tell`` publishes to the actor's subject (waiting for room in the node's outbound
    bound; core NATS is at most once, so a tell to a node that dies is lost, as a
    message to a crashing local actor would be dead-lettered). ``tell_nowait`` raises
    :class:`~mister_smith.errors.MailboxFull` at the outbound bound. ``ask`` is NATS
    request/reply with the *remaining* deadline sent along (``Ms-Deadline-Ms``), so the
    remote side drops the message or stops the handler once the caller has given up.

    Errors map onto the local types: ``ActorCrashed``, ``ActorStopped``, ``AskTimeout``,
    ``MailboxFull``; nobody serving the name is ``ActorNotFound`` (at once, not after the
    timeout); a connection that is down is
    :class:`~mister_smith.distributed.NatsUnavailable` (fail fast).

    The ref names a subject, not a node: when a singleton moves to another node, the
    same ref reaches it there.
    """

    __slots__ = (
        "_asked",
        "_failed",
        "_node",
        "_not_found",
        "_replied",
        "_timeouts",
        "_told",
        "name",
        "subject",
    )

    def __init__(self, node: Node, name: str, subject: str) -> None:
        self._node = node
        self.name = name
        self.subject = subject
        self._told = 0
        self._asked = 0
        self._replied = 0
        self._failed = 0
        self._timeouts = 0
        self._not_found = 0

    @property
    def is_alive(self) -> bool:
        """Whether the node can reach the cluster now (a remote actor's own liveness is
        learnt by asking it)."""
        return self._node.connected

    def _encode(
        self, kind: Kind, message: Any, deadline_ms: int | None
    ) -> tuple[bytes, dict[str, str]]:
        node = self._node
        tag, body = node.wire.encode(message)
        if len(body) > node.max_payload:
            raise PayloadTooLarge(
                f"a {type(message).__qualname__} for {self.name!r} encodes to {len(body)} "
                f"bytes (distributed.max_payload is {node.max_payload})"
            )
        envelope = Envelope(
            kind=kind,
            type_tag=tag,
            sender=node.name,
            deadline_ms=deadline_ms,
            traceparent=node.traceparent(),
        )
        return body, envelope.headers()

    async def tell(self, message: Any) -> None:
        """Send ``message``, waiting while the node's outbound bound is reached.

        Raises:
            NatsUnavailable: the connection is down.
            EnvelopeError: the message cannot cross the wire (type not registered, ...).
        """
        body, headers = self._encode(Kind.TELL, message, None)
        await self._node.bridge.publish(self.subject, body, headers=headers)
        self._told += 1

    def tell_nowait(self, message: Any) -> None:
        """Send ``message`` if the node's outbound bound has room.

        Raises:
            MailboxFull: the outbound bound is reached.
            NatsUnavailable: the connection is down.
            EnvelopeError: the message cannot cross the wire.
        """
        body, headers = self._encode(Kind.TELL, message, None)
        self._node.bridge.publish_nowait(self.subject, body, headers=headers)
        self._told += 1

    async def ask(self, message: Any, *, timeout: float | None = None) -> Any:
        """Send ``message`` and return the remote handler's reply.

        Args:
            message: The message (a registered attrs instance or plain JSON).
            timeout: Seconds (default: the node's actor system ``ask_timeout``); it
                covers the trip, the remote queueing and the handling.

        Raises:
            AskTimeout: no reply in time.
            ActorCrashed: handling it crashed the remote actor.
            ActorStopped: the remote actor stopped before handling it.
            ActorNotFound: no node serves this name.
            NatsUnavailable: the connection is down (fail fast).
            EnvelopeError: the message or the reply cannot cross the wire.
        """
        node = self._node
        if timeout is None:
            timeout = node.ask_timeout
        if not timeout >= 0:
            raise ValueError(f"ask timeout must be >= 0, got {timeout!r}")
        deadline = trio.current_time() + timeout
        remaining_ms = min(int(timeout * 1000), 999_999_999_999) if math.isfinite(timeout) else None
        body, headers = self._encode(Kind.ASK, message, remaining_ms)
        self._asked += 1
        reply = None
        with trio.move_on_at(deadline):
            try:
                reply = await node.bridge.request(
                    self.subject, body, headers=headers, timeout=max(timeout, 0.001)
                )
            except nats.errors.NoRespondersError:
                self._not_found += 1
                raise ActorNotFound(f"no node serves actor {self.name!r}") from None
            except nats.errors.TimeoutError:
                pass  # reported as AskTimeout below
        if reply is None:
            self._timeouts += 1
            raise AskTimeout(
                f"no reply from remote actor {self.name!r} within {timeout} s"
                if math.isfinite(timeout)
                else f"no reply from remote actor {self.name!r}"
            )
        try:
            envelope = Envelope.from_headers(reply.headers)
            value = node.wire.decode(envelope.type_tag, reply.data)
        except EnvelopeError as exc:
            self._failed += 1
            raise EnvelopeError(
                f"the reply of remote actor {self.name!r} is unusable: {exc}"
            ) from exc
        if envelope.kind is Kind.ERROR:
            self._failed += 1
            raise failure_error(value, self.name)
        if envelope.kind is not Kind.REPLY:
            self._failed += 1
            raise RemoteError(f"remote actor {self.name!r} answered with a {envelope.kind.value}")
        self._replied += 1
        return value

    def statistics(self) -> RemoteRefStatistics:
        """This node's counters for the remote actor."""
        return RemoteRefStatistics(
            name=self.name,
            subject=self.subject,
            told=self._told,
            asked=self._asked,
            replied=self._replied,
            failed=self._failed,
            timeouts=self._timeouts,
            not_found=self._not_found,
        )

    def __hash__(self) -> int:
        return hash(self.subject)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RemoteActorRef) and other.subject == self.subject

    def __repr__(self) -> str:
        return f"<RemoteActorRef {self.name} via {self.subject}>"

    def __str__(self) -> str:
        return self.name
