"""One trace per request: the W3C ``traceparent`` travels on every actor message, so an
``ask`` and everything it causes (agent, model calls with ``gen_ai.*`` attributes, tools,
a delegated agent and its own calls) is one trace, whose shape a test can assert."""

from __future__ import annotations

from typing import Any

import pytest
import trio

from mister_smith import AgentConfig, MonitoringSettings, RuntimeManager
from mister_smith.actors import Actor, ActorContext, ActorRef
from mister_smith.agents import AgentEndpoint, AgentSpec, ScriptedModel, spawn_agent
from mister_smith.agents.script import (
    after_tool,
    answer,
    answer_with_tool_results,
    call_tools,
    first_turn,
    rule,
)
from mister_smith.monitoring import MESSAGE_SPAN, TOOL_SPAN
from mister_smith.testing import TraceRecorder
from mister_smith.tools import AgentTool, EchoTool
from mister_smith.types import TRACEPARENT, format_traceparent, parse_traceparent

pytest.importorskip("opentelemetry.sdk.trace")

TRACED = AgentConfig(monitoring=MonitoringSettings(trace_sampling_rate=1.0))


async def test_an_ask_across_two_agents_and_their_tools_is_one_trace() -> None:
    recorder = TraceRecorder.install()
    async with RuntimeManager.open(TRACED) as runtime:
        bus = runtime.tool_bus
        bus.register_tool(EchoTool(), policy="open")
        helper = await spawn_agent(
            runtime.actor_system,
            AgentSpec("helper"),
            ScriptedModel(
                [
                    rule(first_turn, call_tools(("echo", {"message": "deep"}))),
                    rule(after_tool("echo"), answer_with_tool_results("helper saw {results}")),
                ]
            ),
            bus,
            name="helper",
        )
        bus.register_tool(
            AgentTool(AgentEndpoint(helper), name="ask_helper", description="Ask the helper."),
            policy="open",
        )
        lead = await spawn_agent(
            runtime.actor_system,
            AgentSpec("lead"),
            ScriptedModel(
                [
                    rule(first_turn, call_tools(("ask_helper", {"message": "look"}))),
                    rule(after_tool("ask_helper"), answer("done")),
                ]
            ),
            bus,
            name="lead",
        )
        recorder.clear()
        result = await lead.ask("go", timeout=10)
        assert result.answer == "done"
        await runtime.graceful_shutdown()
    assert recorder.trace_count() == 1
    shape = recorder.shape(keep=["mister_smith.actor", "mister_smith.tool"])
    assert shape.render() == "\n".join(
        [
            MESSAGE_SPAN,
            "  invoke_agent lead",
            "    chat scripted",
            f"    {TOOL_SPAN}",
            f"      {MESSAGE_SPAN}",
            "        invoke_agent helper",
            "          chat scripted",
            f"          {TOOL_SPAN}",
            "          chat scripted",
            "    chat scripted",
        ]
    )
    assert shape.attributes == {"mister_smith.actor": "lead"}
    [ask_helper, echo] = shape.find(TOOL_SPAN)
    assert (ask_helper.attributes, echo.attributes) == (
        {"mister_smith.tool": "ask_helper"},
        {"mister_smith.tool": "echo"},
    )
    chats = [s for s in recorder.spans() if s.name == "chat scripted"]
    assert len(chats) == 4
    for chat in chats:
        attributes = chat.attributes
        assert attributes["gen_ai.operation.name"] == "chat"
        assert attributes["gen_ai.system"] == "scripted"
        assert attributes["gen_ai.request.model"] == "scripted"
        assert attributes["gen_ai.usage.input_tokens"] > 0
        assert attributes["gen_ai.usage.output_tokens"] > 0
        assert attributes["gen_ai.response.finish_reasons"] in ("end_turn", "tool_use")


class Forwarder(Actor):
    """Tells the next actor what it got."""

    def __init__(self, target: ActorRef | None) -> None:
        self.target = target

    async def handle(self, message: Any, ctx: ActorContext) -> Any:
        if self.target is not None:
            await self.target.tell(message)
        return TRACEPARENT.get()


async def test_a_told_message_joins_its_senders_trace() -> None:
    recorder = TraceRecorder.install()
    async with RuntimeManager.open(TRACED) as runtime:
        system = runtime.actor_system
        last = await system.spawn(Forwarder, None, name="last")
        first = await system.spawn(Forwarder, last, name="first")
        carried = await first.ask("hello", timeout=5)
        await trio.sleep(0.01)  # let "last" handle what was told
        await runtime.graceful_shutdown()
    assert carried is not None
    assert parse_traceparent(carried) is not None
    assert recorder.trace_count() == 1
    shape = recorder.shape(keep=["mister_smith.actor"])
    assert shape.attributes == {"mister_smith.actor": "first"}
    [child] = shape.children
    assert child.attributes == {"mister_smith.actor": "last"}


async def test_an_unsampled_request_stays_unsampled_downstream() -> None:
    recorder = TraceRecorder.install()
    off = AgentConfig(monitoring=MonitoringSettings(trace_sampling_rate=0.0))
    async with RuntimeManager.open(off) as runtime:
        system = runtime.actor_system
        last = await system.spawn(Forwarder, None, name="last")
        first = await system.spawn(Forwarder, last, name="first")
        await first.ask("hello", timeout=5)
        await runtime.graceful_shutdown()
    assert recorder.spans() == []


async def test_a_traced_message_is_unwrapped_everywhere() -> None:
    """The envelope carrying the trace context never reaches a handler or a dead
    letter; without a trace nothing is wrapped."""
    async with RuntimeManager.open() as runtime:
        system = runtime.actor_system
        ref = await system.spawn(Forwarder, None, name="plain")
        token = TRACEPARENT.set(format_traceparent(7, 9, True))
        try:
            seen = await ref.ask("x", timeout=5)  # the handler's span's: same trace
            assert seen is not None
            parsed = parse_traceparent(seen)
            assert parsed is not None
            assert parsed[0] == 7
            await ref.stop()
            with pytest.raises(Exception):  # noqa: B017 - stopped: refused at send time
                ref.tell_nowait("late")
        finally:
            TRACEPARENT.reset(token)
        assert await system.spawn(Forwarder, None, name="again") is not None
        await runtime.graceful_shutdown()
    assert parse_traceparent("00-" + "0" * 32 + "-" + "1" * 16 + "-01") is None
    assert parse_traceparent("garbage") is None
    assert parse_traceparent(format_traceparent(1, 2, False)) == (1, 2, False)
