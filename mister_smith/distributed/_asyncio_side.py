"""The asyncio half of the NATS bridge: nats-py on a loop of its own, in its own thread.

Nothing here touches Trio objects. It talks to the Trio half only through two deques
and one wake-up each way (``loop.call_soon_threadsafe`` in, ``TrioToken.run_sync_soon``
out): a wake-up carries every operation or result queued since the previous one, so a
burst of a thousand publishes costs one cross-thread hand-off, not a thousand.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

import nats
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription as NatsSubscription
from nats.js.kv import KeyValue

# Operations, Trio -> asyncio (tuples: the hot path allocates nothing else).
PUB = 0
"""``(PUB, subject, data, headers, reply, size)``"""
REQ = 1
"""``(REQ, rid, subject, data, headers, timeout)``"""
CALL = 2
"""``(CALL, rid, fn)``: ``await fn(side)`` as a task."""
CANCEL = 3
"""``(CANCEL, rid)``: cancel the task of request or call ``rid``."""

# Results, asyncio -> Trio.
MSG = 10
"""``(MSG, sid, msg)``: a message for subscription ``sid``."""
DONE = 11
"""``(DONE, rid, value, error)``: request or call ``rid`` finished."""
DRAINED = 12
"""``(DRAINED, nbytes, failed)``: outbound bytes handed to nats-py, publishes it refused."""
STATE = 13
"""``(STATE, name, server)``: ``connected``, ``disconnected``, ``reconnected`` or ``closed``."""
READY = 14
"""``(READY, error)``: the first connection attempt ended (``error`` is ``None`` on success)."""

Post = Callable[[tuple[Any, ...]], None]


class AsyncioSide:
    """One incarnation of the connection: a nats-py client on a fresh asyncio loop.

    Built on the Trio thread (so :meth:`stop` can always reach the loop), run by
    :meth:`run` in a worker thread. ``ops`` is the shared Trio -> asyncio queue;
    ``post`` hands results back to Trio.
    """

    def __init__(
        self,
        ops: collections.deque[tuple[Any, ...]],
        post: Post,
        *,
        url: str,
        name: str,
        connect_timeout: float,
        reconnect_wait: float,
        max_reconnect_attempts: int,
        close_timeout: float,
        resubscribe: list[tuple[int, str, str]],
    ) -> None:
        self.loop = asyncio.new_event_loop()
        self.ops = ops
        self.post = post
        self.url = url
        self.name = name
        self.connect_timeout = connect_timeout
        self.reconnect_wait = reconnect_wait
        self.max_reconnect_attempts = max_reconnect_attempts
        self.close_timeout = close_timeout
        self.resubscribe = resubscribe
        self.nc: Client | None = None
        self.subs: dict[int, NatsSubscription] = {}
        self.kv: dict[str, KeyValue] = {}
        self.pulls: dict[str, Any] = {}
        """JetStream pull subscriptions by ``stream/durable`` (made on first fetch)."""
        self.tasks: dict[int, asyncio.Task[None]] = {}
        self.wake_pending = False
        """Set by the Trio side when it has scheduled a wake-up; cleared here before
        each drain of :attr:`ops` (so no wake-up is ever lost, a few are spurious)."""
        self.wakeups = 0
        self.stopping = False
        self._wake: asyncio.Event | None = None
        self._stop: asyncio.Event | None = None

    # -- called from the Trio thread -------------------------------------------------------

    def wake(self) -> None:
        """Schedule a drain of :attr:`ops` (thread-safe; a no-op once the loop is closed)."""
        with contextlib.suppress(RuntimeError):  # closed: this incarnation is over
            self.loop.call_soon_threadsafe(self._set_wake)

    def stop(self) -> None:
        """Ask the loop to close the client and end :meth:`run` (thread-safe)."""
        self.stopping = True
        with contextlib.suppress(RuntimeError):
            self.loop.call_soon_threadsafe(self._set_stop)

    # -- the worker thread -----------------------------------------------------------------

    def run(self) -> None:
        """Run the loop until :meth:`stop` (the body of the worker thread).

        ``asyncio.Runner`` then cancels and awaits every task nats-py left (its
        subscription readers, say, when the server was gone), so nothing outlives the
        loop it belongs to.
        """
        with asyncio.Runner(loop_factory=lambda: self.loop) as runner:
            runner.run(self._main())

    def _set_wake(self) -> None:
        if self._wake is not None:
            self._wake.set()

    def _set_stop(self) -> None:
        if self._stop is not None:
            self._stop.set()

    async def _main(self) -> None:
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()
        if self.stopping:
            self._stop.set()
        try:
            nc = await nats.connect(
                self.url,
                name=self.name,
                connect_timeout=self.connect_timeout,
                reconnect_time_wait=self.reconnect_wait,
                max_reconnect_attempts=self.max_reconnect_attempts,
                allow_reconnect=True,
                disconnected_cb=self._disconnected,
                reconnected_cb=self._reconnected,
                closed_cb=self._closed,
                error_cb=self._error,
            )
            self.nc = nc
            for sid, subject, queue in self.resubscribe:
                await self.subscribe(sid, subject, queue)
        except Exception as exc:
            if self.nc is not None:
                await self._close()
            self.post((READY, exc))
            return
        self.post((READY, None))
        writer = asyncio.create_task(self._writer(nc))
        try:
            await self._stop.wait()
        finally:
            writer.cancel()
            for task in list(self.tasks.values()):
                task.cancel()
            await asyncio.gather(writer, *self.tasks.values(), return_exceptions=True)
            await self._close()

    async def _close(self) -> None:
        nc = self.nc
        if nc is None or nc.is_closed:
            return
        with contextlib.suppress(Exception):  # best effort: the loop goes away next
            await asyncio.wait_for(nc.close(), self.close_timeout)

    async def _writer(self, nc: Client) -> None:
        """Carry out queued operations in order, each wake-up draining the whole queue."""
        wake = self._wake
        assert wake is not None
        ops = self.ops
        while True:
            await wake.wait()
            wake.clear()
            self.wake_pending = False
            self.wakeups += 1
            drained = 0
            failed = 0
            while ops:
                op = ops.popleft()
                kind = op[0]
                if kind == PUB:
                    _, subject, data, headers, reply, size = op
                    drained += size
                    try:
                        await nc.publish(subject, data, reply=reply, headers=headers)
                    except Exception:  # core NATS is at most once: counted, not raised
                        failed += 1
                elif kind == REQ:
                    _, rid, subject, data, headers, timeout = op
                    self._start(rid, self._request(rid, nc, subject, data, headers, timeout))
                elif kind == CALL:
                    _, rid, fn = op
                    self._start(rid, self._call(rid, fn))
                elif kind == CANCEL:
                    task = self.tasks.pop(op[1], None)
                    if task is not None:
                        task.cancel()
            if drained or failed:
                self.post((DRAINED, drained, failed))

    def _start(self, rid: int, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self.tasks[rid] = task
        task.add_done_callback(lambda _t: self.tasks.pop(rid, None))

    async def _request(
        self,
        rid: int,
        nc: Client,
        subject: str,
        data: bytes,
        headers: dict[str, str] | None,
        timeout: float,
    ) -> None:
        try:
            msg = await nc.request(subject, data, timeout=timeout, headers=headers)
        except asyncio.CancelledError:
            raise  # the Trio caller gave up: nobody is waiting
        except Exception as exc:
            self.post((DONE, rid, None, exc))
        else:
            self.post((DONE, rid, msg, None))

    async def _call(self, rid: int, fn: Callable[[AsyncioSide], Awaitable[Any]]) -> None:
        try:
            value = await fn(self)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.post((DONE, rid, None, exc))
        else:
            self.post((DONE, rid, value, None))

    # -- helpers the Trio side's calls run here ----------------------------------------------

    async def subscribe(self, sid: int, subject: str, queue: str) -> None:
        """Subscribe ``sid``: every message is posted to Trio as ``(MSG, sid, msg)``."""
        nc = self.nc
        assert nc is not None
        post = self.post

        async def deliver(msg: Msg) -> None:
            post((MSG, sid, msg))

        self.subs[sid] = await nc.subscribe(subject, queue=queue, cb=deliver)

    async def unsubscribe(self, sid: int) -> None:
        """Drop subscription ``sid`` (a no-op when unknown), draining it: the server is
        told, a round trip makes sure it sent everything it routed here before, and
        every such message is posted to Trio before this returns."""
        sub = self.subs.pop(sid, None)
        if sub is not None:
            await sub.drain()  # type: ignore[no-untyped-call]

    async def key_value(self, bucket: str) -> KeyValue:
        """The KV bucket ``bucket`` (looked up once per incarnation)."""
        kv = self.kv.get(bucket)
        if kv is None:
            assert self.nc is not None
            kv = await self.nc.jetstream().key_value(bucket)
            self.kv[bucket] = kv
        return kv

    # -- nats-py callbacks ---------------------------------------------------------------

    def _server(self) -> str:
        nc = self.nc
        url = None if nc is None else nc.connected_url
        return "" if url is None else url.geturl()

    async def _disconnected(self) -> None:
        if not self.stopping:
            self.post((STATE, "disconnected", self._server()))

    async def _reconnected(self) -> None:
        self.post((STATE, "reconnected", self._server()))

    async def _closed(self) -> None:
        if not self.stopping:
            self.post((STATE, "closed", self._server()))

    async def _error(self, error: Exception) -> None:
        # Reported through the state callbacks above; nats-py logs the details.
        return None
