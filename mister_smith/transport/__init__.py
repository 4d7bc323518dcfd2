"""Transport: routing messages to groups of actors by load, capability, key or priority."""

from ._bus import MessageBus as MessageBus
from ._bus import MessageBusStatistics as MessageBusStatistics
from ._bus import open_message_bus as open_message_bus
from ._members import LoadIndex as LoadIndex
from ._members import Members as Members
from ._message import Routed as Routed
from ._message import message_key as message_key
from ._message import message_priority as message_priority
from ._message import message_requirements as message_requirements
from ._strategies import CapabilityBasedRouting as CapabilityBasedRouting
from ._strategies import ConsistentHashRouting as ConsistentHashRouting
from ._strategies import LoadBalancedRouting as LoadBalancedRouting
from ._strategies import PriorityRouting as PriorityRouting
from ._strategies import PriorityScheduler as PriorityScheduler
from ._strategies import RoundRobinRouting as RoundRobinRouting
from ._strategies import RoutingPriority as RoutingPriority
from ._strategies import RoutingStrategy as RoutingStrategy
from ._strategies import least_loaded as least_loaded

__all__ = [
    "LoadIndex",
    "Members",
    "CapabilityBasedRouting",
    "ConsistentHashRouting",
    "LoadBalancedRouting",
    "MessageBus",
    "MessageBusStatistics",
    "PriorityRouting",
    "PriorityScheduler",
    "RoundRobinRouting",
    "Routed",
    "RoutingPriority",
    "RoutingStrategy",
    "least_loaded",
    "message_key",
    "message_priority",
    "message_requirements",
    "open_message_bus",
]
