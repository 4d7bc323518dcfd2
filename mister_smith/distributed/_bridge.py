"""The NATS bridge: the Trio half, and the narrow interface the rest of the layer uses.

No maintained Trio-native NATS client exists, and nats-py inside Trio through
trio-asyncio costs 4-12x the throughput. So nats-py runs on an asyncio loop of its own
in a worker thread (see ``_asyncio_side``), and the two loops hand work over in
*batches*: each direction keeps one deque and schedules at most one wake-up of the other
loop until that loop has drained it.

Both hand-offs are bounded. Outbound, publishes are counted in bytes until nats-py has
taken them: ``await publish()`` waits for room (backpressure), ``publish_nowait()``
raises :class:`~mister_smith.errors.MailboxFull`. Inbound, each subscription delivers
into a bounded Trio channel and counts what it had to drop (core NATS is at most once:
a slow consumer loses messages, it never blocks the connection).

The interface is kept narrow on purpose (request, publish and flush, subscribe into a
channel, JetStream publish/fetch/ack, KV get/put/create/update/delete/keys, state), so a
Trio-native client could replace the bridge later without touching what is built on it.
"""

from __future__ import annotations

import collections
import contextlib
import enum
import itertools
import math
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

import attrs
import nats.errors
import nats.js.api
import nats.js.errors
import trio
from trio_util import AsyncValue

from ..errors import MailboxFull
from ..events import EventBus
from ._asyncio_side import CALL, CANCEL, DONE, DRAINED, MSG, PUB, READY, REQ, STATE, AsyncioSide
from ._errors import BridgeClosed, NatsUnavailable, PayloadTooLarge
from ._events import NatsConnectionChanged

T = TypeVar("T")

_HEADER_OVERHEAD = 64
"""Bytes counted per publish on top of its payload (subject, headers, framing)."""


class ConnectionState(enum.Enum):
    """Where the bridge's connection is."""

    STOPPED = "stopped"
    """Not started, or between two incarnations of the connection child."""
    CONNECTING = "connecting"
    CONNECTED = "connected"
    DISCONNECTED = "disconnected"
    """Lost; nats-py is reconnecting. Remote calls fail fast meanwhile."""
    CLOSED = "closed"
    """The client gave up; supervision restarts the connection child."""


@attrs.frozen
class BridgeSettings:
    """How the bridge connects and how much it buffers.

    Attributes:
        url: The NATS server URL (``nats://host:port``).
        name: Connection name shown by the server.
        outbound_bytes: Bytes of publishes waiting for nats-py at most.
        inbound_capacity: Messages a subscription buffers before dropping (default for
            :meth:`NatsBridge.subscribe`).
        connect_timeout: Seconds for the first connection.
        reconnect_wait: Seconds between reconnect attempts.
        max_reconnect_attempts: Attempts before the client gives up (the child crashes
            and is restarted by its supervisor with backoff).
        close_timeout: Seconds the client gets to close on shutdown.
    """

    url: str = "nats://127.0.0.1:4222"
    name: str = "mister-smith"
    outbound_bytes: int = attrs.field(default=8 * 1024 * 1024)
    inbound_capacity: int = 1000
    connect_timeout: float = 2.0
    reconnect_wait: float = 0.5
    max_reconnect_attempts: int = 60
    close_timeout: float = 2.0

    @outbound_bytes.validator
    def _positive(self, attribute: attrs.Attribute[int], value: int) -> None:
        if value < 1024:
            raise ValueError(f"outbound_bytes must be >= 1024, got {value!r}")


@attrs.frozen
class BridgeStatistics:
    """Counters of the bridge (since it was built, over every incarnation)."""

    state: ConnectionState
    published: int
    """Publishes handed to nats-py."""
    publish_failures: int
    """Publishes nats-py refused (e.g. its reconnect buffer was full): lost."""
    refused_full: int
    """``publish_nowait`` calls refused because the outbound bound was reached."""
    outbound_bytes: int
    """Bytes queued for nats-py now."""
    outbound_limit: int
    received: int
    """Messages delivered into subscription channels."""
    dropped: int
    """Messages dropped because a subscription's channel was full."""
    requests_in_flight: int
    wakeups_to_asyncio: int
    wakeups_to_trio: int
    connects: int
    disconnects: int


