"""Errors of the distributed layer (kinds from :mod:`mister_smith.errors`).

::

    NetworkError
    ├── NatsUnavailable (CircuitOpenError)   the connection is down: fail fast
    ├── BridgeClosed                         the client gave up: the child crashes
    └── RemoteError                          the remote side failed in a way with no
                                             local counterpart
    ActorError
    ├── EnvelopeError (ValueError)           a message cannot cross the wire
    │   ├── UnknownMessageType (LookupError) its type tag is not registered here
    │   └── PayloadTooLarge                  it exceeds the byte bound
    └── (ActorCrashed, ActorStopped, AskTimeout, ActorNotFound, MailboxFull: the
         local types remote failures map onto)
    ResourceError
    └── LeaseLost                            a singleton's lease went to another node
"""

from __future__ import annotations

from ..errors import (
    ActorError,
    CircuitOpenError,
    ErrorSeverity,
    NetworkError,
    RecoveryStrategy,
    ResourceError,
)


class NatsUnavailable(CircuitOpenError):
    """The node's connection to NATS is down (connecting, reconnecting, restarting or
    closed): remote calls fail at once instead of waiting out their timeout.

    It is a :class:`~mister_smith.errors.CircuitOpenError`: retry after
    :attr:`retry_at` (the Trio-clock time at which the connection may be back).
    """


class BridgeClosed(NetworkError):
    """The NATS client gave up (its reconnect attempts are spent) or never connected.

    Raised inside the supervised connection child, so supervision restarts it with
    backoff (``Restart`` recovery: a fresh client on a fresh asyncio loop).
    """

    default_severity = ErrorSeverity.HIGH
    default_recovery = RecoveryStrategy.Restart()


class RemoteError(NetworkError):
    """The remote node answered with an error that has no local counterpart (e.g. the
    reply could not be encoded there); the remote text is in the message."""


class EnvelopeError(ActorError, ValueError):
    """A message cannot cross the wire: its payload does not match its registered type,
    is not JSON, or its headers are malformed. The text names what was wrong."""


class UnknownMessageType(EnvelopeError, LookupError):
    """The message's type (or its wire tag) is not registered with the wire format.

    Only registered attrs classes and plain JSON values cross the wire; anything else is
    refused on the sending side and dead-lettered on the receiving side."""


class PayloadTooLarge(EnvelopeError):
    """The encoded message exceeds the wire format's byte bound (or the bridge's whole
    outbound bound), so it was not sent."""


class LeaseLost(ResourceError):
    """A singleton's placement lease was taken by another node (this node was cut off
    longer than the lease TTL); the local instance is stopped."""
