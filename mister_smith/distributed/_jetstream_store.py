"""``JetStreamStore``: the persistence ``Store`` over NATS JetStream, through the bridge.

The same contract as the embedded SQLite store (the conformance suite checks both), laid
out the way a careful NATS user would:

* **Mailboxes** are one stream (``MS_<prefix>_MBOX``, subject ``ms.<prefix>.mbox.<name>``)
  holding exactly the pending messages: a message's stream sequence is its ``seq``
  (store-wide increasing, never reused); settling it deletes it from the stream. Every
  publish carries ``Nats-Expected-Last-Sequence`` (order kept, a second writer refused)
  and a fresh ``Nats-Msg-Id`` (a publish resent after a lost ack is stored once).
* **Settlements** of messages with an id go to ``MS_<prefix>_SETTLED`` before the
  message is deleted, so the idempotent receive window survives a reopen; dead letters
  (payload, reason) go to ``MS_<prefix>_DEAD``. Both are pruned by the store's own
  retention (window, capacities, ages) with per-message deletes.
* **Checkpoints** are values in the KV bucket ``MS_<prefix>_CKPT`` written with
  revision-based compare-and-set; one larger than a NATS message is written as chunks
  to ``MS_<prefix>_CKDATA`` first, and the KV value (the commit point) names them, so a
  checkpoint is never torn.
* **Journal** entries are ``MS_<prefix>_JOURNAL`` messages (``max_msgs`` bounds the
  stream on the server; ages are applied on the store's clock and purged).

One store object writes a prefix at a time (as one process holds a SQLite file), held by
a lease in the KV bucket ``MS_<prefix>_LEASE`` (:class:`StoreLease`); it keeps an index
of the streams' headers in memory (rebuilt on open), and every operation
goes through one committer task: operations queued together run as one batch, appends
of a batch pipelined into one round of publishes. Store time is an injected clock
(wall-clock seconds by default), so windows and ages are measured as the SQLite store
measures them, and tests can drive them.
"""

from __future__ import annotations

import collections
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, Final

import outcome
import trio

