"""``DistributedSettings``: how a node joins a cluster over NATS (the ``distributed``
section; used by :func:`mister_smith.distributed.open_node`)."""

import attrs

from ._checks import Check, duration, integer, text
from ._duration import Seconds, to_seconds

_TOKEN = r"[A-Za-z0-9_-]{1,128}"
_TOKEN_TEXT = "1-128 letters, digits, '_' or '-' (one NATS subject token)"


def _at_least_one_second(value: object) -> str | None:
    reason = duration(positive=True).reason(value)
    if reason is None and isinstance(value, float) and value < 1.0:
        return "must be a duration >= 1 second"
    return reason


@attrs.frozen
class DistributedSettings:
    """A node of a cluster on NATS.

    Attributes:
        nats_url: The NATS server to connect to (``nats://host:port``).
        cluster: The cluster's name: its subjects start ``ms.<cluster>.`` and its KV
            buckets ``ms_<cluster>_``, so clusters sharing a server never meet.
        node_name: This node's name, unique in the cluster (empty: derived from the
            host name and process id at start).
        registry_ttl: Seconds a registry entry or a singleton lease lives after its
            node's last refresh (nodes refresh every third of it); a dead node's
            singletons move after about this long. >= 1.
        outbound_bytes: Bytes of publishes waiting for the NATS client at most: past
            it ``tell`` waits and ``tell_nowait`` raises ``MailboxFull``. >= 1024.
        inbound_capacity: Messages each served actor's subscription buffers before
            new ones are dropped (and counted). >= 1.
        connect_timeout: Seconds for the first connection. > 0.
        reconnect_wait: Seconds between reconnect attempts. > 0.
        max_reconnect_attempts: Reconnect attempts before the client gives up; the
            connection child then crashes and is restarted with backoff. >= 1.
        max_payload: Bytes of one encoded message at most. >= 1.
    """

    nats_url: str = attrs.field(
        default="nats://127.0.0.1:4222",
        validator=text(r"(nats|tls)://[^\s]+", "a nats:// or tls:// URL"),
    )
    cluster: str = attrs.field(default="default", validator=text(_TOKEN, _TOKEN_TEXT))
    node_name: str = attrs.field(default="", validator=text(f"(|{_TOKEN})", _TOKEN_TEXT))
    registry_ttl: Seconds = attrs.field(
        default=10.0, converter=to_seconds, validator=Check(_at_least_one_second)
    )
    outbound_bytes: int = attrs.field(default=8 * 1024 * 1024, validator=integer(minimum=1024))
    inbound_capacity: int = attrs.field(default=1000, validator=integer(minimum=1))
    connect_timeout: Seconds = attrs.field(
        default=2.0, converter=to_seconds, validator=duration(positive=True)
    )
    reconnect_wait: Seconds = attrs.field(
        default=0.5, converter=to_seconds, validator=duration(positive=True)
    )
    max_reconnect_attempts: int = attrs.field(default=60, validator=integer(minimum=1))
    max_payload: int = attrs.field(default=1024 * 1024, validator=integer(minimum=1))
