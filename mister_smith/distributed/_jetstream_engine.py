"""The JetStream store's engine: runs batches of operations against the streams.

The committer of :class:`~mister_smith.distributed.JetStreamStore` hands it one batch at
a time; it plans each operation against the in-memory :class:`StoreIndex`, carries it out
on the bridge's asyncio loop (:mod:`._jetstream_io`), and updates the index only with
what JetStream acknowledged. A write whose outcome it could not learn (a timeout, a
dropped connection) marks the index stale, and the next batch first reads the streams
back, so the index never disagrees with the streams for longer than one failed batch.
"""

from __future__ import annotations

import collections
import math
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Final, TypeVar

import nats.errors
import nats.js.errors
import outcome
import trio

from ..config import PersistenceSettings
from ..errors import (
    CheckpointConflict,
    PersistenceError,
    StoreCorrupted,
    StoreUnavailable,
    StoreWriteFailed,
)
from ..persistence import (
    Appended,
    Checkpoint,
    JournalEntry,
    StoredDeadLetter,
    StoredMessage,
    StoreStatistics,
)
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
from . import _jetstream_io as io
from ._asyncio_side import AsyncioSide
from ._bridge import NatsBridge
from ._errors import BridgeClosed, NatsUnavailable
from ._jetstream_index import DeadMeta, PendingMeta, Remembered, StoreIndex

T = TypeVar("T")
Outcome = outcome.Value[Any] | outcome.Error

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


