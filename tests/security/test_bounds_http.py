"""Issue 12, item 6: a slow or silent HTTP client cannot hold the monitoring server.

The review's case: a client that sent ``GET /metrics`` and never read the answer held
shutdown open for ever (hypercorn writes inside a shielded scope with no deadline).
Each attack here uses a raw socket on 127.0.0.1: a client that stops reading, one that
sends a request slowly or never finishes it, one with a huge head, many idle ones.
Real sockets, so real time: every wait is short and bounded.
"""

from __future__ import annotations

import socket
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import trio
from prometheus_client import CollectorRegistry, Counter

from mister_smith.monitoring import HttpLimits, HttpServer, serve_monitoring
from mister_smith.resources import HealthMonitor

BIG = 32 * 1024 * 1024  # far more than the kernel buffers of both ends hold
FAST = HttpLimits(read_timeout=0.3, write_timeout=0.4, graceful_timeout=0.2, max_connections=4)


async def big_body(scope: Any, receive: Any, send: Any) -> None:
    """An ASGI app answering every request with 32 MiB."""
    await receive()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-length", str(BIG).encode())],
        }
    )
    await send({"type": "http.response.body", "body": bytes(BIG)})


async def small_body(scope: Any, receive: Any, send: Any) -> None:
    await receive()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok\n"})


@asynccontextmanager
async def running(
    app: Any, limits: HttpLimits
) -> AsyncIterator[tuple[HttpServer, int, trio.CancelScope]]:
    """The server on a free loopback port, its port, and the scope that stops it."""
    server = HttpServer(app, limits)
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = int(listeners[0].socket.getsockname()[1])
    async with trio.open_nursery() as nursery:
        await nursery.start(server.serve, listeners)
        yield server, port, nursery.cancel_scope
        nursery.cancel_scope.cancel()


@contextmanager
def open_client() -> Iterator[socket.socket]:
    """A blocking socket that reads only when told (a small receive buffer)."""
    client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    client.settimeout(2.0)
    try:
        yield client
    finally:
        client.close()


@contextmanager
def raw_client(port: int) -> Iterator[socket.socket]:
    """:func:`open_client`, connected to ``port`` on 127.0.0.1."""
    with open_client() as client:
        client.connect(("127.0.0.1", port))
        yield client


async def wait_until(condition: Any, timeout: float = 3.0) -> None:
    with trio.fail_after(timeout):
        while not condition():
            await trio.sleep(0.01)


async def test_a_client_that_never_reads_cannot_hold_shutdown() -> None:
    limits = HttpLimits(write_timeout=30.0, graceful_timeout=0.2)  # only shutdown ends it
    with open_client() as client:  # stays open, unread, until the server has stopped
        async with running(big_body, limits) as (server, port, stop):
            client.connect(("127.0.0.1", port))
            client.sendall(b"GET /metrics HTTP/1.1\r\nhost: x\r\n\r\n")
            await wait_until(lambda: server.writing == 1)
            await trio.sleep(0.1)  # the write is stuck: the client reads nothing
            assert server.writing == 1
            started = time.perf_counter()
            stop.cancel()
        took = time.perf_counter() - started
    assert took < limits.graceful_timeout + 0.5, f"shutdown took {took:.2f} s"
    assert took >= limits.graceful_timeout * 0.9  # the response did get its grace
    assert server.dropped_writes == 1


