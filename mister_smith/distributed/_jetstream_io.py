"""The JetStream store's work on the bridge's asyncio loop: nats-py calls only.

Every function here is handed to the bridge (it runs on the asyncio thread, never on
Trio) and returns plain values; the Trio side owns all state. Names of mailboxes, keys
and journal streams are encoded into subject tokens and KV keys with unpadded base64url
(the only characters NATS allows in both), and into headers percent-encoded.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import struct
import urllib.parse
import uuid
from collections.abc import Sequence
from typing import Any, Final

import attrs
import nats.errors
import nats.js.api
import nats.js.errors

from ._asyncio_side import AsyncioSide

HEADER_RESERVE: Final = 4096
"""Bytes of a message's ``max_payload`` kept for its subject and headers."""

GET_CONCURRENCY: Final = 64
"""Message reads in flight at once when a read fetches payloads."""

LOAD_IDLE_TIMEOUT: Final = 5.0
"""Seconds an index rebuild waits for the next message before giving up."""

# Headers the store writes (its own, besides NATS's).
AT: Final = "Ms-At"
MESSAGE_ID: Final = "Ms-Id"
SEQ: Final = "Ms-Seq"
DEAD_AT: Final = "Ms-Dead-At"
REASON: Final = "Ms-Reason"

_CHECKPOINT_HEAD: Final = struct.Struct(">4sQdB")
_MAGIC: Final = b"MSC1"
INLINE, CHUNKED = 0, 1


def encode_token(name: str) -> str:
    """``name`` as one subject token / KV key: unpadded base64url of its UTF-8."""
    return base64.urlsafe_b64encode(name.encode()).rstrip(b"=").decode()


def decode_token(token: str) -> str:
    """The name :func:`encode_token` encoded."""
    return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()


def quote(text: str) -> str:
    """``text`` safe in a header value."""
    return urllib.parse.quote(text, safe="")


def unquote(text: str) -> str:
    """The text :func:`quote` encoded."""
    return urllib.parse.unquote(text)


@attrs.frozen
class Layout:
    """The streams, subjects and bucket of the store with prefix ``prefix``."""

    prefix: str

    @property
    def mailboxes(self) -> str:
        """Stream of pending messages (settled ones are deleted from it)."""
        return f"MS_{self.prefix}_MBOX"

    @property
    def settled(self) -> str:
        """Stream of settlements of messages with an id (the receive window)."""
        return f"MS_{self.prefix}_SETTLED"

    @property
    def dead(self) -> str:
        """Stream of dead letters, payload included."""
        return f"MS_{self.prefix}_DEAD"

    @property
    def journal(self) -> str:
        """Stream of journal entries, all journal streams together."""
        return f"MS_{self.prefix}_JOURNAL"

    @property
    def chunks(self) -> str:
        """Stream of the chunks of checkpoints too large for one KV value."""
        return f"MS_{self.prefix}_CKDATA"

    @property
    def bucket(self) -> str:
        """KV bucket of checkpoints."""
        return f"MS_{self.prefix}_CKPT"

    def subject(self, kind: str, name: str) -> str:
        """The subject of record ``kind`` (mbox, settled, dead, journal) for ``name``."""
        return f"ms.{self.prefix}.{kind}.{encode_token(name)}"

    def streams(self) -> list[str]:
        """Every stream of the store (the KV bucket's stream aside)."""
        return [self.mailboxes, self.settled, self.dead, self.journal, self.chunks]


def _js(side: AsyncioSide) -> Any:
    assert side.nc is not None
    return side.nc.jetstream()


# -- opening ----------------------------------------------------------------------------


@attrs.frozen
class StreamConfig:
    """What :func:`ensure` makes (or updates) the store's streams with."""

    replicas: int
    journal_max_entries: int
    journal_max_age: float | None
    duplicate_window: float


