"""Review of issue 12, item 1: delegation through an agent's bare ``ActorRef``.

Attack (found in the review): the sibling work carried the delegating identity only
through ``AgentTool(AgentEndpoint(ref))``. ``spawn_agent`` returns an ``ActorRef``, and
``AgentTool(ref, ...)`` is the obvious way to offer that agent to a lead; then the
agent worked under its own grants, so a lead without ``read_secret`` got the secret
read for it by a writer that has it (reproduced under ``RuntimeManager.open()``
defaults: the answer was ``hunter2``). Now ``AgentTool`` sends an agent's ref a
``Delegated`` message carrying the caller, and the agent's calls must be allowed for
both.
"""

from __future__ import annotations

from typing import Any

import trio

from mister_smith import (
    Actor,
    ActorContext,
    AgentSpec,
    AgentTask,
    AgentTool,
    Delegated,
    RuntimeManager,
    ScriptedModel,
    ToolCalled,
    ToolOutcome,
    spawn_agent,
    tool,
)
from mister_smith.agents.script import (
    after_tool,
    answer_with_tool_results,
    call_tools,
    first_turn,
    rule,
)

READS: list[str] = []


@tool
async def read_secret(name: str) -> str:
    """Read a secret (writers only)."""
    await trio.lowlevel.checkpoint()
    READS.append(name)
    return "hunter2"


def calls_then_answers(tool_name: str, args: dict[str, Any]) -> ScriptedModel:
    return ScriptedModel(
        [
            rule(first_turn, call_tools((tool_name, args))),
            rule(after_tool(tool_name), answer_with_tool_results("{results}")),
        ]
    )


async def test_an_agent_ref_offered_as_a_tool_works_on_the_callers_behalf(
    autojump_clock: trio.abc.Clock,
) -> None:
    READS.clear()
    async with RuntimeManager.open() as runtime:
        bus, ids = runtime.tool_bus, runtime.identities
        writer_role, coordinator = ids.register_role("writer"), ids.register_role("coordinator")
        bus.register_tool(read_secret, roles=[writer_role])
        writer = await spawn_agent(
            runtime.actor_system,
            AgentSpec("writer"),
            calls_then_answers("read_secret", {"name": "db"}),
            bus,
            name="writer",
            roles=[writer_role],
        )
        assert writer.accepts_delegated
        bus.register_tool(
            AgentTool(writer, name="ask_writer", description="w"), roles=[coordinator]
        )
        lead = await spawn_agent(
            runtime.actor_system,
            AgentSpec("lead"),
            calls_then_answers("ask_writer", {"message": "get the db secret"}),
            bus,
            name="lead",
            roles=[coordinator],
        )
        result = await lead.ask("go", timeout=10)
        assert "hunter2" not in result.answer
        assert "acting for lead" in result.answer
        assert READS == []
        denied = [e for e in runtime.events.history(ToolCalled) if e.outcome is ToolOutcome.DENIED]
        assert [(e.tool, e.caller) for e in denied] == [("read_secret", "writer (for lead)")]
        # The writer asked directly (by the application) still may read it.
        assert (await writer.ask("read it", timeout=10)).answer == "hunter2"
        # A lead granted the tool itself may have it read for it.
        bus.grant("read_secret", callers=[lead])
        assert "hunter2" in (await lead.ask("go", timeout=10)).answer
        assert READS == ["db", "db"]
        await runtime.graceful_shutdown()


class Calculator(Actor):
    """A plain actor offered as a tool: it must keep getting bare messages."""

    async def handle(self, message: Any, ctx: ActorContext) -> Any:
        assert isinstance(message, str), message
        return f"{message} = 4"


async def test_a_plain_actor_ref_still_gets_the_bare_message(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with RuntimeManager.open() as runtime:
        bus, ids = runtime.tool_bus, runtime.identities
        user = ids.register_role("user")
        calculator = await runtime.actor_system.spawn(Calculator, name="calculator")
        assert not calculator.accepts_delegated
        bus.register_tool(AgentTool(calculator, name="calc", description="c"), roles=[user])
        caller = ids.mint("someone", roles=[user])
        assert await bus.call(caller, "calc", {"message": "2+2"}) == "2+2 = 4"
        await runtime.graceful_shutdown()


def test_a_delegated_task_puts_its_delegators_first() -> None:
    inner = AgentTask("inner", on_behalf_of=("b",))
    task = AgentTask.coerce(Delegated(inner, ("a",)))
    assert (task.prompt, task.on_behalf_of, task.task_id) == ("inner", ("a", "b"), inner.task_id)
    assert AgentTask.coerce(Delegated("text", ["x"])).on_behalf_of == ("x",)
    assert Delegated(inner, ()).correlation_id is None