async def test_a_client_that_stops_reading_is_dropped_at_the_write_deadline() -> None:
    async with running(big_body, FAST) as (server, port, _):
        with raw_client(port) as client:
            client.sendall(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
            started = time.perf_counter()
            await wait_until(lambda: server.dropped_writes == 1)
            assert time.perf_counter() - started < FAST.write_timeout + 0.5
            await wait_until(lambda: server.open_connections == 0)


async def test_slow_or_unfinished_requests_are_dropped_at_the_read_deadline() -> None:
    async with running(small_body, FAST) as (server, port, _):
        with raw_client(port) as silent, raw_client(port) as slow:
            slow.sendall(b"GET / HTTP/1.1\r\nhost:")  # never finished
            await wait_until(lambda: server.open_connections == 2)
            started = time.perf_counter()
            await wait_until(lambda: server.open_connections == 0)
            assert time.perf_counter() - started < FAST.read_timeout + 0.5
            assert server.timed_out_reads == 2
            assert await trio.to_thread.run_sync(silent.recv, 100) == b""  # closed on it


async def test_idle_connections_do_not_delay_shutdown() -> None:
    with open_client() as first, open_client() as second:
        # Neither the read timeout nor the grace a response being written gets applies
        # to an idle connection: both are set far above the bound checked (which leaves
        # room for a loaded CI machine, unlike a bound a few scheduling rounds long).
        limits = HttpLimits(read_timeout=30.0, graceful_timeout=10.0)
        async with running(small_body, limits) as (server, port, stop):
            first.connect(("127.0.0.1", port))
            second.connect(("127.0.0.1", port))
            second.sendall(b"GET / HTTP/1.1\r\nhost: x\r\n")  # headers never end
            await wait_until(lambda: server.open_connections == 2)
            started = time.perf_counter()
            stop.cancel()
        assert time.perf_counter() - started < 2.0
        assert await trio.to_thread.run_sync(first.recv, 100) == b""  # closed by the server


async def test_a_huge_request_head_is_refused_with_431() -> None:
    async with running(small_body, FAST) as (_, port, _):
        with raw_client(port) as client:
            padding = b"a" * 200_000  # more than one read; h11 refuses past 16 KiB
            client.sendall(b"GET / HTTP/1.1\r\nhost: x\r\nx-pad: " + padding + b"\r\n\r\n")
            answer = await trio.to_thread.run_sync(client.recv, 200)
    assert answer.startswith(b"HTTP/1.1 431 ")


async def test_connections_past_the_limit_are_closed_unanswered() -> None:
    async with running(small_body, FAST) as (server, port, _):
        with contextmanager_stack(port, FAST.max_connections + 3) as clients:
            await wait_until(lambda: server.refused_connections == 3)
            assert server.open_connections == FAST.max_connections
            assert len(clients) == FAST.max_connections + 3


@contextmanager
def contextmanager_stack(port: int, count: int) -> Iterator[list[socket.socket]]:
    clients = [socket.create_connection(("127.0.0.1", port), timeout=2.0) for _ in range(count)]
    try:
        yield clients
    finally:
        for client in clients:
            client.close()


async def test_serve_monitoring_shuts_down_in_bounds_with_a_stuck_scraper() -> None:
    """The endpoint itself: a large /metrics that the scraper never reads."""
    registry = CollectorRegistry()
    series = Counter("padding", "Series with long names.", ["name"], registry=registry)
    for index in range(2_000):
        series.labels(name=f"{index:05d}-" + "p" * 2_000).inc()  # about 4 MiB of text
    limits = HttpLimits(graceful_timeout=0.2)
    with open_client() as client:  # stays open, unread, until the server has stopped
        async with trio.open_nursery() as nursery:
            port = await nursery.start(
                lambda task_status: serve_monitoring(
                    health=HealthMonitor(),
                    registry=registry,
                    limits=limits,
                    task_status=task_status,
                )
            )
            client.connect(("127.0.0.1", port))
            client.sendall(b"GET /metrics HTTP/1.1\r\nhost: x\r\n\r\n")
            first = await trio.to_thread.run_sync(client.recv, 64)
            assert first.startswith(b"HTTP/1.1 200 ")  # rendered; now it stops reading
            await trio.sleep(0.2)
            started = time.perf_counter()
            nursery.cancel_scope.cancel()
        took = time.perf_counter() - started
    assert took < limits.graceful_timeout + 0.5, f"shutdown took {took:.2f} s"


async def test_keep_alive_still_works_within_the_limits() -> None:
    async with running(small_body, FAST) as (_, port, _):
        with raw_client(port) as client:
            for _ in range(3):
                client.sendall(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
                answer = await trio.to_thread.run_sync(client.recv, 200)
                assert answer.startswith(b"HTTP/1.1 200 ")
                assert answer.endswith(b"ok\n\r\n0\r\n\r\n")  # chunked: no length given
