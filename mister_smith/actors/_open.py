"""``open_actor_system``: a standalone actor system with its own supervisor."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from ..events import EventBus
from ..persistence import DEFAULT_CODEC, Codec, Store
from ..supervision import Backoff, Restart, RestartLimit, open_supervisor
from ..types import IdentityAuthority
from ._durable import DurableMailboxes
from ._loop import MessageMiddleware
from ._system import DURABLE_CHILD, ActorSystem


@asynccontextmanager
async def open_actor_system(
    *,
    events: EventBus | None = None,
    name: str = "actors",
    mailbox_capacity: int = 1000,
    ask_timeout: float = 30.0,
    dead_letter_log_size: int = 1000,
    middleware: Sequence[MessageMiddleware] = (),
    max_restarts: int = 3,
    restart_window: float = 60.0,
    shutdown_timeout: float = 5.0,
    backoff: Backoff | None = None,
    max_actors: int | None = None,
    max_children_per_supervisor: int | None = None,
    identities: IdentityAuthority | None = None,
    store: Store | None = None,
    codec: Codec = DEFAULT_CODEC,
) -> AsyncIterator[ActorSystem]:
    """Open an actor system with its own supervisor; stop every actor on exit.

    Each actor may be restarted ``max_restarts`` times within ``restart_window``
    seconds (its own budget, with ``backoff`` between restarts); one more crash stops it
    for good, and the system goes on. Actors whose mailboxes are not empty at shutdown
    have their messages recorded as dead letters (reason: shut down).

    With ``store``, actors spawned with ``durable=True`` keep their mailboxes in it
    (messages encoded with ``codec``); the store stays open after the system closes
    (its owner closes it), and the messages durable actors left queued at shutdown stay
    pending there for the next run.
    """
    durable = None if store is None else DurableMailboxes.over(store, codec)
    limit = RestartLimit(max_restarts, restart_window)
    bus = EventBus() if events is None else events
    async with open_supervisor(
        name,
        events=bus,
        max_restarts=None,
        child_limit=limit,
        backoff=backoff,
        shutdown_timeout=shutdown_timeout,
        keep_alive=True,
    ) as supervisor:
        if durable is not None:  # started first, so it stops after every actor
            await supervisor.start_child(
                durable.serve, name=DURABLE_CHILD, restart=Restart.PERMANENT
            )
        system = ActorSystem(
            supervisor,
            bus,
            mailbox_capacity=mailbox_capacity,
            ask_timeout=ask_timeout,
            dead_letter_log_size=dead_letter_log_size,
            middleware=middleware,
            restart_limit=limit,
            backoff=backoff,
            max_actors=max_actors,
            max_children_per_supervisor=max_children_per_supervisor,
            identities=identities,
            durable=durable,
        )
        yield system
        await system.shutdown()