async def ensure(side: AsyncioSide, layout: Layout, config: StreamConfig) -> int:
    """Create the store's streams and bucket unless they exist (the journal's limits
    are updated when they changed); return the server's ``max_payload``."""
    js = _js(side)
    prefix = f"ms.{layout.prefix}"
    wanted = {
        layout.mailboxes: [f"{prefix}.mbox.*"],
        layout.settled: [f"{prefix}.settled.*"],
        layout.dead: [f"{prefix}.dead.*"],
        layout.journal: [f"{prefix}.journal.*"],
        layout.chunks: [f"{prefix}.ckdata.*"],
    }
    for name, subjects in wanted.items():
        stream = nats.js.api.StreamConfig(
            name=name,
            subjects=subjects,
            storage=nats.js.api.StorageType.FILE,
            num_replicas=config.replicas,
            duplicate_window=config.duplicate_window,
            allow_direct=True,
        )
        if name == layout.journal:
            if config.journal_max_age is not None:
                stream.duplicate_window = min(config.duplicate_window, config.journal_max_age)
            stream.max_msgs = config.journal_max_entries
            # A backstop on server time; the store applies the age on its own clock.
            stream.max_age = config.journal_max_age
        try:
            info = await js.stream_info(name)
        except nats.js.errors.NotFoundError:
            await js.add_stream(stream)
        else:
            current = info.config
            journal = name == layout.journal
            limits = (stream.max_msgs, stream.max_age, stream.duplicate_window)
            if not current.allow_direct or (
                journal and (current.max_msgs, current.max_age, current.duplicate_window) != limits
            ):
                if journal:
                    current.max_msgs, current.max_age, current.duplicate_window = limits
                current.allow_direct = True
                await js.update_stream(current)
    try:
        side.kv[layout.bucket] = await js.key_value(layout.bucket)
    except nats.js.errors.BucketNotFoundError:
        side.kv[layout.bucket] = await js.create_key_value(
            bucket=layout.bucket, history=1, replicas=config.replicas
        )
    assert side.nc is not None
    return int(side.nc.max_payload)


@attrs.frozen
class RawRecord:
    """A stream message's metadata, as an index rebuild reads it (no payload)."""

    subject: str
    seq: int
    headers: dict[str, str]


async def load(side: AsyncioSide, stream: str, subjects: str) -> tuple[list[RawRecord], int]:
    """Every message of ``stream`` on ``subjects`` (headers only) and the stream's last
    sequence."""
    js = _js(side)
    info = await js.stream_info(stream)
    last = int(info.state.last_seq)
    records: list[RawRecord] = []
    if not info.state.messages:
        return records, last
    sub = await js.subscribe(subjects, stream=stream, ordered_consumer=True, headers_only=True)
    try:
        while True:
            msg = await sub.next_msg(timeout=LOAD_IDLE_TIMEOUT)
            seq = int(msg.metadata.sequence.stream)
            if seq > last:
                break
            records.append(RawRecord(msg.subject, seq, dict(msg.headers or {})))
            if seq == last or msg.metadata.num_pending == 0:
                break
    finally:
        await sub.unsubscribe()
    return records, last


# -- writing ----------------------------------------------------------------------------


@attrs.frozen
class Outgoing:
    """One message to publish."""

    subject: str
    headers: dict[str, str]
    payload: bytes


async def publish_many(
    side: AsyncioSide, stream: str, messages: Sequence[Outgoing], last: int, ack_wait: float
) -> list[int | BaseException]:
    """Publish ``messages`` to ``stream`` in order, pipelined (all sent, then all acks
    awaited); per message its sequence or why it failed.

    Each carries ``Nats-Expected-Last-Sequence`` (``last``, then one more each), so the
    server keeps them in order and refuses them if another writer appended meanwhile,
    and a fresh ``Nats-Msg-Id``. A message whose ack did not come within ``ack_wait``
    seconds is sent once more, in order, with the same ``Nats-Msg-Id`` but without the
    expected sequence (which a stored first copy has moved on): if the first copy was
    stored, the server answers with its sequence (a duplicate) instead of storing it
    twice. (The lease keeps other writers out meanwhile.)
    """
    js = _js(side)
    sent: list[tuple[str, bytes, dict[str, str]]] = []
    futures: list[asyncio.Future[Any] | BaseException] = []
    for index, message in enumerate(messages):
        headers = dict(message.headers)
        headers[nats.js.api.Header.EXPECTED_LAST_SEQUENCE] = str(last + index)
        headers[nats.js.api.Header.MSG_ID] = uuid.uuid4().hex
        headers[nats.js.api.Header.EXPECTED_STREAM] = stream
        sent.append((message.subject, message.payload, headers))
        try:
            futures.append(
                await js.publish_async(message.subject, message.payload, headers=headers)
            )
        except Exception as exc:
            futures.append(exc)
    waiting = [f for f in futures if not isinstance(f, BaseException)]
    if waiting:
        # One wait for every ack (not one timer per message): the hot path.
        _, late = await asyncio.wait(waiting, timeout=ack_wait)
        for pending in late:
            pending.cancel()
    results: list[int | BaseException] = []
    for future in futures:
        if isinstance(future, BaseException):
            results.append(future)
        elif future.cancelled():
            results.append(TimeoutError(f"no ack within {ack_wait:g} s"))
        elif (error := future.exception()) is not None:
            results.append(error)
        else:
            results.append(int(future.result().seq))
    for index, result in enumerate(results):
        if not isinstance(result, asyncio.TimeoutError | nats.errors.TimeoutError):
            continue
        subject, payload, headers = sent[index]
        headers.pop(nats.js.api.Header.EXPECTED_LAST_SEQUENCE, None)
        try:
            results[index] = int(
                (await js.publish(subject, payload, timeout=ack_wait, headers=headers)).seq
            )
        except Exception as exc:
            results[index:] = [exc] * (len(results) - index)
            break
    return results


