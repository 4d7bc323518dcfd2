"""Spans around actor messages and tool calls, and how the runtime wires them."""

from __future__ import annotations

import importlib
from typing import Any

import pytest
import trio

from mister_smith.actors import Actor, ActorContext, open_actor_system
from mister_smith.config import AgentConfig, MonitoringSettings
from mister_smith.monitoring import (
    MESSAGE_SPAN,
    TOOL_SPAN,
    TracingMiddleware,
    opentelemetry_available,
    tracer,
)
from mister_smith.runtime import RuntimeManager
from mister_smith.tools import EchoTool, ToolBus


@pytest.fixture
def exporter() -> Any:
    pytest.importorskip("opentelemetry.sdk.trace")
    sdk_trace: Any = importlib.import_module("opentelemetry.sdk.trace")
    export: Any = importlib.import_module("opentelemetry.sdk.trace.export")
    memory: Any = importlib.import_module("opentelemetry.sdk.trace.export.in_memory_span_exporter")
    exporter = memory.InMemorySpanExporter()
    provider = sdk_trace.TracerProvider()
    provider.add_span_processor(export.SimpleSpanProcessor(exporter))
    exporter.provider = provider
    return exporter


class CallsEcho(Actor):
    def __init__(self, tools: ToolBus) -> None:
        self.tools = tools

    async def handle(self, message: Any, ctx: ActorContext) -> Any:
        return await self.tools.call(ctx.identity, "echo", {"message": message})


async def test_message_and_tool_spans_nest(exporter: Any, autojump_clock: trio.abc.Clock) -> None:
    spans = tracer(sampling_rate=1.0, tracer_provider=exporter.provider)
    async with open_actor_system(middleware=[TracingMiddleware(spans)]) as system:
        tools = ToolBus(tracing=spans.tool_span, identities=system.identities)
        ref = await system.spawn(CallsEcho, tools, name="caller")
        tools.register_tool(EchoTool(), callers=[ref])
        assert await ref.ask("hi") == {"message": "hi"}
    tool, message = exporter.get_finished_spans()
    assert (tool.name, message.name) == (TOOL_SPAN, MESSAGE_SPAN)
    assert message.attributes["mister_smith.actor"] == "caller"
    assert tool.attributes["mister_smith.tool"] == "echo"
    assert tool.attributes["mister_smith.caller"] == "caller"
    assert tool.parent.span_id == message.context.span_id


async def test_unsampled_calls_record_nothing(
    exporter: Any, autojump_clock: trio.abc.Clock
) -> None:
    spans = tracer(sampling_rate=0.0, tracer_provider=exporter.provider)
    tools = ToolBus(tracing=spans.tool_span, default_policy="open")
    tools.register_tool(EchoTool())
    assert await tools.call("me", "echo", {"message": "x"}) == {"message": "x"}
    assert exporter.get_finished_spans() == ()


async def test_runtime_wires_spans_only_when_they_can_record(
    autojump_clock: trio.abc.Clock,
) -> None:
    sampled = AgentConfig(monitoring=MonitoringSettings(trace_sampling_rate=0.5))
    async with RuntimeManager.open(sampled) as runtime:
        wired = runtime.tool_bus.tracing is not None
        layers = [type(m).__name__ for m in runtime.actor_system.middleware]
    assert wired is opentelemetry_available()
    assert ("TracingMiddleware" in layers) is opentelemetry_available()
    off = AgentConfig(monitoring=MonitoringSettings(trace_sampling_rate=0.0))
    async with RuntimeManager.open(off) as runtime:
        assert runtime.tool_bus.tracing is None
        assert runtime.actor_system.middleware == ()
