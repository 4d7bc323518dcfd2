"""Each field of the ``distributed`` settings section acts (the settings-coverage test
in ``test_settings_effects`` points here and to the node and remote tests)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs
import pytest
import trio
from distributed_fixtures import nats_url, unique

from mister_smith.actors import Actor, ActorContext, open_actor_system
from mister_smith.config import AgentConfig, DistributedSettings
from mister_smith.distributed import BridgeClosed, NatsServer, PayloadTooLarge, open_node
from mister_smith.events import EventBus, SupervisionDecision
from mister_smith.resources import HealthStatus
from mister_smith.runtime import RuntimeManager
from mister_smith.supervision import open_supervisor

__all__ = ["nats_url"]


class Echo(Actor):
    async def handle(self, message: Any, ctx: ActorContext) -> Any:
        return message


async def test_the_node_joins_as_configured(nats_url: str) -> None:
    """nats_url, cluster and node_name come from the runtime's config.distributed."""
    cluster = unique("c")
    config = attrs.evolve(
        AgentConfig(),
        distributed=DistributedSettings(nats_url=nats_url, cluster=cluster, node_name="alpha"),
    )
    async with RuntimeManager.open(config) as runtime, open_node(runtime) as node:
        assert node.name == "alpha"
        assert node.bridge.server == nats_url
        assert node.subject_of("x") == f"ms.{cluster}.a.x"
        assert node.registry.bucket == f"ms_{cluster}_registry"
        assert await node.registry.nodes() == ["alpha"]
        await node.spawn(Echo, name="echo")
        reply = await node.bridge.request(
            f"ms.{cluster}.a.echo",
            b"1",
            headers={"Ms-Kind": "ask", "Ms-Type": "json", "Ms-Schema": "1.0.0"},
            timeout=5,
        )
        assert reply.data == b"1"
        # the connection is a required health check of the runtime
        snapshot = await runtime.health.check_now()
        component = snapshot.components["nats:alpha"]
        assert component.required
        assert component.report.status is HealthStatus.HEALTHY
        assert component.report.details["server"] == nats_url
        # and its counters are in the runtime's metrics
        registry = runtime.metrics.registry
        assert registry.get_sample_value("mister_smith_nats_connected", {"node": "alpha"}) == 1
        published = registry.get_sample_value(
            "mister_smith_nats_published_total", {"node": "alpha"}
        )
        assert published is not None
        assert published >= 1
    assert "nats:alpha" not in (await runtime.health.check_now()).components


async def test_connect_timeout_bounds_the_first_connection() -> None:
    """A server that accepts but never speaks: the first connection gives up after
    connect_timeout and open_node fails with BridgeClosed (nothing hangs)."""
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    accepted: list[trio.SocketStream] = []

    async def hold(stream: trio.SocketStream) -> None:
        accepted.append(stream)
        await trio.sleep_forever()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(trio.serve_listeners, hold, listeners)
        settings = DistributedSettings(
            nats_url=f"nats://127.0.0.1:{port}", connect_timeout=0.3, max_reconnect_attempts=1
        )
        start = trio.current_time()
        async with open_actor_system() as system:
            with pytest.raises(BridgeClosed, match="could not connect"):
                async with open_node(system, settings=settings, node_name="n"):
                    pass
        elapsed = trio.current_time() - start
        assert accepted
        assert 0.25 < elapsed < 3
        nursery.cancel_scope.cancel()


async def test_reconnect_settings_bound_how_long_the_client_tries(tmp_path: Path) -> None:
    """reconnect_wait x max_reconnect_attempts: with 3 attempts 0.1 s apart the client
    gives up within about a second of losing the server and its child crashes (to be
    restarted by supervision); with many attempts it is still trying then."""
    server = NatsServer(tmp_path)
    url = await server.start()
    bus = EventBus()
    try:
        async with open_supervisor("s", max_restarts=None, keep_alive=True, events=bus) as sup:
            async with (
                open_actor_system(events=bus) as quick_system,
                open_actor_system(events=bus) as patient_system,
            ):
                quick = DistributedSettings(
                    nats_url=url, reconnect_wait=0.1, max_reconnect_attempts=3
                )
                patient = attrs.evolve(quick, max_reconnect_attempts=1000)
                async with (
                    open_node(quick_system, settings=quick, node_name="quick") as quick_node,
                    open_node(
                        patient_system, settings=patient, node_name="patient"
                    ) as patient_node,
                ):
                    await server.stop()
                    lost = trio.current_time()
                    with trio.fail_after(5):
                        while not any(
                            d.error_type == "BridgeClosed" for d in bus.history(SupervisionDecision)
                        ):
                            await trio.sleep(0.02)
                    assert trio.current_time() - lost < 3
                    crashed = {
                        d.supervisor
                        for d in bus.history(SupervisionDecision)
                        if d.error_type == "BridgeClosed"
                    }
                    assert crashed == {"node-quick"}
                    assert patient_node.bridge.statistics().disconnects == 1
                    assert quick_node.bridge.statistics().disconnects == 1
            await sup.stop()
    finally:
        await server.stop()


async def test_max_payload_bounds_what_crosses_the_wire(nats_url: str) -> None:
    cluster = unique("c")
    settings = DistributedSettings(nats_url=nats_url, cluster=cluster, max_payload=100)
    async with (
        open_actor_system() as system,
        open_node(system, settings=settings, node_name="n") as node,
    ):
        await node.spawn(Echo, name="echo")
        ref = node.remote("echo")
        assert await ref.ask("x" * 50, timeout=5) == "x" * 50
        with pytest.raises(PayloadTooLarge, match=r"distributed\.max_payload is 100"):
            await ref.ask("x" * 200, timeout=5)
        headers = {"Ms-Kind": "tell", "Ms-Type": "json", "Ms-Schema": "1.0.0"}
        await node.bridge.publish(
            node.subject_of("echo"), b'"' + b"y" * 200 + b'"', headers=headers
        )
        with trio.fail_after(5):
            while not node.dead_letters():
                await trio.sleep(0.01)
        assert "exceeds distributed.max_payload (100)" in node.dead_letters()[0].reason