@attrs.frozen
class InboundMessage:
    """A message received from NATS.

    Attributes:
        subject: Where it was published.
        reply: The reply subject (empty for a plain publish).
        headers: Its headers (empty when it had none).
        data: The payload.
    """

    subject: str
    reply: str
    headers: Mapping[str, str]
    data: bytes


_NO_HEADERS: Mapping[str, str] = {}


def _inbound(msg: Any) -> InboundMessage:
    return InboundMessage(msg.subject, msg.reply, msg.headers or _NO_HEADERS, msg.data)


class Subscription:
    """A subscription of the bridge: messages arrive on a bounded Trio channel.

    Iterate it (``async for message in subscription``) or call :meth:`receive`. When
    the channel is full, new messages are dropped and counted in the ``dropped`` attribute. It
    survives reconnects and restarts of the connection child (the bridge subscribes
    again each time) until :meth:`unsubscribe`.
    """

    def __init__(
        self, bridge: NatsBridge, sid: int, subject: str, queue: str, capacity: int
    ) -> None:
        self.bridge = bridge
        self.sid = sid
        self.subject = subject
        self.queue = queue
        self.capacity = capacity
        self._send, self._receive = trio.open_memory_channel[InboundMessage](capacity)
        self.delivered = 0
        self.dropped = 0

    def _offer(self, msg: Any) -> None:
        try:
            self._send.send_nowait(_inbound(msg))
        except (trio.WouldBlock, trio.ClosedResourceError, trio.BrokenResourceError):
            self.dropped += 1
            self.bridge._dropped += 1
        else:
            self.delivered += 1
            self.bridge._received += 1

    async def receive(self) -> InboundMessage:
        """The next message (waits for one).

        Raises:
            trio.EndOfChannel: the subscription was dropped.
        """
        return await self._receive.receive()

    def receive_nowait(self) -> InboundMessage:
        """The next message if one is buffered.

        Raises:
            trio.WouldBlock: none is buffered.
        """
        return self._receive.receive_nowait()

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> InboundMessage:
        try:
            return await self._receive.receive()
        except trio.EndOfChannel:
            raise StopAsyncIteration from None

    async def unsubscribe(self) -> None:
        """Stop receiving; buffered messages can still be read, then iteration ends."""
        await self.bridge._unsubscribe(self)


@attrs.define(eq=False, slots=True)
class _Pending:
    """A request or call waiting for the asyncio side."""

    event: trio.Event = attrs.field(factory=trio.Event)
    value: Any = None
    error: BaseException | None = None

    def settle(self, value: Any, error: BaseException | None) -> None:
        if not self.event.is_set():
            self.value = value
            self.error = error
            self.event.set()


