"""Review of issue 12, item 1: "every denial is a ``ToolCalled`` event with outcome DENIED".

Attack (found in the review): a model asking for a tool outside its agent's
``AgentSpec.allowed_tools`` (or an agent without a tool bus) was refused by the agent
itself, before the bus: the model got a ``ToolPermissionDenied`` but no event was
emitted, so monitoring and audit saw nothing of a model probing for tools it may not
use. Now the agent announces those refusals like the bus does.
"""

from __future__ import annotations

import trio

from mister_smith import (
    AgentSpec,
    EchoTool,
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


def probing_model() -> ScriptedModel:
    return ScriptedModel(
        [
            rule(first_turn, call_tools(("write_file", {"path": "x"}), ("echo", {"message": "m"}))),
            rule(after_tool("echo"), answer_with_tool_results("{results}")),
        ]
    )


async def test_calls_outside_allowed_tools_are_announced_as_denied(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with RuntimeManager.open() as runtime:
        tester = runtime.identities.register_role("tester")
        runtime.tool_bus.register_tool(EchoTool(), roles=[tester])
        agent = await spawn_agent(
            runtime.actor_system,
            AgentSpec("tester", allowed_tools={"echo"}),
            probing_model(),
            runtime.tool_bus,
            name="prober",
            roles=[tester],
        )
        lone = await spawn_agent(
            runtime.actor_system, AgentSpec("lone"), probing_model(), None, name="lone"
        )
        result = await agent.ask("go", timeout=10)
        assert "ToolPermissionDenied" in result.answer
        assert result.tool_errors == 1
        await lone.ask("go", timeout=10)
        events = runtime.events.history(ToolCalled)
        denied = [(e.source, e.tool, e.caller) for e in events if e.outcome is ToolOutcome.DENIED]
        assert sorted(denied) == [
            ("lone", "echo", "lone"),
            ("lone", "write_file", "lone"),
            ("prober", "write_file", "prober"),
        ]
        assert [e.tool for e in events if e.outcome is ToolOutcome.OK] == ["echo"]
        # Counted under the bounded labels: write_file is not registered, so "unknown".
        metrics = runtime.metrics.registry
        assert (
            metrics.get_sample_value(
                "mister_smith_tool_calls_total", {"tool": "unknown", "outcome": "denied"}
            )
            == 2
        )
        await runtime.graceful_shutdown()
