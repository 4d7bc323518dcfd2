"""Review of issue 12: the parts composed under ``RuntimeManager.open()`` defaults.

Each part was tested on its own; these put them together the way a deployment does:

* the bounded h11 monitoring server under slow clients (one dripping its request, one
  never reading a large ``/metrics``, one idle) while the runtime shuts down;
* an agent granted the HTTP tool, whose model asks it to fetch the runtime's own
  monitoring endpoint on 127.0.0.1 (even with that host allow-listed): refused as a
  loopback address, announced as DENIED, and nothing reaches the endpoint.

Real sockets on 127.0.0.1, so real time: every wait is short and bounded.
"""

from __future__ import annotations

import socket
import time

import trio
from prometheus_client import Counter

from mister_smith import (
    AgentConfig,
    AgentSpec,
    MonitoringSettings,
    RuntimeManager,
    ScriptedModel,
    ToolCalled,
    ToolOutcome,
    spawn_agent,
)
from mister_smith.agents.script import (
    after_tool,
    answer_with_tool_results,
    call_tools,
    first_turn,
    rule,
)
from mister_smith.monitoring._http import DEFAULT_GRACEFUL_TIMEOUT
from mister_smith.tools import HttpGetTool

CONFIG = AgentConfig(monitoring=MonitoringSettings(http_port=0))


def client(port: int) -> socket.socket:
    connection = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    connection.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    connection.settimeout(2.0)
    connection.connect(("127.0.0.1", port))
    return connection


async def test_slow_clients_cannot_hold_the_runtimes_shutdown() -> None:
    clients: list[socket.socket] = []
    try:
        async with RuntimeManager.open(CONFIG, serve_http=True) as runtime:
            padding = Counter(
                "padding", "Long series.", ["name"], registry=runtime.metrics.registry
            )
            for index in range(2_000):  # about 4 MiB of exposition
                padding.labels(name=f"{index:05d}-" + "p" * 2_000).inc()
            port = runtime.http_port
            assert port
            never_reads, drips, idle = client(port), client(port), client(port)
            clients += [never_reads, drips, idle]
            never_reads.sendall(b"GET /metrics HTTP/1.1\r\nhost: x\r\n\r\n")
            first = await trio.to_thread.run_sync(never_reads.recv, 64)
            assert first.startswith(b"HTTP/1.1 200 ")  # rendered; now it stops reading
            for byte in b"GET /health/live HTTP/1.1\r\nho":
                drips.sendall(bytes([byte]))
                await trio.sleep(0.005)
            started = time.perf_counter()
            await runtime.graceful_shutdown()
            took = time.perf_counter() - started
        assert took < DEFAULT_GRACEFUL_TIMEOUT + 0.5, f"shutdown took {took:.2f} s"
        for connection in (drips, idle):  # closed by the server, not left hanging
            assert await trio.to_thread.run_sync(connection.recv, 100) == b""
    finally:
        for connection in clients:
            connection.close()


async def test_an_agent_cannot_fetch_the_runtimes_own_monitoring_endpoint() -> None:
    async with RuntimeManager.open(CONFIG, serve_http=True) as runtime:
        port = runtime.http_port
        url = f"http://127.0.0.1:{port}/metrics"
        fetcher = runtime.identities.register_role("fetcher")
        runtime.tool_bus.register_tool(
            HttpGetTool([f"127.0.0.1:{port}", f"localhost:{port}"]), roles=[fetcher]
        )
        model = ScriptedModel(
            [
                rule(first_turn, call_tools(("http_get", {"url": url}))),
                rule(after_tool("http_get"), answer_with_tool_results("{results}")),
            ]
        )
        agent = await spawn_agent(
            runtime.actor_system, AgentSpec("fetcher"), model, runtime.tool_bus, roles=[fetcher]
        )
        result = await agent.ask("read the metrics", timeout=10)
        assert "loopback" in result.answer
        assert "mister_smith_" not in result.answer  # no byte of the endpoint came back
        [call] = runtime.events.history(ToolCalled)
        assert (call.tool, call.outcome) == ("http_get", ToolOutcome.DENIED)
        await runtime.graceful_shutdown()
