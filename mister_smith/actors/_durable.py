"""Durable mailboxes: what an actor spawned with ``durable=True`` keeps in a store.

Follows the recipe of :mod:`mister_smith.persistence`: ``tell`` appends the encoded
message to the store under the actor's name (with a message id) and returns once that
committed; the message then travels through the in-memory mailbox as a
:class:`Durable` item carrying its ``seq``. After the handler finished, the actor's loop
settles it (``ack``); a message dropped for good (its actor stopped, its restart budget
spent, a crash on it, refused by middleware) is settled as a dead letter with the reason.
At system shutdown the queued messages are left pending, and the next ``spawn`` of the
same name (in this or a later process) replays them first, oldest first.

Settling is not on the handler's path: the loop hands ``(mailbox, seq)`` to
:class:`DurableMailboxes`, whose settler commits whatever is waiting in rounds (one
``ack_many`` per mailbox, so a round of acks is one operation in the store's group
commit, next to the senders' appends). A crash before a settle
committed means a redelivery: delivery is at-least-once.
"""

from __future__ import annotations

import collections
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import attrs
import trio

from ..errors import DurabilityUnavailable, PersistenceError
from ..persistence import DEFAULT_CODEC, MAX_READ_LIMIT, Codec, Store
from ._mailbox import Mailbox

logger = logging.getLogger("mister_smith.actors")

SETTLE_BACKLOG = 4096
"""Settles waiting at most before a handling loop waits for the settlers."""

DRAIN_GRACE = 10.0
"""Seconds the settlers have at shutdown to commit what is still waiting."""


@attrs.define(eq=False, slots=True)
class Durable:
    """A message in a durable mailbox: the envelope (a message, ``Ask`` or ``Traced``)
    and where the store keeps it."""

    envelope: Any
    seq: int
    message_id: str | None


class DurableMailbox(Mailbox):
    """A mailbox whose messages are kept in a store: the channel plus the backlog replayed
    at spawn (handled before the channel, so replayed messages come first)."""

    __slots__ = ("backlog", "duplicates")

    def __init__(self, capacity: int) -> None:
        super().__init__(capacity)
        self.backlog: collections.deque[Durable] = collections.deque()
        self.duplicates = 0
        """Sends recognised as duplicates by the store (not delivered again)."""

    def queued(self) -> int:
        """Messages waiting: the replayed backlog plus the channel."""
        return len(self.backlog) + self.send.statistics().current_buffer_used

    def close(self) -> list[Any]:
        """Close both ends and return what was waiting (backlog first)."""
        left: list[Any] = list(self.backlog)
        self.backlog.clear()
        left.extend(super().close())
        return left