async def delete_messages(side: AsyncioSide, stream: str, seqs: Sequence[int]) -> None:
    """Delete messages ``seqs`` of ``stream`` (those already gone are fine)."""
    js = _js(side)

    async def one(seq: int) -> None:
        try:
            await js.delete_msg(stream, seq)
        except nats.js.errors.NotFoundError:
            pass
        except nats.js.errors.APIError as exc:
            if exc.err_code != 10057:  # "no message found"
                raise

    await asyncio.gather(*(one(seq) for seq in seqs))


async def purge_below(side: AsyncioSide, stream: str, seq: int) -> None:
    """Delete every message of ``stream`` before sequence ``seq``."""
    await _js(side).purge_stream(stream, seq=seq)


async def get_payloads(side: AsyncioSide, stream: str, seqs: Sequence[int]) -> dict[int, bytes]:
    """The payloads of messages ``seqs`` of ``stream`` (missing ones left out)."""
    js = _js(side)
    limit = asyncio.Semaphore(GET_CONCURRENCY)
    found: dict[int, bytes] = {}

    async def one(seq: int) -> None:
        async with limit:
            try:
                msg = await js.get_msg(stream, seq)
            except nats.js.errors.NotFoundError:
                return
        found[seq] = msg.data or b""

    await asyncio.gather(*(one(seq) for seq in seqs))
    return found


STREAM_READ_THRESHOLD: Final = 32
"""Reads of more messages than this stream them with one consumer instead of one
request per message."""


async def read_payloads(
    side: AsyncioSide, stream: str, subject: str, seqs: Sequence[int]
) -> dict[int, bytes]:
    """The payloads of messages ``seqs`` (ascending, all on ``subject``) of ``stream``
    (missing ones left out): a few by one request each, many by JetStream's batched
    direct get (one request answered with a run of messages, read until ``last``)."""
    if len(seqs) <= STREAM_READ_THRESHOLD:
        return await get_payloads(side, stream, seqs)
    assert side.nc is not None
    nc = side.nc
    wanted = set(seqs)
    last = seqs[-1]
    found: dict[int, bytes] = {}
    start = seqs[0]
    inbox = nc.new_inbox()
    replies: asyncio.Queue[Any] = asyncio.Queue()

    async def deliver(msg: Any) -> None:
        replies.put_nowait(msg)

    sub = await nc.subscribe(inbox, cb=deliver)
    try:
        while start <= last:
            request = {"seq": start, "batch": len(wanted) - len(found), "next_by_subj": subject}
            await nc.publish(
                f"$JS.API.DIRECT.GET.{stream}", json.dumps(request).encode(), reply=inbox
            )
            while True:
                msg = await asyncio.wait_for(replies.get(), LOAD_IDLE_TIMEOUT)
                headers = msg.headers or {}
                status = headers.get("Status")
                if status == "404":  # nothing (more) on the subject
                    return found
                if status is not None and status != "204":
                    raise nats.js.errors.APIError(
                        code=int(status), description=str(headers.get("Description", ""))
                    )
                if status == "204":  # end of this batch: ask for the rest
                    break
                seq = int(headers["Nats-Sequence"])
                if seq in wanted:
                    found[seq] = msg.data or b""
                start = seq + 1
                if seq >= last:
                    return found
    finally:
        await sub.unsubscribe()
    return found


# -- checkpoints ----------------------------------------------------------------------


@attrs.frozen
class StoredValue:
    """A checkpoint as the bucket holds it."""

    version: int
    updated_at: float
    data: bytes
    revision: int
    chunk_subject: str | None = None


def pack_checkpoint(version: int, updated_at: float, kind: int, body: bytes) -> bytes:
    """The KV value of a checkpoint: a small head, then the data or a chunk subject."""
    return _CHECKPOINT_HEAD.pack(_MAGIC, version, updated_at, kind) + body


