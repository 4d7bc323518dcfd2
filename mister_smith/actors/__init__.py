"""Actors: supervised mailboxes with refs, an actor system and bounded spawning."""

from ._actor import Actor as Actor
from ._actor import ActorContext as ActorContext
from ._cell import ActorOptions as ActorOptions
from ._cell import ActorStatistics as ActorStatistics
from ._cell import ActorStatus as ActorStatus
from ._dead_letters import DeadLetterRecord as DeadLetterRecord
from ._delegation import Delegated as Delegated
from ._domain import ActorDomain as ActorDomain
from ._durable import DurableMailbox as DurableMailbox
from ._durable import DurableMailboxes as DurableMailboxes
from ._durable_ref import DurableActorRef as DurableActorRef
from ._loop import MessageMiddleware as MessageMiddleware
from ._mailbox import Counters as Counters
from ._mailbox import Mailbox as Mailbox
from ._mailbox import MailboxStatistics as MailboxStatistics
from ._open import open_actor_system as open_actor_system
from ._ref import ActorRef as ActorRef
from ._spawn import SpawnController as SpawnController
from ._spawn import SpawnStatistics as SpawnStatistics
from ._system import ActorSystem as ActorSystem
from ._system import ActorSystemStatistics as ActorSystemStatistics

__all__ = [
    "Actor",
    "ActorContext",
    "ActorDomain",
    "ActorRef",
    "ActorStatistics",
    "ActorStatus",
    "ActorSystem",
    "ActorSystemStatistics",
    "DeadLetterRecord",
    "Delegated",
    "DurableActorRef",
    "DurableMailbox",
    "DurableMailboxes",
    "ActorOptions",
    "Counters",
    "Mailbox",
    "MailboxStatistics",
    "MessageMiddleware",
    "SpawnController",
    "SpawnStatistics",
    "open_actor_system",
]
