"""The monitoring endpoints, hit by a real HTTP client over 127.0.0.1 (real time, short)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import attrs
import httpx
import pytest
import trio

from mister_smith.events import EventBus, ToolCalled, ToolOutcome
from mister_smith.monitoring import FrameworkMetrics, serve_monitoring
from mister_smith.resources import FunctionCheck, HealthMonitor
from mister_smith.tools import EchoTool, ToolBus


@attrs.define
class Switch:
    healthy: bool = True

    async def check(self) -> bool:
        await trio.sleep(0)
        return self.healthy


@attrs.define
class Stack:
    """A monitor, metrics on a bus, and the server on a free loopback port."""

    bus: EventBus
    health: HealthMonitor
    metrics: FrameworkMetrics
    switch: Switch
    client: httpx.AsyncClient
    base: str
    nursery: trio.Nursery


@pytest.fixture
async def stack() -> AsyncIterator[Stack]:
    bus = EventBus()
    switch = Switch()
    health = HealthMonitor([FunctionCheck("db", switch.check)], events=bus)
    metrics = FrameworkMetrics()
    metrics.attach(bus)
    metrics.add_health(health)
    async with trio.open_nursery() as nursery, httpx.AsyncClient(timeout=5.0) as client:
        port = await nursery.start(
            lambda task_status: serve_monitoring(
                "127.0.0.1",
                0,
                health=health,
                registry=metrics.registry,
                task_status=task_status,
            )
        )
        assert isinstance(port, int)
        assert port > 0
        yield Stack(bus, health, metrics, switch, client, f"http://127.0.0.1:{port}", nursery)
        nursery.cancel_scope.cancel()


async def test_liveness(stack: Stack) -> None:
    response = await stack.client.get(f"{stack.base}/health/live")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.headers["cache-control"] == "no-store"
    assert response.json()["status"] == "healthy"


async def test_readiness_is_checked_on_request_then_follows_checks(stack: Stack) -> None:
    # No round has run yet: the request runs one rather than answering "starting"
    # from nothing (readiness reflects the current state, not a 30 s-old round).
    assert stack.health.readiness().reason == "starting"
    response = await stack.client.get(f"{stack.base}/health/ready")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "healthy"
    assert body["checks"]["db"]["status"] == "healthy"
    assert 0 <= body["age_seconds"] < 1.0

    stack.switch.healthy = False
    await stack.health.check_now()
    response = await stack.client.get(f"{stack.base}/health/ready")
    assert response.status_code == 503
    assert response.json()["checks"]["db"]["status"] == "unhealthy"


async def test_metrics_are_served_and_change_after_activity(stack: Stack) -> None:
    response = await stack.client.get(f"{stack.base}/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    text = response.text
    for name in (
        "mister_smith_actors",
        "mister_smith_tool_calls_total",
        "mister_smith_events_emitted_total",
        "mister_smith_ready",
    ):
        assert f"# TYPE {name.removesuffix('_total')}" in text
    assert "mister_smith_ready 0.0" in text
    assert 'tool="search"' not in text

    tools = ToolBus()
    tools.register_tool(EchoTool(name="search"))  # only registered tools are labelled by name
    stack.metrics.add_tool_registry(tools)
    stack.bus.emit(ToolCalled(tool="search", caller="a", outcome=ToolOutcome.OK, duration=0.1))
    await stack.health.check_now()
    text = (await stack.client.get(f"{stack.base}/metrics")).text
    assert 'mister_smith_tool_calls_total{outcome="ok",tool="search"} 1.0' in text
    assert "mister_smith_ready 1.0" in text
    assert 'mister_smith_health_status{component="db",status="healthy"} 1.0' in text


async def test_openmetrics_when_asked(stack: Stack) -> None:
    response = await stack.client.get(
        f"{stack.base}/metrics", headers={"accept": "application/openmetrics-text"}
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/openmetrics-text")
    assert response.text.endswith("# EOF\n")


async def test_other_paths_and_methods(stack: Stack) -> None:
    assert (await stack.client.get(f"{stack.base}/")).status_code == 404
    response = await stack.client.post(f"{stack.base}/metrics")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, HEAD"
    head = await stack.client.head(f"{stack.base}/health/live")
    assert head.status_code == 200
    assert head.content == b""


async def test_server_stops_on_cancellation() -> None:
    health = HealthMonitor()
    metrics = FrameworkMetrics()
    async with httpx.AsyncClient(timeout=2.0) as client:
        with trio.fail_after(5):
            async with trio.open_nursery() as nursery:
                port = await nursery.start(
                    lambda task_status: serve_monitoring(
                        health=health, registry=metrics.registry, task_status=task_status
                    )
                )
                assert (await client.get(f"http://127.0.0.1:{port}/health/live")).status_code == 200
                nursery.cancel_scope.cancel()
        with pytest.raises(httpx.ConnectError):
            await client.get(f"http://127.0.0.1:{port}/health/live")