class NatsBridge:
    """nats-py on its own asyncio thread, reached from Trio through batched, bounded
    hand-offs both ways.

    Run :meth:`serve` as a supervised child (``Node`` does): it connects, reports
    ``started``, and runs until cancelled; when the client gives up it raises
    :class:`~mister_smith.distributed.BridgeClosed` so its supervisor restarts it with
    backoff. The bridge object outlives those restarts (like an actor's mailbox):
    subscriptions are made again on every new connection.

    While the connection is not up, every call fails at once with
    :class:`~mister_smith.distributed.NatsUnavailable` (a
    :class:`~mister_smith.errors.CircuitOpenError`), and requests in flight when it drops
    fail with it too instead of waiting out their timeout. Cancelling a Trio caller
    cancels the matching asyncio work.
    """

    def __init__(
        self,
        settings: BridgeSettings | None = None,
        *,
        events: EventBus | None = None,
        source: str = "nats",
    ) -> None:
        self.settings = BridgeSettings() if settings is None else settings
        self.events = events
        self.source = source
        # What code waits on (wait_connected, serve waiting for the client to give up).
        self._state = AsyncValue(ConnectionState.STOPPED)
        self._server = ""
        self._ops: collections.deque[tuple[Any, ...]] = collections.deque()
        self._results: collections.deque[tuple[Any, ...]] = collections.deque()
        self._results_wake_pending = False
        self._side: AsyncioSide | None = None
        self._token: trio.lowlevel.TrioToken | None = None
        self._pending: dict[int, _Pending] = {}
        self._subs: dict[int, Subscription] = {}
        self._ids = itertools.count(1)
        self._queued_bytes = 0
        self._room = trio.lowlevel.ParkingLot()
        self._ready: trio.Event | None = None
        self._ready_error: BaseException | None = None
        self._thread_limiter = trio.CapacityLimiter(1)
        self._down_since = 0.0
        # counters
        self._published = 0
        self._publish_failures = 0
        self._refused_full = 0
        self._received = 0
        self._dropped = 0
        self._wakeups_to_asyncio = 0
        self._wakeups_to_trio = 0
        self._connects = 0
        self._disconnects = 0

    # -- state ---------------------------------------------------------------------------

    @property
    def state(self) -> ConnectionState:
        """The connection's state now."""
        return self._state.value

    @property
    def server(self) -> str:
        """The URL of the server connected to (empty when not connected)."""
        return self._server

    def _set_state(self, state: ConnectionState) -> None:
        old = self._state.value
        if state is old:
            return
        self._state.value = state  # wakes the tasks waiting for this state
        if state is ConnectionState.CONNECTED:
            self._connects += 1
        elif old is ConnectionState.CONNECTED:
            self._down_since = trio.current_time()
            if state is ConnectionState.DISCONNECTED:
                self._disconnects += 1
            self._fail_pending(f"the NATS connection is {state.value}")
        self._room.unpark_all()  # parked publishers re-check the state
        if self.events is not None:
            self.events.emit(
                NatsConnectionChanged(
                    source=self.source,
                    node=self.source,
                    old_state=old.value,
                    new_state=state.value,
                    server=self._server,
                )
            )

    def _unavailable(self) -> NatsUnavailable:
        retry_at = self._down_since + self.settings.reconnect_wait
        return NatsUnavailable(
            f"{self.source}: the NATS connection is {self.state.value}; "
            "remote calls fail fast until it is back",
            retry_at=retry_at,
        )

    def _check_up(self) -> None:
        if self._state.value is not ConnectionState.CONNECTED:
            raise self._unavailable()

    def _fail_pending(self, reason: str) -> None:
        """Fail every request and call in flight now (nats-py would let them wait out
        their timeout), and cancel their asyncio work."""
        if not self._pending:
            return
        pending, self._pending = self._pending, {}
        error = self._unavailable()
        for rid, item in pending.items():
            item.settle(None, error)
            self._submit((CANCEL, rid))

    async def wait_connected(self) -> None:
        """Wait until the connection is up."""
        await self._state.wait_value(ConnectionState.CONNECTED)
        while self._state.value is not ConnectionState.CONNECTED:
            # It went down again before this task ran: wait for the next time it is up.
            await self._state.wait_value(ConnectionState.CONNECTED)

    def statistics(self) -> BridgeStatistics:
        """The bridge's counters."""
        return BridgeStatistics(
            state=self._state.value,
            published=self._published,
            publish_failures=self._publish_failures,
            refused_full=self._refused_full,
            outbound_bytes=self._queued_bytes,
            outbound_limit=self.settings.outbound_bytes,
            received=self._received,
            dropped=self._dropped,
            requests_in_flight=len(self._pending),
            wakeups_to_asyncio=self._wakeups_to_asyncio,
            wakeups_to_trio=self._wakeups_to_trio,
            connects=self._connects,
            disconnects=self._disconnects,
        )

    # -- the supervised child --------------------------------------------------------------

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Run one incarnation of the connection: connect, report started, run until
        cancelled.

        Raises:
            BridgeClosed: the first connection failed, or the client gave up
                reconnecting (supervision restarts this child).
        """
        if self._side is not None:
            raise RuntimeError("NatsBridge.serve is already running")
        settings = self.settings
        self._token = trio.lowlevel.current_trio_token()
        self._ready = trio.Event()
        self._ready_error = None
        side = AsyncioSide(
            self._ops,
            self._post,
            url=settings.url,
            name=settings.name,
            connect_timeout=settings.connect_timeout,
            reconnect_wait=settings.reconnect_wait,
            max_reconnect_attempts=settings.max_reconnect_attempts,
            close_timeout=settings.close_timeout,
            resubscribe=[(s.sid, s.subject, s.queue) for s in self._subs.values()],
        )
        self._side = side
        self._set_state(ConnectionState.CONNECTING)
        failure: BridgeClosed | None = None
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._run_thread, side)
                try:
                    await self._ready.wait()
                    error = self._connect_error()
                    if error is not None:
                        failure = BridgeClosed(
                            f"{self.source}: could not connect to {settings.url}: {error!r}"
                        )
                        failure.__cause__ = error
                    else:
                        self._server = side._server() or settings.url
                        if self._state.value is ConnectionState.CONNECTING:
                            # (Unless a later state, posted with READY, is already in.)
                            self._set_state(ConnectionState.CONNECTED)
                        task_status.started()
                        await self._state.wait_value(ConnectionState.CLOSED)
                        failure = BridgeClosed(
                            f"{self.source}: the NATS client gave up reconnecting to "
                            f"{settings.url} after {settings.max_reconnect_attempts} attempts"
                        )
                finally:
                    side.stop()
            # Raised here, outside the nursery, so callers see it bare (not in a group).
            raise failure
        finally:
            # The worker thread has ended: nothing posts any more.
            self._drain_results()
            self._side = None
            self._set_state(ConnectionState.STOPPED)
            self._fail_pending("the NATS connection child stopped")
            lost = sum(1 for op in self._ops if op[0] == PUB)
            self._publish_failures += lost
            self._ops.clear()
            self._queued_bytes = 0
            self._room.unpark_all()

    def _connect_error(self) -> BaseException | None:
        """Why the first connection of this incarnation failed (``None``: it did not)."""
        return self._ready_error

    async def _run_thread(self, side: AsyncioSide) -> None:
        # Not abandoned on cancel: the thread ends promptly once side.stop() is called,
        # and the loop and the client never outlive this task.
        await trio.to_thread.run_sync(side.run, limiter=self._thread_limiter)

    # -- the hand-offs -----------------------------------------------------------------------

    def _submit(self, op: tuple[Any, ...]) -> None:
        side = self._side
        if side is None:
            return
        self._ops.append(op)
        if not side.wake_pending:
            side.wake_pending = True
            token = self._token
            assert token is not None
            # Woken once the tasks runnable now have run: everything they queue goes in
            # one wake-up (waking the other thread also makes this one wait for the GIL).
            token.run_sync_soon(self._wake_side, side)

    def _wake_side(self, side: AsyncioSide) -> None:
        self._wakeups_to_asyncio += 1
        side.wake()

    def _post(self, item: tuple[Any, ...]) -> None:
        """Called on the asyncio thread: queue ``item`` for Trio, waking it at most once."""
        self._results.append(item)
        if not self._results_wake_pending:
            self._results_wake_pending = True
            token = self._token
            if token is not None:
                with contextlib.suppress(trio.RunFinishedError):
                    token.run_sync_soon(self._drain_results)

    def _drain_results(self) -> None:
        """Runs on the Trio thread: handle every result posted since the last wake-up."""
        self._results_wake_pending = False
        self._wakeups_to_trio += 1
        results = self._results
        subs = self._subs
        while results:
            item = results.popleft()
            kind = item[0]
            if kind == MSG:
                sub = subs.get(item[1])
                if sub is not None:
                    sub._offer(item[2])
            elif kind == DONE:
                pending = self._pending.pop(item[1], None)
                if pending is not None:
                    pending.settle(item[2], item[3])
            elif kind == DRAINED:
                self._queued_bytes = max(0, self._queued_bytes - item[1])
                self._publish_failures += item[2]
                self._room.unpark_all()
            elif kind == STATE:
                self._on_state(item[1], item[2])
            elif kind == READY:
                self._ready_error = item[1]
                if self._ready is not None:
                    self._ready.set()

    def _on_state(self, name: str, server: str) -> None:
        if name == "disconnected":
            self._set_state(ConnectionState.DISCONNECTED)
        elif name == "reconnected":
            self._server = server
            self._set_state(ConnectionState.CONNECTED)
        elif name == "closed":
            self._set_state(ConnectionState.CLOSED)  # serve() raises: the client gave up

    # -- publishing ----------------------------------------------------------------------------

    def _size(self, subject: str, data: bytes, headers: Mapping[str, str] | None) -> int:
        size = len(data) + len(subject) + _HEADER_OVERHEAD
        if headers:
            size += sum(len(k) + len(v) + 4 for k, v in headers.items())
        if size > self.settings.outbound_bytes:
            raise PayloadTooLarge(
                f"a publish of {size} bytes to {subject!r} exceeds the bridge's outbound "
                f"bound of {self.settings.outbound_bytes} bytes"
            )
        return size

    def publish_nowait(
        self,
        subject: str,
        data: bytes,
        *,
        headers: Mapping[str, str] | None = None,
        reply: str = "",
    ) -> None:
        """Queue a publish without waiting.

        Raises:
            MailboxFull: the outbound bound (``outbound_bytes``) is reached.
            NatsUnavailable: the connection is down.
            PayloadTooLarge: this one message is larger than the whole bound.
        """
        self._check_up()
        size = self._size(subject, data, headers)
        if self._queued_bytes + size > self.settings.outbound_bytes:
            self._refused_full += 1
            raise MailboxFull(
                f"{self.source}: {self._queued_bytes} bytes already wait to be published "
                f"(outbound bound {self.settings.outbound_bytes} bytes)"
            )
        self._queued_bytes += size
        self._published += 1
        self._submit((PUB, subject, data, dict(headers) if headers else None, reply, size))

    async def publish(
        self,
        subject: str,
        data: bytes,
        *,
        headers: Mapping[str, str] | None = None,
        reply: str = "",
    ) -> None:
        """Queue a publish, waiting while the outbound bound is reached (backpressure).

        Raises:
            NatsUnavailable: the connection is down (or went down while waiting).
            PayloadTooLarge: this one message is larger than the whole bound.
        """
        await trio.lowlevel.checkpoint_if_cancelled()
        self._check_up()
        size = self._size(subject, data, headers)
        while self._queued_bytes + size > self.settings.outbound_bytes:
            await self._room.park()
            self._check_up()
        self._queued_bytes += size
        self._published += 1
        self._submit((PUB, subject, data, dict(headers) if headers else None, reply, size))
        await trio.lowlevel.cancel_shielded_checkpoint()

    async def flush(self, timeout: float = 5.0) -> None:
        """Wait until every publish queued so far has reached the server."""
        await self._call(lambda side: _flush(side, timeout))

    # -- request / reply -------------------------------------------------------------------------

    async def request(
        self,
        subject: str,
        data: bytes,
        *,
        timeout: float,
        headers: Mapping[str, str] | None = None,
    ) -> InboundMessage:
        """Publish ``data`` and wait for one reply.

        ``timeout`` bounds the asyncio side; the caller's own cancel scope bounds the
        wait too, and cancelling the caller cancels the request.

        Raises:
            NatsUnavailable: the connection is down, or dropped while waiting.
            nats.errors.NoRespondersError: nobody subscribes to ``subject``.
            nats.errors.TimeoutError: no reply within ``timeout``.
        """
        if not timeout > 0:
            raise ValueError(f"request timeout must be > 0, got {timeout!r}")
        await trio.lowlevel.checkpoint_if_cancelled()
        self._check_up()
        rid = next(self._ids)
        pending = _Pending()
        self._pending[rid] = pending
        wire_timeout = timeout if math.isfinite(timeout) else 3600.0 * 24
        self._submit((REQ, rid, subject, data, dict(headers) if headers else None, wire_timeout))
        try:
            await pending.event.wait()
        except BaseException:
            if self._pending.pop(rid, None) is not None:
                self._submit((CANCEL, rid))
            raise
        if pending.error is not None:
            raise pending.error
        return _inbound(pending.value)

    async def _call(self, fn: Callable[[AsyncioSide], Awaitable[T]]) -> T:
        """Run ``await fn(side)`` on the asyncio loop and return its result."""
        await trio.lowlevel.checkpoint_if_cancelled()
        self._check_up()
        rid = next(self._ids)
        pending = _Pending()
        self._pending[rid] = pending
        self._submit((CALL, rid, fn))
        try:
            await pending.event.wait()
        except BaseException:
            if self._pending.pop(rid, None) is not None:
                self._submit((CANCEL, rid))
            raise
        if pending.error is not None:
            raise pending.error
        value: T = pending.value
        return value

    # -- subscriptions --------------------------------------------------------------------------

    async def subscribe(
        self, subject: str, *, queue: str = "", capacity: int | None = None
    ) -> Subscription:
        """Subscribe to ``subject`` (in queue group ``queue`` when given): messages are
        delivered to the returned subscription's bounded channel.

        Raises:
            NatsUnavailable: the connection is down.
        """
        capacity = self.settings.inbound_capacity if capacity is None else capacity
        if capacity < 1:
            raise ValueError(f"subscription capacity must be >= 1, got {capacity!r}")
        sid = next(self._ids)
        sub = Subscription(self, sid, subject, queue, capacity)
        self._subs[sid] = sub
        try:
            await self._call(lambda side: side.subscribe(sid, subject, queue))
        except BaseException:
            self._subs.pop(sid, None)
            raise
        return sub

    async def _unsubscribe(self, sub: Subscription) -> None:
        if sub.sid not in self._subs:
            await trio.lowlevel.checkpoint()
            return
        try:
            if self._state.value is ConnectionState.CONNECTED:
                # Drained first: a message the server routed here before it saw the
                # unsubscribe still lands in the channel (a request is then answered
                # by whoever reads it, instead of waiting out its timeout).
                await self._call(lambda side: side.unsubscribe(sub.sid))
            else:
                await trio.lowlevel.checkpoint()
        finally:
            self._subs.pop(sub.sid, None)
            sub._send.close()

    # -- JetStream ---------------------------------------------------------------------------------

    async def js_publish(
        self, subject: str, data: bytes, *, headers: Mapping[str, str] | None = None
    ) -> int:
        """Publish to a JetStream stream and wait for its acknowledgement; returns the
        stream sequence."""
        hdrs = dict(headers) if headers else None

        async def run(side: AsyncioSide) -> int:
            assert side.nc is not None
            ack = await side.nc.jetstream().publish(subject, data, headers=hdrs)
            return int(ack.seq)

        return await self._call(run)

    async def js_ensure_stream(
        self, name: str, subjects: list[str], *, max_age: float | None = None
    ) -> None:
        """Create the JetStream stream ``name`` over ``subjects`` unless it exists
        (messages older than ``max_age`` seconds are discarded, when given)."""

        async def run(side: AsyncioSide) -> None:
            assert side.nc is not None
            js = side.nc.jetstream()
            try:
                await js.stream_info(name)
            except nats.js.errors.NotFoundError:
                await js.add_stream(name=name, subjects=subjects, max_age=max_age)

        await self._call(run)

    async def js_fetch(
        self,
        stream: str,
        durable: str,
        *,
        subject: str,
        batch: int = 10,
        timeout: float = 1.0,
        ack_wait: float = 30.0,
    ) -> list[InboundMessage]:
        """Fetch up to ``batch`` messages for the durable pull consumer ``durable`` of
        ``stream`` (made on first use, filtered to ``subject``), waiting at most
        ``timeout`` seconds; ``[]`` when none came. Acknowledge each with
        :meth:`js_ack`, or JetStream redelivers it after ``ack_wait`` seconds
        (at-least-once; ``ack_wait`` is set when the consumer is made)."""
        if not 1 <= batch <= 10_000:
            raise ValueError(f"batch must be in [1, 10000], got {batch!r}")

        async def run(side: AsyncioSide) -> list[Any]:
            assert side.nc is not None
            key = f"{stream}/{durable}"
            pull = side.pulls.get(key)
            if pull is None:
                config = nats.js.api.ConsumerConfig(ack_wait=ack_wait)
                pull = await side.nc.jetstream().pull_subscribe(
                    subject, durable=durable, stream=stream, config=config
                )
                side.pulls[key] = pull
            try:
                return list(await pull.fetch(batch, timeout=timeout))
            except nats.errors.TimeoutError:
                return []

        return [_inbound(msg) for msg in await self._call(run)]

    async def js_ack(self, message: InboundMessage) -> None:
        """Acknowledge a message fetched with :meth:`js_fetch` (JetStream will not
        deliver it again). An ack is a publish to the message's reply subject, so it
        waits for room in the outbound bound like any publish."""
        if not message.reply.startswith("$JS.ACK."):
            raise ValueError(f"not a JetStream message (reply {message.reply!r})")
        await self.publish(message.reply, b"+ACK")

    async def kv_ensure_bucket(self, bucket: str, *, ttl: float, history: int = 1) -> None:
        """Create the KV bucket ``bucket`` (entries expire ``ttl`` seconds after their
        last write) unless it exists."""

        async def run(side: AsyncioSide) -> None:
            assert side.nc is not None
            js = side.nc.jetstream()
            try:
                side.kv[bucket] = await js.key_value(bucket)
            except nats.js.errors.BucketNotFoundError:
                side.kv[bucket] = await js.create_key_value(bucket=bucket, ttl=ttl, history=history)

        await self._call(run)

    async def kv_get(self, bucket: str, key: str) -> tuple[bytes, int] | None:
        """The value and revision of ``key``, or ``None`` when absent (or expired)."""

        async def run(side: AsyncioSide) -> tuple[bytes, int] | None:
            kv = await side.key_value(bucket)
            try:
                entry = await kv.get(key)
            except (nats.js.errors.KeyNotFoundError, nats.js.errors.KeyDeletedError):
                return None
            return (entry.value or b"", int(entry.revision or 0))

        return await self._call(run)

    async def kv_put(self, bucket: str, key: str, value: bytes) -> int:
        """Write ``key`` (whatever it held); returns the new revision."""

        async def run(side: AsyncioSide) -> int:
            kv = await side.key_value(bucket)
            return int(await kv.put(key, value))

        return await self._call(run)

    async def kv_create(self, bucket: str, key: str, value: bytes) -> int | None:
        """Write ``key`` only if it is absent: the new revision, or ``None`` when it
        exists (someone else holds it)."""

        async def run(side: AsyncioSide) -> int | None:
            kv = await side.key_value(bucket)
            try:
                return int(await kv.create(key, value))
            except nats.js.errors.KeyWrongLastSequenceError:
                return None

        return await self._call(run)

    async def kv_update(self, bucket: str, key: str, value: bytes, *, last: int) -> int | None:
        """Write ``key`` only if its revision is still ``last``: the new revision, or
        ``None`` when it changed (or expired) meanwhile."""

        async def run(side: AsyncioSide) -> int | None:
            kv = await side.key_value(bucket)
            try:
                return int(await kv.update(key, value, last=last))
            except nats.js.errors.KeyWrongLastSequenceError:
                return None

        return await self._call(run)

    async def kv_delete(self, bucket: str, key: str, *, last: int | None = None) -> bool:
        """Delete ``key`` (only at revision ``last`` when given); whether it was deleted."""

        async def run(side: AsyncioSide) -> bool:
            kv = await side.key_value(bucket)
            try:
                return bool(await kv.delete(key, last=last))
            except nats.js.errors.KeyWrongLastSequenceError:
                return False

        return await self._call(run)

    async def kv_keys(self, bucket: str, prefix: str = "") -> list[str]:
        """The live keys of ``bucket`` starting with ``prefix``."""

        async def run(side: AsyncioSide) -> list[str]:
            kv = await side.key_value(bucket)
            try:
                keys = await kv.keys()  # (its filters match substrings, not subjects)
            except nats.js.errors.NoKeysError:
                return []
            return [k for k in keys if k.startswith(prefix)]

        return await self._call(run)


async def _flush(side: AsyncioSide, timeout: float) -> None:
    assert side.nc is not None
    try:
        await side.nc.flush(timeout=timeout)  # type: ignore[arg-type]
    except nats.errors.FlushTimeoutError as exc:
        raise TimeoutError(f"NATS flush took longer than {timeout} s") from exc