class DurableMailboxes:
    """The actor system's side of a store: opens it when first needed, encodes with
    ``codec``, and settles handled or dropped messages in the background.

    Run :meth:`serve` as a task (the runtime runs it as the root's ``persistence``
    child, started before the actors so it stops after them). It opens the store only
    when :meth:`store` is first awaited, so a runtime that never spawns a durable actor
    creates no file; on exit it commits the settles still waiting (within
    :data:`DRAIN_GRACE`) and closes the store.

    Args:
        open_store: Opens the store (an async context manager), e.g.
            ``functools.partial(open_sqlite_store, settings)``.
        codec: Encodes messages (default: :data:`~mister_smith.persistence.DEFAULT_CODEC`).
    """

    def __init__(
        self,
        open_store: Callable[[], AbstractAsyncContextManager[Store]],
        codec: Codec = DEFAULT_CODEC,
    ) -> None:
        self.codec = codec
        self._open_store = open_store
        self._store: Store | None = None
        self._serving = False
        self._wanted = trio.Event()
        self._ready = trio.Event()
        self._failure: BaseException | None = None
        self._settles: collections.deque[tuple[str, int, str | None]] = collections.deque()
        self._running = 0
        self._work = trio.lowlevel.ParkingLot()
        self._idle = trio.lowlevel.ParkingLot()
        self._room = trio.lowlevel.ParkingLot()
        self.settled = 0
        """Settles committed (acks and dead letters)."""
        self.settle_failures = 0
        """Settles that failed (the message stays pending: it is redelivered later)."""

    @classmethod
    def over(cls, store: Store, codec: Codec = DEFAULT_CODEC) -> DurableMailboxes:
        """Durable mailboxes on a store someone else opened (and will close)."""

        @asynccontextmanager
        async def borrowed() -> AsyncIterator[Store]:
            yield store

        return cls(borrowed, codec)

    # -- the store ----------------------------------------------------------------------

    async def store(self) -> Store:
        """The open store, opening it on first use.

        Raises:
            DurabilityUnavailable: :meth:`serve` is not running (never started, or the
                system stopped), or the store could not be opened (the cause is
                attached; a later call tries again).
        """
        store = self._store
        if store is not None:
            await trio.lowlevel.checkpoint()
            return store
        if not self._serving:
            raise DurabilityUnavailable(
                "no store is being served for durable actors (DurableMailboxes.serve is "
                "not running: never started, or the system stopped)"
            )
        self._wanted.set()
        ready = self._ready
        await ready.wait()
        if self._store is None:
            failure = self._failure
            if failure is None:
                raise DurabilityUnavailable("the store for durable actors was closed")
            raise DurabilityUnavailable(
                f"the store for durable actors could not be opened: {failure}"
            ) from failure
        return self._store

    @property
    def current(self) -> Store | None:
        """The store if it is open now (no waiting), else ``None``."""
        return self._store

    @property
    def is_open(self) -> bool:
        """Whether the store is open (a durable actor was spawned)."""
        return self._store is not None

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Open the store when first wanted, settle messages, close it on cancellation."""
        if self._serving:
            raise RuntimeError("DurableMailboxes.serve is already running")
        self._serving = True
        self._failure = None
        try:
            task_status.started()
            while True:
                await self._wanted.wait()
                try:
                    async with self._open_store() as store:
                        self._store = store
                        self._ready.set()
                        try:
                            await self._settle(store)
                        finally:
                            with trio.CancelScope(shield=True), trio.move_on_after(DRAIN_GRACE):
                                await self._drain(store)
                            self._store = None
                except PersistenceError as exc:
                    if self._ready.is_set():  # it failed while open: a real failure
                        raise
                    # Opening failed: tell the waiters, and try again when asked again.
                    logger.error("durable mailboxes: the store cannot be opened: %s", exc)  # noqa: TRY400
                    self._failure = exc
                    self._ready.set()
                    self._wanted = trio.Event()
                    self._ready = trio.Event()
        finally:
            self._serving = False
            self._store = None
            ready = self._ready
            self._wanted = trio.Event()
            self._ready = trio.Event()
            ready.set()

    # -- settling -----------------------------------------------------------------------

    def ack(self, mailbox: str, seq: int) -> None:
        """Settle ``seq`` of ``mailbox`` as handled (committed in the background)."""
        self._settles.append((mailbox, seq, None))
        self._work.unpark()

    def dead_letter(self, mailbox: str, seq: int, reason: str) -> None:
        """Settle ``seq`` of ``mailbox`` as a dead letter (committed in the background)."""
        self._settles.append((mailbox, seq, reason or "dead letter"))
        self._work.unpark()

    @property
    def waiting(self) -> int:
        """Settles not committed yet."""
        return len(self._settles) + self._running

    @property
    def backlogged(self) -> bool:
        """Too many settles are waiting: handling loops should :meth:`wait_room`."""
        return len(self._settles) > SETTLE_BACKLOG and self._store is not None

    async def wait_room(self) -> None:
        """Wait while too many settles are waiting (backpressure on handling loops)."""
        if len(self._settles) > SETTLE_BACKLOG and self._store is not None:
            await self._room.park()
        else:
            await trio.lowlevel.checkpoint()

    async def wait_settled(self) -> None:
        """Wait until every settle handed over so far has been committed (or failed)."""
        while self.waiting and self._store is not None:
            await self._idle.park()
        await trio.lowlevel.checkpoint()

    async def _settle(self, store: Store) -> None:
        while True:
            if not self._settles:
                self._idle.unpark_all()
                await self._work.park()
                continue
            await self._commit_round(store)

    async def _drain(self, store: Store) -> None:
        while self._settles:
            await self._commit_round(store)
        self._idle.unpark_all()
        self._room.unpark_all()

    async def _commit_round(self, store: Store) -> None:
        """Commit every settle waiting now, together: the acks of a mailbox as one
        ``ack_many`` (in chunks), each dead letter on its own, all at once so the
        store's group commit puts them in one transaction."""
        settles = self._settles
        taken = list(settles)
        settles.clear()
        self._running = len(taken)
        acks: dict[str, list[int]] = {}
        dead: list[tuple[str, int, str]] = []
        for mailbox, seq, reason in taken:
            if reason is None:
                acks.setdefault(mailbox, []).append(seq)
            else:
                dead.append((mailbox, seq, reason))
        try:
            # A round is one transaction: let it finish even when the service is being
            # cancelled (what it took is no longer queued), within the drain's grace.
            with trio.CancelScope(shield=True, deadline=trio.current_time() + DRAIN_GRACE):
                await self._commit(store, acks, dead)
        finally:
            self._running = 0
            if len(settles) <= SETTLE_BACKLOG // 2:
                self._room.unpark_all()

    async def _commit(
        self, store: Store, acks: dict[str, list[int]], dead: list[tuple[str, int, str]]
    ) -> None:
        try:
            async with trio.open_nursery() as nursery:
                for mailbox, seqs in acks.items():
                    for first in range(0, len(seqs), MAX_READ_LIMIT):
                        chunk = seqs[first : first + MAX_READ_LIMIT]
                        nursery.start_soon(self._ack_chunk, store, mailbox, chunk)
                for mailbox, seq, reason in dead:
                    nursery.start_soon(self._dead_letter_one, store, mailbox, seq, reason)
        except trio.Cancelled:  # the grace ran out: those not committed stay pending
            logger.warning("durable mailboxes: settles not committed within %s s", DRAIN_GRACE)
            raise

    async def _ack_chunk(self, store: Store, mailbox: str, seqs: list[int]) -> None:
        try:
            await store.ack_many(mailbox, seqs)
            self.settled += len(seqs)
        except PersistenceError as exc:
            self.settle_failures += len(seqs)
            logger.warning("durable mailbox %s: %d acks not committed: %s", mailbox, len(seqs), exc)

    async def _dead_letter_one(self, store: Store, mailbox: str, seq: int, reason: str) -> None:
        try:
            await store.dead_letter(mailbox, seq, reason)
            self.settled += 1
        except PersistenceError as exc:
            self.settle_failures += 1
            logger.warning(
                "durable mailbox %s: message %d not dead-lettered: %s", mailbox, seq, exc
            )
