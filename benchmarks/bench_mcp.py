"""What a tool call costs when the tool is behind MCP, next to a direct ToolBus call.

Every case calls an echo tool through ``ToolBus.call`` (permission check, validation,
deadline, metrics). On our side the tool is an MCP server's, registered with
``register_mcp_server``: the call crosses the official SDK's client session, the
transport, and our ``McpToolServer`` (itself a ToolBus call on the far side). The
baseline calls ``EchoTool`` registered directly on the bus, in the same run.

- stdio: ``python -m mister_smith.cli mcp serve --tools echo`` as a child process;
- HTTP: ``McpToolServer.serve_http`` on 127.0.0.1 in the same process (hypercorn);
- memory: ``McpToolServer`` in the same process over memory streams (the protocol and
  the SDK's layers alone, no I/O).

Starting the server and connecting is setup, not timed. Skipped when the ``mcp`` extra
is not installed.
"""

from __future__ import annotations

import importlib.util
import sys
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import trio

from benchmarks import BenchCase, Latency
from mister_smith.supervision import open_supervisor
from mister_smith.tools import EchoTool, ToolBus

ARGS = {"message": "ping"}
BASELINE = "ToolBus.call of EchoTool registered in-process (same bus checks)"
ROOT = Path(__file__).resolve().parent.parent


def cases(quick: bool) -> Sequence[BenchCase]:
    """MCP round trips over stdio, HTTP and memory streams against a direct call."""
    if importlib.util.find_spec("mcp") is None:
        return []
    loops = 100 if quick else 1_000
    return [
        Latency(
            name="MCP tool call, stdio server process",
            loops=loops,
            ours=_mcp_latency(_stdio),
            baseline=_direct_latency,
            baseline_label=BASELINE,
            description="echo via `mister-smith mcp serve` over stdio, through both buses",
        ),
        Latency(
            name="MCP tool call, streamable HTTP on 127.0.0.1",
            loops=loops,
            ours=_mcp_latency(_http),
            baseline=_direct_latency,
            baseline_label=BASELINE,
            description="echo via McpToolServer.serve_http in the same process",
        ),
        Latency(
            name="MCP tool call, in-process over memory streams",
            loops=loops,
            ours=_mcp_latency(_memory),
            baseline=_direct_latency,
            baseline_label=BASELINE,
            description="echo via McpToolServer over memory streams: protocol cost alone",
        ),
    ]


def _served_bus() -> Any:
    from mister_smith.tools.mcp import McpToolServer

    bus = ToolBus()
    client = bus.identities.mint("client")
    bus.register_tool(EchoTool(), callers=[client])
    return McpToolServer(bus, identity=client)


@asynccontextmanager
async def _stdio(bus: ToolBus, supervisor: Any) -> AsyncIterator[None]:
    command = [sys.executable, "-m", "mister_smith.cli", "mcp", "serve", "--tools", "echo"]
    await bus.register_mcp_server(
        "echo", supervisor=supervisor, stdio=command, env={"PYTHONPATH": str(ROOT)}
    )
    yield


@asynccontextmanager
async def _http(bus: ToolBus, supervisor: Any) -> AsyncIterator[None]:
    server = _served_bus()
    async with trio.open_nursery() as nursery:
        url = await nursery.start(lambda task_status: server.serve_http(task_status=task_status))
        await bus.register_mcp_server("echo", supervisor=supervisor, url=url)
        yield
        nursery.cancel_scope.cancel()


@asynccontextmanager
async def _memory(bus: ToolBus, supervisor: Any) -> AsyncIterator[None]:
    from mcp.shared.memory import create_client_server_memory_streams

    server = _served_bus().server

    @asynccontextmanager
    async def connect() -> AsyncIterator[Any]:
        async with (
            create_client_server_memory_streams() as (client, (read, write)),
            trio.open_nursery() as nursery,
        ):
            nursery.start_soon(
                lambda: server.run(read, write, server.create_initialization_options())
            )
            yield client
            nursery.cancel_scope.cancel()

    await bus.register_mcp_server("echo", supervisor=supervisor, transport=connect)
    yield


def _mcp_latency(
    served: Callable[[ToolBus, Any], Any],
) -> Callable[[int], Any]:
    async def run(loops: int) -> list[float]:
        bus = ToolBus()
        caller = bus.identities.mint("bench")
        async with open_supervisor("bench", keep_alive=True) as supervisor:
            async with served(bus, supervisor):
                bus.grant("echo.echo", callers=[caller])
                latencies = await _timed(bus, caller, "echo.echo", loops)
            await supervisor.stop()
        return latencies

    return run


async def _timed(bus: ToolBus, caller: Any, name: str, loops: int) -> list[float]:
    await bus.call(caller, name, ARGS)  # warm up
    latencies = []
    for _ in range(loops):
        started = time.perf_counter()
        await bus.call(caller, name, ARGS)
        latencies.append(time.perf_counter() - started)
    return latencies


async def _direct_latency(loops: int) -> list[float]:
    bus = ToolBus()
    caller = bus.identities.mint("bench")
    bus.register_tool(EchoTool(), callers=[caller])
    return await _timed(bus, caller, "echo", loops)