from ..config import PersistenceSettings
from ..errors import (
    InvalidStoreRequest,
    RecordTooLarge,
    StoreClosed,
    StoreCorrupted,
    StoreLocked,
    StoreUnavailable,
)
from ..persistence import (
    DEFAULT_READ_LIMIT,
    MAX_READ_LIMIT,
    Appended,
    Checkpoint,
    JournalEntry,
    StoredDeadLetter,
    StoredMessage,
    StoreStatistics,
)
from ..persistence._group_commit import Waiter
from ..persistence._requests import (
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
from ..persistence._validation import (
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
from . import _jetstream_io as io
from ._asyncio_side import AsyncioSide
from ._bridge import NatsBridge
from ._jetstream_engine import StoreEngine
from ._jetstream_lease import StoreLease
from ._node import Node
from ._registry import check_token

Outcome = outcome.Value[Any] | outcome.Error

DEFAULT_TIMEOUT: Final = 10.0
"""Seconds one round of work with the server may take before it fails."""


class JetStreamStore:
    """The :class:`~mister_smith.persistence.Store` over NATS JetStream (see the module
    docstring); open one with :func:`open_jetstream_store`.

    Durability is the streams': a returned operation was acknowledged by JetStream
    (stored on ``replicas`` servers, file storage). A cancelled operation that was still
    queued wrote nothing; one the committer had taken completes (within ``timeout``) and
    returns, and the cancellation arrives at the caller's next checkpoint.
    """

    def __init__(
        self, engine: StoreEngine, layout: io.Layout, settings: PersistenceSettings
    ) -> None:
        self._engine = engine
        self._layout = layout
        self._settings = settings
        self._max_bytes = settings.max_record_bytes
        self._queue: collections.deque[Waiter[Request]] = collections.deque()
        self._wake = trio.Event()
        self._closing = False
        self._lost: StoreLocked | None = None
        self._finished = trio.Event()

    @property
    def prefix(self) -> str:
        """The prefix naming this store's streams and bucket."""
        return self._layout.prefix

    @property
    def settings(self) -> PersistenceSettings:
        """The settings the store was opened with (``path`` and ``synchronous`` do not
        apply: durability is JetStream's file storage and replicas)."""
        return self._settings

    @property
    def record_limit(self) -> int:
        """Largest message or journal entry accepted: ``max_record_bytes`` or what fits
        in one NATS message of the server (``max_payload`` less header room), whichever
        is smaller. Checkpoints are chunked and only bound by ``max_record_bytes``."""
        return min(self._max_bytes, self._engine.record_limit)

    # -- the public operations (validated here, run by the committer) -------------------

    def _check_record(self, value: object, what: str) -> bytes:
        data = check_payload(value, what, self._max_bytes)
        if len(data) > self._engine.record_limit:
            raise RecordTooLarge(
                f"{what} is {len(data)} bytes; one NATS message of this server holds at"
                f" most {self._engine.record_limit} (max_payload less {io.HEADER_RESERVE} for"
                " headers)"
            )
        return data

    async def append(
        self, mailbox: str, payload: bytes, *, message_id: str | None = None
    ) -> Appended:
        """See :meth:`Store.append <mister_smith.persistence.Store.append>`."""
        check_name(mailbox, "mailbox")
        self._check_record(payload, "payload")
        if message_id is not None:
            check_name(message_id, "message_id")
        result: Appended = await self._submit(AppendRequest(mailbox, payload, message_id))
        return result

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
        for index, entry in enumerate(entries):
            self._check_record(entry, f"payloads[{index}]")
        ids = check_ids(message_ids, len(entries))
        if not entries:
            await trio.lowlevel.checkpoint()
            return []
        result: list[Appended] = await self._submit(AppendManyRequest(mailbox, entries, ids))
        return result

    async def ack(self, mailbox: str, seq: int) -> bool:
        """See :meth:`Store.ack <mister_smith.persistence.Store.ack>`."""
        result: bool = await self._submit(
            AckRequest(check_name(mailbox, "mailbox"), check_seq(seq))
        )
        return result

    async def ack_many(self, mailbox: str, seqs: list[int]) -> list[bool]:
        """See :meth:`Store.ack_many <mister_smith.persistence.Store.ack_many>`.

        The acks run in order in one batch; JetStream has no transaction across
        streams, so a failure part-way leaves the earlier ones settled (acking again is
        harmless).
        """
        check_name(mailbox, "mailbox")
        if not isinstance(seqs, list | tuple):
            raise InvalidStoreRequest(f"seqs must be a list of integers, got {type(seqs).__name__}")
        if len(seqs) > MAX_READ_LIMIT:
            raise InvalidStoreRequest(f"at most {MAX_READ_LIMIT} seqs per call, got {len(seqs)}")
        checked = [check_seq(seq, f"seqs[{index}]") for index, seq in enumerate(seqs)]
        if not checked:
            await trio.lowlevel.checkpoint()
            return []
        result: list[bool] = await self._submit(AckManyRequest(mailbox, checked))
        return result

    async def dead_letter(self, mailbox: str, seq: int, reason: str) -> bool:
        """See :meth:`Store.dead_letter <mister_smith.persistence.Store.dead_letter>`."""
        request = DeadLetterRequest(
            check_name(mailbox, "mailbox"), check_seq(seq), check_reason(reason)
        )
        result: bool = await self._submit(request)
        return result

    async def pending(
        self, mailbox: str, *, after: int = 0, limit: int = DEFAULT_READ_LIMIT
    ) -> list[StoredMessage]:
        """See :meth:`Store.pending <mister_smith.persistence.Store.pending>`."""
        request = PendingQuery(
            check_name(mailbox, "mailbox"), check_after(after), check_limit(limit)
        )
        result: list[StoredMessage] = await self._submit(request)
        return result

    async def mailboxes(self) -> list[str]:
        """See :meth:`Store.mailboxes <mister_smith.persistence.Store.mailboxes>`."""
        result: list[str] = await self._submit(MailboxesQuery(MAX_READ_LIMIT))
        return result

    async def dead_letters(
        self, mailbox: str, *, after: int = 0, limit: int = DEFAULT_READ_LIMIT
    ) -> list[StoredDeadLetter]:
        """See :meth:`Store.dead_letters <mister_smith.persistence.Store.dead_letters>`."""
        request = DeadLettersQuery(
            check_name(mailbox, "mailbox"), check_after(after), check_limit(limit)
        )
        result: list[StoredDeadLetter] = await self._submit(request)
        return result

    async def put_checkpoint(
        self, key: str, data: bytes, *, expected_version: int | None = None
    ) -> Checkpoint:
        """See :meth:`Store.put_checkpoint <mister_smith.persistence.Store.put_checkpoint>`."""
        request = PutCheckpoint(
            check_name(key, "key"),
            check_payload(data, "checkpoint data", self._max_bytes),
            check_version(expected_version),
        )
        result: Checkpoint = await self._submit(request)
        return result

    async def get_checkpoint(self, key: str) -> Checkpoint | None:
        """See :meth:`Store.get_checkpoint <mister_smith.persistence.Store.get_checkpoint>`."""
        result: Checkpoint | None = await self._submit(GetCheckpoint(check_name(key, "key")))
        return result

    async def delete_checkpoint(self, key: str, *, expected_version: int | None = None) -> bool:
        """See :meth:`Store.delete_checkpoint
        <mister_smith.persistence.Store.delete_checkpoint>`."""
        request = DeleteCheckpoint(check_name(key, "key"), check_version(expected_version))
        result: bool = await self._submit(request)
        return result

    async def checkpoint_keys(self, prefix: str = "") -> list[str]:
        """See :meth:`Store.checkpoint_keys <mister_smith.persistence.Store.checkpoint_keys>`."""
        result: list[str] = await self._submit(
            CheckpointKeysQuery(check_prefix(prefix), MAX_READ_LIMIT)
        )
        return result

    async def journal_append(self, stream: str, entries: list[bytes]) -> list[int]:
        """See :meth:`Store.journal_append <mister_smith.persistence.Store.journal_append>`."""
        check_name(stream, "stream")
        checked = check_entries(entries, self._max_bytes)
        for index, entry in enumerate(checked):
            self._check_record(entry, f"entries[{index}]")
        if not checked:
            await trio.lowlevel.checkpoint()
            return []
        result: list[int] = await self._submit(JournalAppend(stream, checked))
        return result

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
        result: list[JournalEntry] = await self._submit(request)
        return result

    def statistics(self) -> StoreStatistics:
        """See :meth:`Store.statistics <mister_smith.persistence.Store.statistics>`."""
        return self._engine.statistics(len(self._queue))

    async def aclose(self) -> None:
        """Run what is queued, refuse what comes later (idempotent)."""
        self._close()
        await self._finished.wait()

    # -- the committer -------------------------------------------------------------------

    def _refusal(self) -> StoreClosed | StoreLocked:
        if self._lost is not None:
            return StoreLocked(str(self._lost))
        return StoreClosed(f"the JetStream store {self.prefix!r} is closed")

    async def _submit(self, request: Request) -> Any:
        if self._closing:
            await trio.lowlevel.checkpoint()
            raise self._refusal()
        waiter = Waiter(request, trio.lowlevel.current_task())
        self._queue.append(waiter)
        self._wake.set()

        def abort(_: Any) -> trio.lowlevel.Abort:
            return trio.lowlevel.Abort.SUCCEEDED if waiter.take() else trio.lowlevel.Abort.FAILED

        return await trio.lowlevel.wait_task_rescheduled(abort)

    def _close(self) -> None:
        self._closing = True
        self._wake.set()

    def _lose(self, error: StoreLocked) -> None:
        """The lease is lost: refuse everything from now on (see :class:`StoreLease`)."""
        self._lost = error
        self._close()

    async def _serve(self) -> None:
        try:
            while True:
                batch: list[Waiter[Request]] = []
                while self._queue and len(batch) < self._settings.batch_max:
                    waiter = self._queue.popleft()
                    if waiter.take():
                        batch.append(waiter)
                if not batch:
                    if self._closing and not self._queue:
                        return
                    self._wake = trio.Event()
                    if self._queue or self._closing:
                        continue
                    await self._wake.wait()
                    continue
                if self._lost is not None:
                    outcomes: list[Any] = [outcome.Error(self._refusal()) for _ in batch]
                else:
                    with trio.CancelScope(shield=True):
                        outcomes = await self._engine.run_batch([w.request for w in batch])
                for waiter, result in zip(batch, outcomes, strict=True):
                    trio.lowlevel.reschedule(waiter.task, result)
        finally:
            self._closing = True
            while self._queue:
                waiter = self._queue.popleft()
                if waiter.take():
                    trio.lowlevel.reschedule(waiter.task, outcome.Error(self._refusal()))
            self._finished.set()


@asynccontextmanager
async def open_jetstream_store(
    target: NatsBridge | Node,
    *,
    prefix: str = "default",
    settings: PersistenceSettings | None = None,
    clock: Callable[[], float] = time.time,
    replicas: int = 1,
    timeout: float = DEFAULT_TIMEOUT,
    duplicate_window: float = 120.0,
    lease_ttl: float = 10.0,
) -> AsyncIterator[JetStreamStore]:
    """Open the JetStream store ``prefix`` for the body of the block.

    ``async with open_jetstream_store(node, prefix="orders") as store:`` makes the
    store's streams and bucket unless they exist, reads the index back from them (so
    messages appended and not settled in an earlier run are :meth:`~JetStreamStore.pending`),
    runs the committer in a nursery of its own, and on exit runs what is queued.

    Args:
        target: A running :class:`NatsBridge`, or a :class:`Node` (its bridge).
        prefix: Names the streams and bucket (1-128 letters, digits, ``_``, ``-``); one
            store object at a time writes a prefix.
        settings: The ``persistence`` section (``path`` and ``synchronous`` do not
            apply here).
        clock: Store time: wall-clock seconds by default. Windows and ages are
            measured on it; tests pass a settable clock.
        replicas: JetStream replicas of each stream (1-5; up to the cluster's size).
        timeout: Seconds one round of work with the server may take.
        duplicate_window: Seconds JetStream remembers a publish's ``Nats-Msg-Id``
            (resent publishes within it are stored once).
        lease_ttl: Seconds the store's lease lasts without renewal (renewed every
            third of it): after a holder is killed, the store can be opened again
            this long later. >= 1.

    Raises:
        InvalidStoreRequest: a bad prefix or option.
        StoreLocked: another store object holds the prefix (its lease is live).
        StoreCorrupted: the streams hold messages this store did not write.
        StoreUnavailable: the server cannot be reached, or refused to make the streams.
    """
    bridge = target.bridge if isinstance(target, Node) else target
    try:
        check_token("store prefix", prefix)
    except ValueError as exc:
        raise InvalidStoreRequest(str(exc)) from None
    if type(replicas) is not int or not 1 <= replicas <= 5:
        raise InvalidStoreRequest(f"replicas must be an integer in [1, 5], got {replicas!r}")
    if not (isinstance(timeout, int | float) and timeout > 0):
        raise InvalidStoreRequest(f"timeout must be > 0 seconds, got {timeout!r}")
    if not (isinstance(duplicate_window, int | float) and duplicate_window > 0):
        raise InvalidStoreRequest(f"duplicate_window must be > 0, got {duplicate_window!r}")
    if not (isinstance(lease_ttl, int | float) and 1.0 <= lease_ttl <= 3600.0):
        raise InvalidStoreRequest(f"lease_ttl must be in [1, 3600] seconds, got {lease_ttl!r}")
    settings = PersistenceSettings() if settings is None else settings
    layout = io.Layout(prefix)
    config = io.StreamConfig(
        replicas, settings.journal_max_entries, settings.journal_max_age, duplicate_window
    )
    with trio.move_on_after(timeout):
        await bridge.wait_connected()

    async def ensure(side: AsyncioSide) -> int:
        return await io.ensure(side, layout, config)

    try:
        with trio.fail_after(timeout):
            max_payload = await bridge._call(ensure)
    except Exception as exc:
        raise StoreUnavailable(
            f"cannot open the JetStream store {prefix!r} at {bridge.settings.url}: {exc!r}"
        ) from exc
    engine = StoreEngine(
        bridge, layout, settings, clock=clock, timeout=timeout, max_payload=max_payload
    )
    lease = StoreLease(bridge, prefix, ttl=lease_ttl)
    try:
        with trio.fail_after(timeout):
            await lease.acquire()
    except StoreLocked:
        raise
    except Exception as exc:
        raise StoreUnavailable(f"cannot take the lease on the store {prefix!r}: {exc!r}") from exc
    try:
        try:
            await engine.reload()
        except StoreCorrupted:
            raise
        except Exception as exc:
            raise StoreUnavailable(
                f"cannot read the JetStream store {prefix!r} back: {exc!r}"
            ) from exc
        store = JetStreamStore(engine, layout, settings)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(lease.keep, store._lose, name=f"jetstream store lease {prefix}")
            nursery.start_soon(store._serve, name=f"jetstream store {prefix}")
            try:
                yield store
            finally:
                store._close()
                await store._finished.wait()
                nursery.cancel_scope.cancel()
    finally:
        await lease.release()


async def delete_jetstream_store(
    target: NatsBridge | Node, *, prefix: str, timeout: float = DEFAULT_TIMEOUT
) -> None:
    """Delete the streams and bucket of the store ``prefix`` (everything it held).

    Raises:
        InvalidStoreRequest: a bad prefix.
        StoreUnavailable: the server cannot be reached.
    """
    bridge = target.bridge if isinstance(target, Node) else target
    try:
        check_token("store prefix", prefix)
    except ValueError as exc:
        raise InvalidStoreRequest(str(exc)) from None
    layout = io.Layout(prefix)

    async def run(side: AsyncioSide) -> None:
        await io.delete_store(side, layout)

    try:
        with trio.fail_after(timeout):
            await bridge._call(run)
    except Exception as exc:
        raise StoreUnavailable(f"cannot delete the JetStream store {prefix!r}: {exc!r}") from exc
