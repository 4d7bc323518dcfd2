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

One store object writes a prefix at a time (as one process holds a SQLite file); it
keeps an index of the streams' headers in memory (rebuilt on open), and every operation
goes through one committer task: operations queued together run as one batch, appends
of a batch pipelined into one round of publishes. Store time is an injected clock
(wall-clock seconds by default), so windows and ages are measured as the SQLite store
measures them, and tests can drive them.
"""

from __future__ import annotations

import collections
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any, Final, TypeVar

import nats.errors
import outcome
import trio

from ..config import PersistenceSettings
from ..errors import (
    CheckpointConflict,
    InvalidStoreRequest,
    PersistenceError,
    RecordTooLarge,
    StoreClosed,
    StoreUnavailable,
    StoreWriteFailed,
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
from ..persistence._requests import (
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
from ._errors import BridgeClosed, NatsUnavailable
from ._jetstream_index import DeadMeta, PendingMeta, Remembered, StoreIndex
from ._node import Node
from ._registry import check_token

T = TypeVar("T")
Outcome = outcome.Value[Any] | outcome.Error

DEFAULT_TIMEOUT: Final = 10.0
"""Seconds one round of work with the server may take before it fails."""

_COUNTERS: Final = (
    "operations",
    "commits",
    "largest_batch",
    "failed_batches",
    "appended",
    "duplicates",
    "acked",
    "dead_lettered",
    "checkpoints_written",
    "pruned",
)


class _Waiter:
    """A queued operation and its one-use claim (the committer's or the caller's)."""

    __slots__ = ("claim", "request", "task")

    def __init__(self, request: Request, task: trio.lowlevel.Task) -> None:
        self.request = request
        self.task = task
        self.claim: list[None] = [None]

    def take(self) -> bool:
        try:
            self.claim.pop()
        except IndexError:
            return False
        return True


class JetStreamStore:
    """The :class:`~mister_smith.persistence.Store` over NATS JetStream (see the module
    docstring); open one with :func:`open_jetstream_store`.

    Durability is the streams': a returned operation was acknowledged by JetStream
    (stored on ``replicas`` servers, file storage). A cancelled operation that was still
    queued wrote nothing; one the committer had taken completes (within ``timeout``) and
    returns, and the cancellation arrives at the caller's next checkpoint.
    """

    def __init__(
        self,
        bridge: NatsBridge,
        layout: io.Layout,
        settings: PersistenceSettings,
        *,
        clock: Callable[[], float],
        timeout: float,
        max_payload: int,
    ) -> None:
        self._bridge = bridge
        self._layout = layout
        self._settings = settings
        self._clock = clock
        self._timeout = timeout
        self._now = clock()
        self._record_limit = max(1, max_payload - io.HEADER_RESERVE)
        self._max_bytes = settings.max_record_bytes
        self._index = StoreIndex()
        self._last: dict[str, int] = {}
        self._stale = True
        self._cleanup: dict[str, set[int]] = collections.defaultdict(set)
        self._journal_purge = 0
        self._queue: collections.deque[_Waiter] = collections.deque()
        self._wake = trio.Event()
        self._closing = False
        self._finished = trio.Event()
        self._counts = dict.fromkeys(_COUNTERS, 0)
        self._dispatch: dict[type[Any], Callable[[Any], Awaitable[Any]]] = {
            AckRequest: self._ack,
            DeadLetterRequest: self._dead_letter,
            PendingQuery: self._pending,
            MailboxesQuery: self._mailboxes,
            DeadLettersQuery: self._dead_letters,
            PutCheckpoint: self._put_checkpoint,
            GetCheckpoint: self._get_checkpoint,
            DeleteCheckpoint: self._delete_checkpoint,
            CheckpointKeysQuery: self._checkpoint_keys,
            JournalAppend: self._journal_append,
            JournalReplay: self._journal_replay,
        }

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
        return min(self._max_bytes, self._record_limit)

    # -- the public operations (validated here, run by the committer) -------------------

    def _check_record(self, value: object, what: str) -> bytes:
        data = check_payload(value, what, self._max_bytes)
        if len(data) > self._record_limit:
            raise RecordTooLarge(
                f"{what} is {len(data)} bytes; one NATS message of this server holds at"
                f" most {self._record_limit} (max_payload less {io.HEADER_RESERVE} for"
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
        counts = self._counts
        index = self._index
        return StoreStatistics(
            **{name: counts[name] for name in _COUNTERS},
            pending=index.pending_count(),
            remembered_ids=len(index.remembered),
            dead_letters=len(index.dead),
            journal_entries=len(index.journal),
            queued=len(self._queue),
        )

    async def aclose(self) -> None:
        """Run what is queued, refuse what comes later (idempotent)."""
        self._close()
        await self._finished.wait()

    # -- the committer -------------------------------------------------------------------

    async def _submit(self, request: Request) -> Any:
        if self._closing:
            await trio.lowlevel.checkpoint()
            raise StoreClosed(f"the JetStream store {self.prefix!r} is closed")
        waiter = _Waiter(request, trio.lowlevel.current_task())
        self._queue.append(waiter)
        self._wake.set()

        def abort(_: Any) -> trio.lowlevel.Abort:
            return trio.lowlevel.Abort.SUCCEEDED if waiter.take() else trio.lowlevel.Abort.FAILED

        return await trio.lowlevel.wait_task_rescheduled(abort)

    def _close(self) -> None:
        self._closing = True
        self._wake.set()

    async def _serve(self) -> None:
        try:
            while True:
                batch: list[_Waiter] = []
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
                with trio.CancelScope(shield=True):
                    outcomes = await self._run_batch([w.request for w in batch])
                for waiter, result in zip(batch, outcomes, strict=True):
                    trio.lowlevel.reschedule(waiter.task, result)
        finally:
            self._closing = True
            while self._queue:
                waiter = self._queue.popleft()
                if waiter.take():
                    error = StoreClosed(f"the JetStream store {self.prefix!r} closed first")
                    trio.lowlevel.reschedule(waiter.task, outcome.Error(error))
            self._finished.set()

    def _tick(self) -> float:
        self._now = max(self._now, self._clock())
        return self._now

    async def _io(self, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        """Run ``await fn(side, *args)`` on the bridge's asyncio loop within the timeout."""

        async def run(side: AsyncioSide) -> T:
            return await fn(side, *args)

        with trio.fail_after(self._timeout):
            # The bridge's package-internal hook for multi-step JetStream work.
            return await self._bridge._call(run)

    async def _run_batch(self, requests: Sequence[Request]) -> list[Outcome]:
        if self._stale:
            try:
                await self._reload()
            except Exception as exc:
                self._counts["failed_batches"] += 1
                error = _failure(exc, "could not read the store's streams back", write=False)
                return [outcome.Error(error) for _ in requests]
        results: list[Outcome] = []
        index = 0
        appends = (AppendRequest, AppendManyRequest)
        while index < len(requests):
            end = index
            while end < len(requests) and type(requests[end]) in appends:
                end += 1
            if end > index:
                results.extend(await self._appends(requests[index:end]))  # type: ignore[arg-type]
                index = end
                continue
            request = requests[index]
            try:
                results.append(outcome.Value(await self._dispatch[type(request)](request)))
            except PersistenceError as exc:
                results.append(outcome.Error(exc))
            except _SERVER_ERRORS as exc:
                write = type(request) not in (PendingQuery, DeadLettersQuery, GetCheckpoint)
                results.append(outcome.Error(_failure(exc, type(request).__name__, write=write)))
            except Exception as exc:  # a bug: the caller sees it as it is
                results.append(outcome.Error(exc))
            index += 1
        try:
            await self._housekeep()
        except Exception:  # retried after the next batch; the operations stand
            self._counts["failed_batches"] += 1
        counts = self._counts
        counts["operations"] += len(requests)
        counts["commits"] += 1
        counts["largest_batch"] = max(counts["largest_batch"], len(requests))
        return results

    # -- opening: the index from the streams ---------------------------------------------

    async def _reload(self) -> None:
        layout = self._layout
        loaded: dict[str, list[io.RawRecord]] = {}
        kinds = {
            layout.mailboxes: "mbox",
            layout.settled: "settled",
            layout.dead: "dead",
            layout.journal: "journal",
        }
        for stream, kind in kinds.items():
            records, last = await self._io(io.load, stream, f"ms.{layout.prefix}.{kind}.*")
            loaded[kind] = records
            self._last[stream] = last
        index = StoreIndex()
        settled: dict[int, tuple[str, str, float, int]] = {}
        for record in loaded["settled"]:
            mailbox = self._name_of(record.subject)
            message_id = io.unquote(record.headers[io.MESSAGE_ID])
            settled_at = float(record.headers[io.AT])
            seq = int(record.headers[io.SEQ])
            settled[seq] = (mailbox, message_id, settled_at, record.seq)
            old = index.remember(mailbox, message_id, Remembered(seq, settled_at, record.seq))
            if old is not None:
                self._cleanup[layout.settled].add(old)
        for record in loaded["dead"]:
            headers = record.headers
            raw_id = headers.get(io.MESSAGE_ID)
            index.add_dead(
                DeadMeta(
                    self._name_of(record.subject),
                    int(headers[io.SEQ]),
                    None if raw_id is None else io.unquote(raw_id),
                    io.unquote(headers.get(io.REASON, "")),
                    float(headers[io.AT]),
                    float(headers[io.DEAD_AT]),
                    record.seq,
                )
            )
        for record in loaded["mbox"]:
            raw_id = record.headers.get(io.MESSAGE_ID)
            meta = PendingMeta(
                record.seq,
                None if raw_id is None else io.unquote(raw_id),
                float(record.headers[io.AT]),
            )
            mailbox = self._name_of(record.subject)
            dead = index.dead.get(record.seq)
            if record.seq in settled or dead is not None:
                # Settled, and the process stopped before deleting it: finish that.
                if dead is not None and meta.message_id is not None and record.seq not in settled:
                    await self._record_settlement(index, mailbox, meta, dead.dead_at)
                self._cleanup[layout.mailboxes].add(record.seq)
                continue
            index.add_pending(mailbox, meta)
        for record in loaded["journal"]:
            index.add_journal(
                record.seq, self._name_of(record.subject), float(record.headers[io.AT])
            )
        self._index = index
        self._stale = False

    @staticmethod
    def _name_of(subject: str) -> str:
        return io.decode_token(subject.rsplit(".", 1)[1])

    # -- mailboxes -----------------------------------------------------------------------

    async def _publish(self, stream: str, messages: list[io.Outgoing]) -> list[int | BaseException]:
        try:
            results = await self._io(io.publish_many, stream, messages, self._last[stream])
        except BaseException:
            self._stale = True  # some may have been stored: read the streams back first
            raise
        for result in results:
            if isinstance(result, int):
                self._last[stream] = max(self._last[stream], result)
            else:
                self._stale = True
        return results

    async def _appends(
        self, requests: Sequence[AppendRequest | AppendManyRequest]
    ) -> list[Outcome]:
        now = self._tick()
        window = self._settings.dedupe_window
        index = self._index
        layout = self._layout
        messages: list[io.Outgoing] = []
        owners: list[tuple[str, str | None]] = []
        first_in_batch: dict[tuple[str, str], int] = {}
        # Per request, per message: ("dup", seq) or ("new", position in messages).
        plans: list[list[tuple[str, int]]] = []
        for request in requests:
            if isinstance(request, AppendRequest):
                items: list[tuple[bytes, str | None]] = [(request.payload, request.message_id)]
            else:
                items = list(zip(request.payloads, request.message_ids, strict=True))
            plan: list[tuple[str, int]] = []
            for payload, message_id in items:
                seq = index.duplicate_of(request.mailbox, message_id, now, window)
                if seq is not None:
                    plan.append(("dup", seq))
                    continue
                if message_id is not None and (request.mailbox, message_id) in first_in_batch:
                    plan.append(("ref", first_in_batch[(request.mailbox, message_id)]))
                    continue
                headers = {io.AT: repr(now)}
                if message_id is not None:
                    headers[io.MESSAGE_ID] = io.quote(message_id)
                    first_in_batch[(request.mailbox, message_id)] = len(messages)
                plan.append(("new", len(messages)))
                messages.append(
                    io.Outgoing(layout.subject("mbox", request.mailbox), headers, payload)
                )
                owners.append((request.mailbox, message_id))
            plans.append(plan)
        try:
            published = await self._publish(layout.mailboxes, messages) if messages else []
        except Exception as exc:
            self._counts["failed_batches"] += 1
            error = _failure(exc, "appending", write=True)
            return [outcome.Error(error) for _ in requests]
        for position, result in enumerate(published):
            if isinstance(result, int):
                mailbox, message_id = owners[position]
                index.add_pending(mailbox, PendingMeta(result, message_id, now))
                self._counts["appended"] += 1
        results: list[Outcome] = []
        for request, plan in zip(requests, plans, strict=True):
            appended: list[Appended] = []
            failure: BaseException | None = None
            written: list[int] = []
            ids = (
                [request.message_id] if isinstance(request, AppendRequest) else request.message_ids
            )
            for (kind, value), message_id in zip(plan, ids, strict=True):
                if kind == "dup":
                    appended.append(Appended(request.mailbox, value, message_id, duplicate=True))
                    self._counts["duplicates"] += 1
                    continue
                result = published[value]
                if isinstance(result, BaseException):
                    failure = failure or result
                    continue
                if kind == "new":
                    written.append(result)
                    appended.append(Appended(request.mailbox, result, message_id))
                else:
                    appended.append(Appended(request.mailbox, result, message_id, duplicate=True))
                    self._counts["duplicates"] += 1
            if failure is None:
                results.append(
                    outcome.Value(appended[0] if type(request) is AppendRequest else appended)
                )
                continue
            self._counts["failed_batches"] += 1
            if written:  # append_many is all or nothing: take back what was stored
                for seq in written:
                    index.settle(request.mailbox, seq)
                self._cleanup[layout.mailboxes].update(written)
            results.append(outcome.Error(_failure(failure, "appending", write=True)))
        return results

    async def _record_settlement(
        self, index: StoreIndex, mailbox: str, meta: PendingMeta, settled_at: float
    ) -> None:
        """Publish the settlement of a message with an id and remember the id."""
        assert meta.message_id is not None
        record = io.Outgoing(
            self._layout.subject("settled", mailbox),
            {
                io.SEQ: str(meta.seq),
                io.MESSAGE_ID: io.quote(meta.message_id),
                io.AT: repr(settled_at),
            },
            b"",
        )
        (result,) = await self._publish(self._layout.settled, [record])
        if isinstance(result, BaseException):
            raise result
        old = index.remember(mailbox, meta.message_id, Remembered(meta.seq, settled_at, result))
        if old is not None:
            self._cleanup[self._layout.settled].add(old)

    async def _ack(self, request: AckRequest) -> bool:
        mailbox, seq = request
        meta = self._index.find_pending(mailbox, seq)
        if meta is None:
            return False
        now = self._tick()
        if meta.message_id is not None:
            await self._record_settlement(self._index, mailbox, meta, now)
            self._index.settle(mailbox, seq)
            self._cleanup[self._layout.mailboxes].add(seq)  # deleted with housekeeping
        else:
            await self._io(io.delete_messages, self._layout.mailboxes, [seq])
            self._index.settle(mailbox, seq)
        self._counts["acked"] += 1
        return True

    async def _dead_letter(self, request: DeadLetterRequest) -> bool:
        mailbox, seq, reason = request
        index = self._index
        meta = index.find_pending(mailbox, seq)
        if meta is None:
            return False
        payloads = await self._io(io.get_payloads, self._layout.mailboxes, [seq])
        if seq not in payloads:
            index.settle(mailbox, seq)  # gone from the stream: settled already
            return False
        now = self._tick()
        headers = {
            io.SEQ: str(seq),
            io.AT: repr(meta.appended_at),
            io.DEAD_AT: repr(now),
            io.REASON: io.quote(reason),
        }
        if meta.message_id is not None:
            headers[io.MESSAGE_ID] = io.quote(meta.message_id)
        record = io.Outgoing(self._layout.subject("dead", mailbox), headers, payloads[seq])
        (result,) = await self._publish(self._layout.dead, [record])
        if isinstance(result, BaseException):
            raise result
        index.add_dead(
            DeadMeta(mailbox, seq, meta.message_id, reason, meta.appended_at, now, result)
        )
        if meta.message_id is not None:
            await self._record_settlement(index, mailbox, meta, now)
        index.settle(mailbox, seq)
        self._cleanup[self._layout.mailboxes].add(seq)
        self._counts["dead_lettered"] += 1
        return True

    async def _pending(self, request: PendingQuery) -> list[StoredMessage]:
        mailbox, after, limit = request
        metas = self._index.pending_after(mailbox, after, limit)
        if not metas:
            return []
        payloads = await self._io(io.get_payloads, self._layout.mailboxes, [m.seq for m in metas])
        found: list[StoredMessage] = []
        for meta in metas:
            payload = payloads.get(meta.seq)
            if payload is None:  # deleted by an ack whose answer was lost
                self._index.settle(mailbox, meta.seq)
                continue
            found.append(
                StoredMessage(mailbox, meta.seq, meta.message_id, payload, meta.appended_at)
            )
        return found

    async def _mailboxes(self, request: MailboxesQuery) -> list[str]:
        await trio.lowlevel.checkpoint()
        return sorted(self._index.pending)[: request.limit]

    async def _dead_letters(self, request: DeadLettersQuery) -> list[StoredDeadLetter]:
        mailbox, after, limit = request
        max_age = self._settings.dead_letter_max_age
        now = self._tick()
        oldest = -math.inf if max_age is None else now - max_age
        metas = list(self._index.dead_after(mailbox, after, limit, oldest))
        if not metas:
            return []
        payloads = await self._io(io.get_payloads, self._layout.dead, [m.record_seq for m in metas])
        return [
            StoredDeadLetter(
                mailbox,
                meta.seq,
                meta.message_id,
                payloads.get(meta.record_seq, b""),
                meta.reason,
                meta.appended_at,
                meta.dead_at,
            )
            for meta in metas
            if meta.record_seq in payloads
        ]

    # -- checkpoints -----------------------------------------------------------------------

    @staticmethod
    def _conflict(key: str, expected: int, actual: int, action: str) -> CheckpointConflict:
        return CheckpointConflict(
            f"cannot {action} checkpoint {key!r}: expected version {expected}, it is"
            f" {'absent' if actual == 0 else f'at version {actual}'}",
            key=key,
            expected=expected,
            actual=actual or None,
        )

    async def _read(self, key: str, *, with_data: bool) -> io.StoredValue | None:
        try:
            return await self._io(io.read_checkpoint, self._layout, key, with_data)
        except ValueError as exc:
            raise StoreUnavailable(f"the JetStream store {self.prefix!r}: {exc}") from exc

    async def _put_checkpoint(self, request: PutCheckpoint) -> Checkpoint:
        key, data, expected = request
        layout = self._layout
        current = await self._read(key, with_data=False)
        version = 0 if current is None else current.version
        if expected is not None and expected != version:
            raise self._conflict(key, expected, version, "write")
        now = self._tick()
        chunked: str | None = None
        if len(data) > self._record_limit:
            chunked = await self._io(io.write_chunks, layout, data, self._record_limit)
            value = io.pack_checkpoint(version + 1, now, io.CHUNKED, chunked.encode())
        else:
            value = io.pack_checkpoint(version + 1, now, io.INLINE, data)
        last = None if current is None else current.revision
        revision = await self._io(io.write_checkpoint, layout, key, value, last)
        if revision is None:  # another writer got in between the read and the write
            await self._io(io.drop_chunks, layout, chunked)
            latest = await self._read(key, with_data=False)
            raise self._conflict(key, version, 0 if latest is None else latest.version, "write")
        if current is not None and current.chunk_subject is not None:
            await self._io(io.drop_chunks, layout, current.chunk_subject)
        self._counts["checkpoints_written"] += 1
        return Checkpoint(key, version + 1, data, now)

    async def _get_checkpoint(self, request: GetCheckpoint) -> Checkpoint | None:
        stored = await self._read(request.key, with_data=True)
        if stored is None:
            return None
        return Checkpoint(request.key, stored.version, stored.data, stored.updated_at)

    async def _delete_checkpoint(self, request: DeleteCheckpoint) -> bool:
        key, expected = request
        current = await self._read(key, with_data=False)
        version = 0 if current is None else current.version
        if expected is not None and expected != version:
            raise self._conflict(key, expected, version, "delete")
        if current is None:
            return False
        if not await self._io(io.delete_checkpoint, self._layout, key, current.revision):
            latest = await self._read(key, with_data=False)
            raise self._conflict(key, version, 0 if latest is None else latest.version, "delete")
        await self._io(io.drop_chunks, self._layout, current.chunk_subject)
        return True

    async def _checkpoint_keys(self, request: CheckpointKeysQuery) -> list[str]:
        keys = await self._io(io.checkpoint_keys, self._layout)
        return sorted(k for k in keys if k.startswith(request.prefix))[: request.limit]

    # -- journal -----------------------------------------------------------------------------

    async def _journal_append(self, request: JournalAppend) -> list[int]:
        stream, entries = request
        now = self._tick()
        subject = self._layout.subject("journal", stream)
        messages = [io.Outgoing(subject, {io.AT: repr(now)}, entry) for entry in entries]
        results = await self._publish(self._layout.journal, messages)
        seqs = [r for r in results if isinstance(r, int)]
        failure = next((r for r in results if isinstance(r, BaseException)), None)
        if failure is not None:
            self._cleanup[self._layout.journal].update(seqs)
            raise _failure(failure, "journal_append", write=True)
        for seq in seqs:
            self._index.add_journal(seq, stream, now)
        return seqs

    async def _journal_replay(self, request: JournalReplay) -> list[JournalEntry]:
        stream, since, after, limit = request
        max_age = self._settings.journal_max_age
        now = self._tick()
        oldest = -math.inf if max_age is None else now - max_age
        if since is not None:
            oldest = max(oldest, since)
        found = self._index.journal_after(stream, after, oldest, limit)
        if not found:
            return []
        payloads = await self._io(io.get_payloads, self._layout.journal, [s for s, _ in found])
        return [
            JournalEntry(stream, seq, recorded_at, payloads[seq])
            for seq, recorded_at in found
            if seq in payloads
        ]

    # -- retention -----------------------------------------------------------------------------

    async def _housekeep(self) -> None:
        """Apply the window, capacities and ages to the index and delete what they
        removed from the streams (what fails to delete is retried next time)."""
        now = self._tick()
        settings = self._settings
        index = self._index
        layout = self._layout
        cleanup = self._cleanup
        forgotten = index.forget_ids(now, settings.dedupe_window, settings.dedupe_capacity)
        cleanup[layout.settled].update(forgotten)
        dropped = index.drop_dead(now, settings.dead_letter_max_age, settings.dead_letter_capacity)
        cleanup[layout.dead].update(dropped)
        trimmed, first_kept = index.trim_journal(
            now, settings.journal_max_age, settings.journal_max_entries
        )
        self._counts["pruned"] += len(forgotten) + len(dropped) + trimmed
        if trimmed:
            self._journal_purge = (
                self._last[layout.journal] + 1 if first_kept is None else first_kept
            )
        if self._journal_purge:
            await self._io(io.purge_below, layout.journal, self._journal_purge)
            self._journal_purge = 0
        for stream in list(cleanup):
            seqs = cleanup.pop(stream)
            if not seqs:
                continue
            try:
                await self._io(io.delete_messages, stream, sorted(seqs))
            except BaseException:
                cleanup[stream].update(seqs)
                raise


