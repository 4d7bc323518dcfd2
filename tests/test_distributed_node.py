"""Nodes: the cluster registry, queue groups across nodes, singletons and shards placed
by lease and moved when their node dies (a real process killed with SIGKILL), and
reconnecting after the NATS server restarts."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import trio
from distributed_fixtures import nats_url, open_nodes, unique

from mister_smith.actors import Actor, ActorContext, open_actor_system
from mister_smith.cli._cluster_node import WIRE, PackageReport, Surveyor, SurveyPackage
from mister_smith.config import DistributedSettings
from mister_smith.distributed import (
    NatsHealthCheck,
    NatsServer,
    NatsUnavailable,
    ShardRegion,
    SingletonPlaced,
    SingletonReleased,
    open_node,
)
from mister_smith.errors import ActorNotFound
from mister_smith.resources import HealthStatus
from mister_smith.transport import MessageBus

__all__ = ["nats_url"]

PACKAGE = Path(__file__).resolve().parent.parent / "mister_smith"


class Echo(Actor):
    def __init__(self, tag: str = "") -> None:
        self.tag = tag

    async def handle(self, message: Any, ctx: ActorContext) -> Any:
        return [self.tag, message]


async def test_registry_lists_names_and_live_nodes(nats_url: str) -> None:
    async with open_nodes(nats_url, 2) as [(_, n1), (_, n2)]:
        await n1.spawn(Echo, "a", name="alpha")
        await n2.spawn(Echo, "b", name="beta")
        assert await n1.registry.nodes() == ["n1", "n2"]
        assert await n2.registry.names() == ["alpha", "beta"]
        entry = await n2.registry.lookup("alpha")
        assert entry is not None
        assert (entry.node, entry.kind) == ("n1", "actor")
        assert await (await n2.lookup("alpha")).ask("hi", timeout=5) == ["a", "hi"]
        with pytest.raises(ValueError, match="cannot name a NATS subject"):
            await n1.spawn(Echo, name="bad.name")
        with pytest.raises(ValueError, match="cannot name a NATS subject"):
            n1.remote("*")


async def test_queue_group_spans_nodes(nats_url: str) -> None:
    async with open_nodes(nats_url, 3) as [(s1, n1), (s2, n2), (_, client)]:
        await n1.join_group("pool", await s1.spawn(Echo, "one", name="m1"))
        bus = MessageBus()  # a local bus group, shared with the cluster
        bus.join("pool", await s2.spawn(Echo, "two", name="m2"))
        assert await n2.share_group(bus, "pool") == 1
        assert await n2.share_group(bus, "pool") == 0  # already shared
        pool = client.group("pool")
        seen = [(await pool.ask(i, timeout=5))[0] for i in range(40)]
        assert set(seen) == {"one", "two"}  # each message to one member, both used
        assert seen.count("one") + seen.count("two") == 40


async def test_leaving_node_hands_its_singleton_over_at_once(nats_url: str) -> None:
    cluster = unique("c")
    settings = DistributedSettings(nats_url=nats_url, cluster=cluster, registry_ttl=3.0)
    async with (
        open_actor_system() as s1,
        open_actor_system() as s2,
        open_node(s2, settings=settings, node_name="n2") as n2,
    ):
        async with open_node(s1, settings=settings, node_name="n1") as n1:
            ref = await n1.singleton("boss", Echo, "on-n1")
            await n2.singleton("boss", Echo, "on-n2")
            assert n1.placement.held == ["boss"]
            assert n2.placement.held == []
            assert await ref.ask("x", timeout=5) == ["on-n1", "x"]
        # n1 left: its lease was released, so n2 takes it at its next round
        # (a third of the TTL), without waiting for the lease to expire (the TTL)
        left_at = trio.current_time()
        with trio.fail_after(15):
            while n2.placement.held != ["boss"]:
                await trio.sleep(0.05)
        assert trio.current_time() - left_at < 3.0 * 0.75
        assert await n2.remote("boss").ask("y", timeout=5) == ["on-n2", "y"]
        released = list(s1.events.history(SingletonReleased))
        assert [(e.singleton, e.reason) for e in released] == [("boss", "node shutting down")]


async def test_a_singleton_is_listed_as_held_only_once_it_is_served(nats_url: str) -> None:
    # `held` once listed a singleton as soon as its lease was taken, while its actor was
    # still starting: an ask made on seeing it held found no node serving it.
    settings = DistributedSettings(nats_url=nats_url, cluster=unique("c"), registry_ttl=3.0)
    held_while_starting: list[list[str]] = []
    async with open_actor_system() as system, open_node(system, settings=settings) as node:
        spawn = node._spawn

        async def spawn_and_look(*args: Any, **kwargs: Any) -> Any:
            held_while_starting.append(node.placement.held)
            ref = await spawn(*args, **kwargs)
            held_while_starting.append(node.placement.held)
            return ref

        node._spawn = spawn_and_look  # type: ignore[method-assign]
        await node.singleton("boss", Echo, "here")
        assert node.placement.held == ["boss"]
        assert await node.remote("boss").ask("y", timeout=5) == ["here", "y"]
    assert held_while_starting == [[], []]


async def test_killed_nodes_shards_restart_on_a_survivor(nats_url: str) -> None:
    """A node process holding shards is SIGKILLed: its leases expire after the TTL,
    this node starts its shards (SingletonPlaced naming the dead node), the registry
    drops the dead node, and the same refs reach the shards here."""
    cluster = unique("c")
    command = [
        sys.executable,
        "-m",
        "mister_smith.cli",
        "node",
        "--nats-url",
        nats_url,
        "--cluster",
        cluster,
        "--name",
        "doomed",
        "--shards",
        "4",
        "--registry-ttl",
        "1",
    ]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
    try:
        assert process.stdout is not None
        line = await trio.to_thread.run_sync(process.stdout.readline)
        assert line.strip() == b"ready doomed"
        settings = DistributedSettings(nats_url=nats_url, cluster=cluster, registry_ttl=1.0)
        async with (
            open_actor_system() as system,
            open_node(system, settings=settings, node_name="survivor", wire=WIRE) as node,
        ):
            done = [0]
            region = await node.sharded(
                "surveyor", Surveyor, PACKAGE, "survivor", 0.0, done, shards=4
            )
            assert isinstance(region, ShardRegion)
            # the two nodes share the 4 shards out (the first one hands two over)
            with trio.fail_after(15):
                while len(node.placement.held) != 2:
                    await trio.sleep(0.05)
            mine = set(node.placement.held)
            for package in ("actors", "agents", "config", "events", "tools"):
                report = await region.ask(package, SurveyPackage(package), timeout=5)
                assert isinstance(report, PackageReport)
                expected = "survivor" if region.ref_for(package).name in mine else "doomed"
                assert report.node == expected
            assert await node.registry.nodes() == ["doomed", "survivor"]
            process.send_signal(signal.SIGKILL)
            process.wait()
            killed_at = trio.current_time()
            with trio.fail_after(15):
                while len(node.placement.held) != 4:
                    await trio.sleep(0.05)
            moved_after = trio.current_time() - killed_at
            assert moved_after < 1.0 + 2.0  # TTL plus a round or so
            placed = [e for e in system.events.history(SingletonPlaced) if e.timestamp > killed_at]
            assert sorted(e.singleton for e in placed) == sorted(
                {f"surveyor-{i}" for i in range(4)} - mine
            )
            assert {e.previous_node for e in placed} == {"doomed"}
            for package in ("actors", "agents", "config", "events", "tools"):
                report = await region.ask(package, SurveyPackage(package), timeout=5)
                assert report.node == "survivor"
            with trio.fail_after(5):
                while "doomed" in await node.registry.nodes():
                    await trio.sleep(0.1)
            with pytest.raises(ActorNotFound):
                await node.lookup("stats-doomed")  # its registry entry expired too
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()


async def test_node_survives_a_server_restart(tmp_path: Path) -> None:
    server = NatsServer(tmp_path)
    url = await server.start()
    try:
        settings = DistributedSettings(
            nats_url=url, cluster="restart", reconnect_wait=0.05, max_reconnect_attempts=1000
        )
        async with (
            open_actor_system() as s1,
            open_actor_system() as s2,
            open_node(s1, settings=settings, node_name="n1") as n1,
            open_node(s2, settings=settings, node_name="n2") as n2,
        ):
            await n1.spawn(Echo, "e", name="echo")
            ref = n2.remote("echo")
            assert await ref.ask(1, timeout=5) == ["e", 1]
            await server.stop()
            with trio.fail_after(5):
                while n2.connected:
                    await trio.sleep(0.01)
            report = await NatsHealthCheck(n2.bridge, "n2").check()
            assert report.status is HealthStatus.UNHEALTHY
            assert report.reason == "the NATS connection is disconnected"
            start = trio.current_time()
            with pytest.raises(NatsUnavailable):
                await ref.ask(2, timeout=30)  # fails fast, not after 30 s
            assert trio.current_time() - start < 0.5
            await server.start()
            with trio.fail_after(10):
                await n1.bridge.wait_connected()
                await n2.bridge.wait_connected()
            with trio.fail_after(10):
                while True:  # the subscription is made again with the connection
                    try:
                        assert await ref.ask(3, timeout=5) == ["e", 3]
                        break
                    except ActorNotFound:
                        await trio.sleep(0.05)
    finally:
        await server.stop()
