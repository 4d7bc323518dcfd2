"""Delegation carries the delegating identity: no privilege escalation through a teammate.

Attack (issue 12, item 1): a lead that may not call a tool asks a teammate who may, and
the teammate calls it for the lead. Now a task delegated through ``AgentTool`` +
``AgentEndpoint`` (what teams use) carries whom it is done for, and each tool call must
be allowed for all of them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import attrs
import pytest
import trio

from mister_smith import (
    ActorSystem,
    AgentEndpoint,
    AgentRole,
    AgentSpec,
    AgentTool,
    EchoTool,
    EventBus,
    Model,
    ModelResponse,
    Role,
    ScriptedModel,
    SpawnController,
    ToolBus,
    ToolCalled,
    ToolOutcome,
    ToolPermissionDenied,
    create_dynamic_team,
    open_actor_system,
    spawn_agent,
    tool,
)
from mister_smith.agents import ModelRequest
from mister_smith.agents.script import (
    after_tool,
    answer_with_tool_results,
    call_tools,
    first_turn,
    rule,
)

SECRETS_READ: list[str] = []


@tool
async def read_secret(name: str) -> str:
    """Read a secret (writers only)."""
    await trio.lowlevel.checkpoint()
    SECRETS_READ.append(name)
    return "hunter2"


@attrs.define
class Office:
    """An actor system whose bus grants ``read_secret`` to writers only and ``echo`` to
    writers and coordinators; the application holds both role credentials."""

    system: ActorSystem
    bus: ToolBus
    events: EventBus
    writer: Role
    coordinator: Role
    offered: list[list[str]] = attrs.field(factory=list)


@asynccontextmanager
async def office() -> AsyncIterator[Office]:
    SECRETS_READ.clear()
    events = EventBus()
    async with open_actor_system(events=events) as system:
        bus = ToolBus(events=events, identities=system.identities)
        writer = system.identities.register_role("writer")
        coordinator = system.identities.register_role("coordinator")
        bus.register_tool(read_secret, roles=[writer])
        bus.register_tool(EchoTool(), roles=[writer, coordinator])
        yield Office(system, bus, events, writer, coordinator)


def writer_model(offered: list[list[str]]) -> ScriptedModel:
    """Notes the tools it is offered, reads the secret, answers with the result."""

    def note_and_read(request: ModelRequest) -> ModelResponse:
        offered.append(sorted(t.name for t in request.tools))
        return call_tools(("read_secret", {"name": "db"}))(request)

    return ScriptedModel(
        [
            rule(first_turn, note_and_read),
            rule(after_tool("read_secret"), answer_with_tool_results("{results}")),
        ]
    )


def lead_model(delegate_tool: str) -> ScriptedModel:
    return ScriptedModel(
        [
            rule(first_turn, call_tools((delegate_tool, {"message": "read the db secret"}))),
            rule(after_tool(delegate_tool), answer_with_tool_results("{results}")),
        ]
    )


def denials(events: EventBus) -> list[ToolCalled]:
    return [e for e in events.history(ToolCalled) if e.outcome is ToolOutcome.DENIED]


async def test_a_team_lead_cannot_escalate_through_a_delegate(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with office() as place:

        def model_for(role: AgentRole) -> Model:
            return (
                writer_model(place.offered) if role.name == "writer" else lead_model("ask_writer")
            )

        team = await create_dynamic_team(
            "coordinate the writing",
            controller=SpawnController(place.system, 4),
            model=model_for,
            tools=place.bus,
            roles=[
                AgentRole("coordinator", "delegates", capabilities={"coordinate"}),
                AgentRole("writer", "writes"),
            ],
            bind_roles=[place.writer, place.coordinator],
            name="t",
        )
        async with team:
            result = await team.run("get me the secret", timeout=10)
            writer = team.members[1].ref
            # The same writer, asked by the application itself, may read the secret.
            assert (await writer.ask("read it")).answer == "hunter2"
        assert "ToolPermissionDenied" in result.answer
        assert "acting for t.coordinator" in result.answer
        assert SECRETS_READ == ["db"]  # only the direct ask read it
        # Working for the lead, the writer was offered only what both may call.
        assert place.offered == [["echo"], ["echo", "read_secret"]]
        [denial] = denials(place.events)
        assert (denial.tool, denial.caller) == ("read_secret", "t.writer (for t.coordinator)")


async def test_a_hand_wired_agent_tool_carries_the_caller(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with office() as place:
        writer = await spawn_agent(
            place.system,
            AgentSpec("writer"),
            writer_model(place.offered),
            place.bus,
            name="writer",
            roles=[place.writer],
        )
        place.bus.register_tool(
            AgentTool(AgentEndpoint(writer), name="ask_writer", description="the writer"),
            roles=[place.coordinator],
        )
        lead = await spawn_agent(
            place.system,
            AgentSpec("lead"),
            lead_model("ask_writer"),
            place.bus,
            name="lead",
            roles=[place.coordinator],
        )
        result = await lead.ask("get me the secret")
        assert "acting for lead" in result.answer
        assert SECRETS_READ == []
        # A lead that may read the secret itself may also have it read for it.
        place.bus.grant("read_secret", callers=[lead])
        result = await lead.ask("get me the secret")
        assert result.answer == "hunter2"
        assert SECRETS_READ == ["db"]


async def test_the_chain_is_checked_link_by_link() -> None:
    async with office() as place:
        ids, bus = place.system.identities, place.bus
        writer = ids.mint("writer", roles=[place.writer])
        lead = ids.mint("lead", roles=[place.coordinator])
        nobody = ids.mint("nobody")
        args = {"name": "db"}
        assert await bus.call(writer, "read_secret", args) == "hunter2"
        with pytest.raises(ToolPermissionDenied, match=r"acting for lead: .* is not granted it"):
            await bus.call(writer, "read_secret", args, on_behalf_of=[lead])
        # Acting for someone more privileged never widens what the caller may do.
        with pytest.raises(ToolPermissionDenied, match=r"'nobody' .* is not granted it"):
            await bus.call(nobody, "read_secret", args, on_behalf_of=[writer])
        with pytest.raises(ToolPermissionDenied, match="acting for lead: 'lead' is a plain"):
            await bus.call(writer, "read_secret", args, on_behalf_of=["lead"])
        second_writer = ids.mint("writer-2", roles=[place.writer])
        assert await bus.call(writer, "read_secret", args, on_behalf_of=[second_writer])
        ids.revoke(second_writer)  # the delegator stopped meanwhile
        with pytest.raises(ToolPermissionDenied, match=r"acting for writer-2: .* revoked"):
            await bus.call(writer, "read_secret", args, on_behalf_of=[second_writer])
        assert not bus.is_allowed(writer, "read_secret", on_behalf_of=[lead])
        assert [s.name for s in bus.list_available_tools(writer, on_behalf_of=[lead])] == ["echo"]
        stats = bus.statistics().tools["read_secret"]
        assert (stats.calls, stats.succeeded, stats.denied) == (6, 2, 4)
        assert len(denials(place.events)) == 4