async def read_checkpoint(
    side: AsyncioSide, layout: Layout, key: str, with_data: bool
) -> StoredValue | None:
    """The checkpoint under ``key`` (its data read from its chunks when it has some);
    ``None`` when there is none. Raises ``ValueError`` for a value it cannot read."""
    kv = await side.key_value(layout.bucket)
    try:
        entry = await kv.get(encode_token(key))
    except (nats.js.errors.KeyNotFoundError, nats.js.errors.KeyDeletedError):
        return None
    value = entry.value or b""
    if len(value) < _CHECKPOINT_HEAD.size:
        raise ValueError(f"checkpoint {key!r} has a value of {len(value)} bytes: not ours")
    magic, version, updated_at, kind = _CHECKPOINT_HEAD.unpack_from(value)
    if magic != _MAGIC or kind not in (INLINE, CHUNKED):
        raise ValueError(f"checkpoint {key!r} was not written by this store version")
    body = value[_CHECKPOINT_HEAD.size :]
    revision = int(entry.revision or 0)
    if kind == INLINE:
        return StoredValue(version, updated_at, body, revision)
    subject = body.decode()
    data = await read_chunks(side, layout, subject) if with_data else b""
    return StoredValue(version, updated_at, data, revision, subject)


async def read_chunks(side: AsyncioSide, layout: Layout, subject: str) -> bytes:
    """The chunks on ``subject``, joined (the last one carries the chunk count)."""
    js = _js(side)
    parts: list[bytes] = []
    seq = 1
    while True:
        msg = await js.get_msg(layout.chunks, seq, subject=subject, next=True)
        parts.append(msg.data or b"")
        seq = int(msg.seq) + 1
        total = (msg.headers or {}).get("Ms-Chunks")
        if total is not None:
            if int(total) != len(parts):
                raise ValueError(f"chunks on {subject} are incomplete")
            return b"".join(parts)


async def write_chunks(side: AsyncioSide, layout: Layout, data: bytes, size: int) -> str:
    """Publish ``data`` as chunks of ``size`` bytes on a fresh subject; return it."""
    js = _js(side)
    subject = f"ms.{layout.prefix}.ckdata.{uuid.uuid4().hex}"
    pieces = [data[i : i + size] for i in range(0, len(data), size)] or [b""]
    for index, piece in enumerate(pieces):
        headers = {"Ms-Chunks": str(len(pieces))} if index == len(pieces) - 1 else None
        await js.publish(subject, piece, headers=headers)
    return subject


async def drop_chunks(side: AsyncioSide, layout: Layout, subject: str | None) -> None:
    """Delete the chunks on ``subject`` (nothing when ``None``)."""
    if subject is not None:
        await _js(side).purge_stream(layout.chunks, subject=subject)


async def write_checkpoint(
    side: AsyncioSide, layout: Layout, key: str, value: bytes, last: int | None
) -> int | None:
    """Write the KV value of ``key``: created when ``last`` is ``None``, else only at
    revision ``last``. The new revision, or ``None`` when someone else wrote first."""
    kv = await side.key_value(layout.bucket)
    try:
        if last is None:
            return int(await kv.create(encode_token(key), value))
        return int(await kv.update(encode_token(key), value, last=last))
    except nats.js.errors.KeyWrongLastSequenceError:
        return None


async def delete_checkpoint(side: AsyncioSide, layout: Layout, key: str, last: int) -> bool:
    """Delete ``key`` if it is still at revision ``last``."""
    kv = await side.key_value(layout.bucket)
    try:
        return bool(await kv.delete(encode_token(key), last=last))
    except nats.js.errors.KeyWrongLastSequenceError:
        return False


async def checkpoint_keys(side: AsyncioSide, layout: Layout) -> list[str]:
    """Every live checkpoint key."""
    kv = await side.key_value(layout.bucket)
    try:
        tokens = await kv.keys()
    except nats.js.errors.NoKeysError:
        return []
    return [decode_token(token) for token in tokens]


async def delete_store(side: AsyncioSide, layout: Layout) -> None:
    """Delete every stream and the bucket of the store (those missing are fine)."""
    js = _js(side)
    for name in layout.streams():
        with contextlib.suppress(nats.js.errors.NotFoundError):
            await js.delete_stream(name)
    for bucket in (layout.bucket, f"MS_{layout.prefix}_LEASE"):
        with contextlib.suppress(nats.js.errors.NotFoundError, nats.js.errors.BucketNotFoundError):
            await js.delete_key_value(bucket)
        side.kv.pop(bucket, None)


def is_unreachable(exc: BaseException) -> bool:
    """Whether ``exc`` means the server could not be reached (vs. refused the write)."""
    return isinstance(
        exc,
        nats.errors.TimeoutError
        | nats.errors.NoRespondersError
        | nats.errors.ConnectionClosedError
        | nats.js.errors.ServiceUnavailableError
        | asyncio.TimeoutError,
    )
