"""``SQLiteStore``: the embedded store, one SQLite file in WAL mode, one writer thread.

Why stdlib ``sqlite3`` behind ``trio.to_thread.run_sync`` rather than an async driver:
aiosqlite is asyncio-only, and the AnyIO bridges (anyio-sqlite, anysqlite3) are young
packages with few users; all of them run each call on a thread, one call at a time,
so they add a dependency without removing a hop. What makes a durable mailbox fast is
committing many callers' writes in one transaction, which needs a writer that sees the
whole queue: :class:`GroupCommit` is that writer, in about a hundred lines of Trio, with
the cancellation semantics we want (a cancelled call wrote nothing; a returned one
committed).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import cast

import trio

from ..config import PersistenceSettings
from ..errors import InvalidStoreRequest
from ._group_commit import GroupCommit
from ._records import (
    Appended,
    Checkpoint,
    JournalEntry,
    StoredDeadLetter,
    StoredMessage,
    StoreStatistics,
)
from ._requests import (
    AckManyRequest,
    AckRequest,
    AppendManyRequest,
    AppendRequest,
    CheckpointKeysQuery,
    DeadLetterRequest,
    DeadLettersQuery,
    DeleteCheckpoint,
    GetCheckpoint,
    JournalAppend,
    JournalReplay,
    MailboxesQuery,
    PendingQuery,
    PutCheckpoint,
    Request,
)
from ._sqlite_schema import store_path
from ._sqlite_writer import SQLiteWriter
from ._store import DEFAULT_READ_LIMIT, MAX_READ_LIMIT
from ._validation import (
    check_after,
    check_entries,
    check_ids,
    check_limit,
    check_name,
    check_payload,
    check_prefix,
    check_reason,
    check_seq,
    check_since,
    check_version,
)


class SQLiteStore:
    """The embedded :class:`~mister_smith.persistence.Store`: a file, no server.

    Open one with :func:`open_sqlite_store`; every method follows the ``Store``
    contract. Durability: a returned operation survives the process being killed
    (``synchronous="normal"``) or, with ``synchronous="full"``, a power cut too.
    """

    def __init__(
        self,
        writer: SQLiteWriter,
        settings: PersistenceSettings,
        limiter: trio.CapacityLimiter,
    ) -> None:
        self._writer = writer
        self._settings = settings
        self._limiter = limiter
        self._max_bytes = settings.max_record_bytes
        self.path = str(store_path(settings))
        """The absolute path of the store file."""
        self._commits: GroupCommit[Request] = GroupCommit(
            writer.run_batch,
            batch_max=settings.batch_max,
            limiter=limiter,
            name=f"the store {self.path!r}",
        )

    @property
    def synchronous(self) -> str:
        """The commit durability SQLite confirmed when the file was opened:
        ``"normal"`` (survives the process being killed) or ``"full"`` (survives a
        power cut too)."""
        return self._writer.synchronous

    @property
    def settings(self) -> PersistenceSettings:
        """The settings the store was opened with."""
        return self._settings

    # -- durable mailboxes ------------------------------------------------------------

    async def append(
        self, mailbox: str, payload: bytes, *, message_id: str | None = None
    ) -> Appended:
        """See :meth:`Store.append <mister_smith.persistence.Store.append>`."""
        check_name(mailbox, "mailbox")
        check_payload(payload, "payload", self._max_bytes)
        if message_id is not None:
            check_name(message_id, "message_id")
        return cast(
            Appended, await self._commits.submit(AppendRequest(mailbox, payload, message_id))
        )

    async def append_many(
        self,
        mailbox: str,
        payloads: list[bytes],
        *,
        message_ids: list[str | None] | None = None,
    ) -> list[Appended]:
        """See :meth:`Store.append_many <mister_smith.persistence.Store.append_many>`."""
        check_name(mailbox, "mailbox")
        entries = check_entries(payloads, self._max_bytes, what="payloads")
        ids = check_ids(message_ids, len(entries))
        if not entries:
            await trio.lowlevel.checkpoint()
            return []
        request = AppendManyRequest(mailbox, entries, ids)
        return cast(list[Appended], await self._commits.submit(request))

    async def ack(self, mailbox: str, seq: int) -> bool:
        """See :meth:`Store.ack <mister_smith.persistence.Store.ack>`."""
        request = AckRequest(check_name(mailbox, "mailbox"), check_seq(seq))
        return cast(bool, await self._commits.submit(request))

    async def ack_many(self, mailbox: str, seqs: list[int]) -> list[bool]:
        """See :meth:`Store.ack_many <mister_smith.persistence.Store.ack_many>`."""
        check_name(mailbox, "mailbox")
        if not isinstance(seqs, list | tuple):
            raise InvalidStoreRequest(f"seqs must be a list of integers, got {type(seqs).__name__}")
        if len(seqs) > MAX_READ_LIMIT:
            raise InvalidStoreRequest(f"at most {MAX_READ_LIMIT} seqs per call, got {len(seqs)}")
        checked = [check_seq(seq, f"seqs[{index}]") for index, seq in enumerate(seqs)]
        if not checked:
            await trio.lowlevel.checkpoint()
            return []
        return cast(list[bool], await self._commits.submit(AckManyRequest(mailbox, checked)))

    async def dead_letter(self, mailbox: str, seq: int, reason: str) -> bool:
        """See :meth:`Store.dead_letter <mister_smith.persistence.Store.dead_letter>`."""
        request = DeadLetterRequest(
            check_name(mailbox, "mailbox"), check_seq(seq), check_reason(reason)
        )
        return cast(bool, await self._commits.submit(request))

    async def pending(
        self, mailbox: str, *, after: int = 0, limit: int = DEFAULT_READ_LIMIT
    ) -> list[StoredMessage]:
        """See :meth:`Store.pending <mister_smith.persistence.Store.pending>`."""
        request = PendingQuery(
            check_name(mailbox, "mailbox"), check_after(after), check_limit(limit)
        )
        return cast(list[StoredMessage], await self._commits.submit(request))

    async def mailboxes(self) -> list[str]:
        """See :meth:`Store.mailboxes <mister_smith.persistence.Store.mailboxes>`."""
        return cast(list[str], await self._commits.submit(MailboxesQuery(MAX_READ_LIMIT)))

    async def dead_letters(
        self, mailbox: str, *, after: int = 0, limit: int = DEFAULT_READ_LIMIT
    ) -> list[StoredDeadLetter]:
        """See :meth:`Store.dead_letters <mister_smith.persistence.Store.dead_letters>`."""
        request = DeadLettersQuery(
            check_name(mailbox, "mailbox"), check_after(after), check_limit(limit)
        )
        return cast(list[StoredDeadLetter], await self._commits.submit(request))

    # -- checkpoints ------------------------------------------------------------------

    async def put_checkpoint(
        self, key: str, data: bytes, *, expected_version: int | None = None
    ) -> Checkpoint:
        """See :meth:`Store.put_checkpoint <mister_smith.persistence.Store.put_checkpoint>`."""
        request = PutCheckpoint(
            check_name(key, "key"),
            check_payload(data, "checkpoint data", self._max_bytes),
            check_version(expected_version),
        )
        return cast(Checkpoint, await self._commits.submit(request))

    async def get_checkpoint(self, key: str) -> Checkpoint | None:
        """See :meth:`Store.get_checkpoint <mister_smith.persistence.Store.get_checkpoint>`."""
        request = GetCheckpoint(check_name(key, "key"))
        return cast(Checkpoint | None, await self._commits.submit(request))

    async def delete_checkpoint(self, key: str, *, expected_version: int | None = None) -> bool:
        """See :meth:`Store.delete_checkpoint
        <mister_smith.persistence.Store.delete_checkpoint>`."""
        request = DeleteCheckpoint(check_name(key, "key"), check_version(expected_version))
        return cast(bool, await self._commits.submit(request))

    async def checkpoint_keys(self, prefix: str = "") -> list[str]:
        """See :meth:`Store.checkpoint_keys <mister_smith.persistence.Store.checkpoint_keys>`."""
        request = CheckpointKeysQuery(check_prefix(prefix), MAX_READ_LIMIT)
        return cast(list[str], await self._commits.submit(request))

    # -- journal ----------------------------------------------------------------------

    async def journal_append(self, stream: str, entries: list[bytes]) -> list[int]:
        """See :meth:`Store.journal_append <mister_smith.persistence.Store.journal_append>`."""
        request = JournalAppend(
            check_name(stream, "stream"), check_entries(entries, self._max_bytes)
        )
        if not request.entries:
            await trio.lowlevel.checkpoint()
            return []
        return cast(list[int], await self._commits.submit(request))

    async def journal_replay(
        self,
        stream: str,
        *,
        since: float | None = None,
        after: int = 0,
        limit: int = DEFAULT_READ_LIMIT,
    ) -> list[JournalEntry]:
        """See :meth:`Store.journal_replay <mister_smith.persistence.Store.journal_replay>`."""
        request = JournalReplay(
            check_name(stream, "stream"), check_since(since), check_after(after), check_limit(limit)
        )
        return cast(list[JournalEntry], await self._commits.submit(request))

    # -- lifecycle --------------------------------------------------------------------

    def statistics(self) -> StoreStatistics:
        """See :meth:`Store.statistics <mister_smith.persistence.Store.statistics>`."""
        return self._writer.statistics(self._commits.queued)

    async def aclose(self) -> None:
        """Commit what is queued, refuse what comes later, and close the file
        (idempotent). The file lock is released when this returns."""
        self._commits.close()
        await self._commits.wait_finished()
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(self._writer.close, limiter=self._limiter)

    async def _serve(self) -> None:
        await self._commits.run()


@asynccontextmanager
async def open_sqlite_store(
    settings: PersistenceSettings | None = None,
    *,
    clock: Callable[[], float] = time.time,
) -> AsyncIterator[SQLiteStore]:
    """Open the embedded store ``settings.path`` names for the body of the block.

    ``async with open_sqlite_store(config.persistence) as store:`` opens (or creates)
    the file on the writer thread, runs the committer in a nursery of its own, and on
    exit commits what is queued and closes the file. Messages appended and not acked
    in an earlier run are there to replay (:meth:`SQLiteStore.pending`).

    Args:
        settings: The ``persistence`` section (defaults: ``PersistenceSettings()``).
        clock: Store time: wall-clock seconds since the epoch by default. Retention and
            the receive window are measured on it; tests pass a settable clock.

    Raises:
        StoreLocked: another process has the file open.
        StoreCorrupted: the file is not a store this version reads.
        StoreUnavailable: the file cannot be created or opened.
    """
    settings = PersistenceSettings() if settings is None else settings
    limiter = trio.CapacityLimiter(1)
    writer = await trio.to_thread.run_sync(SQLiteWriter.open, settings, clock, limiter=limiter)
    store = SQLiteStore(writer, settings, limiter)
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(store._serve, name=f"store committer {store.path}")
            try:
                yield store
            finally:
                store._commits.close()
    finally:
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(writer.close, limiter=limiter)