_SERVER_ERRORS: Final = (
    nats.errors.Error,
    NatsUnavailable,
    BridgeClosed,
    trio.TooSlowError,
    TimeoutError,
    OSError,
)
"""What a round of work with the server fails with (anything else is a bug)."""


def _failure(exc: BaseException, action: str, *, write: bool) -> PersistenceError:
    """The store error for ``exc`` (ours pass through)."""
    if isinstance(exc, PersistenceError):
        return exc
    if isinstance(exc, trio.TooSlowError):
        text = f"{action}: no answer from JetStream in time; the outcome is unknown"
    else:
        text = f"{action} failed on JetStream: {exc!r}"
    error: PersistenceError = StoreWriteFailed(text) if write else StoreUnavailable(text)
    error.__cause__ = exc
    return error


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

    Raises:
        InvalidStoreRequest: a bad prefix or option.
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
    store = JetStreamStore(
        bridge, layout, settings, clock=clock, timeout=timeout, max_payload=max_payload
    )
    try:
        await store._reload()
    except Exception as exc:
        raise StoreUnavailable(f"cannot read the JetStream store {prefix!r} back: {exc!r}") from exc
    async with trio.open_nursery() as nursery:
        nursery.start_soon(store._serve, name=f"jetstream store {prefix}")
        try:
            yield store
        finally:
            store._close()


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