class StoreEngine:
    """The state and the work of one JetStream store (not thread-safe; one committer
    task calls :meth:`run_batch`, one batch at a time)."""

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
        self.record_limit = max(1, max_payload - io.HEADER_RESERVE)
        """Largest payload one NATS message of this server carries with our headers."""
        self._index = StoreIndex()
        self._last: dict[str, int] = {}
        self._stale = True
        self._cleanup: dict[str, set[int]] = collections.defaultdict(set)
        self._journal_purge = 0
        self._counts = dict.fromkeys(_COUNTERS, 0)
        self._dispatch: dict[type[Any], Callable[[Any], Awaitable[Any]]] = {
            AckRequest: self._ack,
            AckManyRequest: self._ack_many,
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

    def statistics(self, queued: int) -> StoreStatistics:
        """The counters now, with ``queued`` operations waiting for the committer."""
        counts = self._counts
        index = self._index
        return StoreStatistics(
            **{name: counts[name] for name in _COUNTERS},
            pending=index.pending_count(),
            remembered_ids=len(index.remembered),
            dead_letters=len(index.dead),
            journal_entries=len(index.journal),
            queued=queued,
        )

    def _tick(self) -> float:
        self._now = max(self._now, self._clock())
        return self._now

    async def _io(self, fn: Callable[..., Awaitable[T]], *args: Any, bounded: bool = True) -> T:
        """Run ``await fn(side, *args)`` on the bridge's asyncio loop within the timeout
        (``bounded=False``: work whose length grows with the streams, like reading them
        back, and which bounds the wait for each of its messages itself)."""

        async def run(side: AsyncioSide) -> T:
            return await fn(side, *args)

        with trio.fail_after(self._timeout if bounded else math.inf):
            # The bridge's package-internal hook for multi-step JetStream work.
            return await self._bridge._call(run)

    async def run_batch(self, requests: Sequence[Request]) -> list[Outcome]:
        """Run ``requests`` in order; one outcome per request."""
        if self._stale:
            try:
                await self.reload()
            except Exception as exc:
                self._counts["failed_batches"] += 1
                error = server_failure(exc, "could not read the store's streams back", write=False)
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
            except SERVER_ERRORS as exc:
                write = type(request) not in (PendingQuery, DeadLettersQuery, GetCheckpoint)
                results.append(
                    outcome.Error(server_failure(exc, type(request).__name__, write=write))
                )
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

    async def reload(self) -> None:
        """Rebuild the index from the streams (on open, and after an unknown outcome)."""
        layout = self._layout
        loaded: dict[str, list[io.RawRecord]] = {}
        kinds = {
            layout.mailboxes: "mbox",
            layout.settled: "settled",
            layout.dead: "dead",
            layout.journal: "journal",
        }
        for stream, kind in kinds.items():
            records, last = await self._io(
                io.load, stream, f"ms.{layout.prefix}.{kind}.*", bounded=False
            )
            loaded[kind] = records
            self._last[stream] = last
        try:
            index = await self._rebuild(loaded)
        except (KeyError, ValueError, IndexError) as exc:  # UnicodeDecodeError, binascii too
            raise StoreCorrupted(
                f"the JetStream store {layout.prefix!r} holds a message it did not write"
                f" (a record without its headers, or a foreign subject): {exc!r}"
            ) from exc
        self._index = index
        self._stale = False

    async def _rebuild(self, loaded: dict[str, list[io.RawRecord]]) -> StoreIndex:
        """The index the loaded headers describe (settlements the process recorded but
        did not finish are finished on the way)."""
        layout = self._layout
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
        return index

    @staticmethod
    def _name_of(subject: str) -> str:
        return io.decode_token(subject.rsplit(".", 1)[1])

    # -- mailboxes -----------------------------------------------------------------------

    async def _publish(self, stream: str, messages: list[io.Outgoing]) -> list[int | BaseException]:
        try:
            results = await self._io(
                io.publish_many, stream, messages, self._last[stream], self._timeout / 3
            )
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
            error = server_failure(exc, "appending", write=True)
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
            results.append(outcome.Error(server_failure(failure, "appending", write=True)))
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

    async def _ack_many(self, request: AckManyRequest) -> list[bool]:
        """Each seq as :meth:`_ack` settles it, in order, in this one batch (JetStream has
        no multi-stream transaction: a failure part-way leaves the earlier ones settled,
        and acking them again is harmless)."""
        mailbox, seqs = request
        return [await self._ack(AckRequest(mailbox, seq)) for seq in seqs]

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
        payloads = await self._io(
            io.read_payloads,
            self._layout.mailboxes,
            self._layout.subject("mbox", mailbox),
            [m.seq for m in metas],
        )
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
        payloads = await self._io(
            io.read_payloads,
            self._layout.dead,
            self._layout.subject("dead", mailbox),
            sorted(m.record_seq for m in metas),
        )
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
            raise StoreUnavailable(f"the JetStream store {self._layout.prefix!r}: {exc}") from exc

    async def _put_checkpoint(self, request: PutCheckpoint) -> Checkpoint:
        key, data, expected = request
        layout = self._layout
        current = await self._read(key, with_data=False)
        version = 0 if current is None else current.version
        if expected is not None and expected != version:
            raise self._conflict(key, expected, version, "write")
        now = self._tick()
        chunked: str | None = None
        if len(data) > self.record_limit:
            chunked = await self._io(io.write_chunks, layout, data, self.record_limit)
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
            raise server_failure(failure, "journal_append", write=True)
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
        payloads = await self._io(
            io.read_payloads,
            self._layout.journal,
            self._layout.subject("journal", stream),
            [s for s, _ in found],
        )
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


SERVER_ERRORS: Final = (
    nats.errors.Error,
    NatsUnavailable,
    BridgeClosed,
    trio.TooSlowError,
    TimeoutError,
    OSError,
)
"""What a round of work with the server fails with (anything else is a bug)."""


def server_failure(exc: BaseException, action: str, *, write: bool) -> PersistenceError:
    """The store error for ``exc`` (ours pass through)."""
    if isinstance(exc, PersistenceError):
        return exc
    if isinstance(exc, nats.js.errors.APIError):
        text = f"{action}: JetStream refused it, nothing was written: {exc!r}"
    elif write:
        text = (
            f"{action}: the answer from JetStream was lost ({exc!r}), so it may or may not"
            " have been written; the store reads its streams back before the next operation"
        )
    else:
        text = f"{action} failed on JetStream: {exc!r}"
    error: PersistenceError = StoreWriteFailed(text) if write else StoreUnavailable(text)
    error.__cause__ = exc
    return error
