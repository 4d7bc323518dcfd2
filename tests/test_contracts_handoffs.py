"""Handoffs: an agent hands the conversation (filtered) to another, which continues with
the context and answers; chains are bounded; teams gain a triage mode built on it."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fake_model_servers import FakeModelServer
from wire_conformance_types import check_openai_request

from mister_smith import RuntimeManager
from mister_smith.actors import SpawnController
from mister_smith.agents import (
    MAX_HANDOFFS,
    AgentRole,
    AgentSpec,
    CoordinationMode,
    Handoff,
    HandoffFailed,
    MessageRole,
    ModelRequest,
    ModelResponse,
    OpenAICompatibleModel,
    ScriptedModel,
    ToolCall,
    Usage,
    choose_coordination,
    create_dynamic_team,
    remove_tool_calls,
    spawn_agent,
)
from mister_smith.agents.script import after_tool, always, answer, call_tools, first_turn, rule
from mister_smith.errors import ActorCrashed
from mister_smith.tools import EchoTool

PER_CALL = Usage(10, 5, 1)


def hand_to(tool: str, reason: str) -> Callable[[ModelRequest], ModelResponse]:
    def respond(request: ModelRequest) -> ModelResponse:
        return ModelResponse(tool_calls=(ToolCall("", tool, {"reason": reason}),), usage=PER_CALL)

    return respond


def billing_model(seen: list[ModelRequest]) -> ScriptedModel:
    def respond(request: ModelRequest) -> ModelResponse:
        seen.append(request)
        return ModelResponse(text="Refund issued for invoice 42.", usage=PER_CALL)

    return ScriptedModel([rule(always, respond)])


async def test_an_agent_hands_the_conversation_over_and_the_receiver_answers() -> None:
    seen: list[ModelRequest] = []
    async with RuntimeManager.open() as runtime:
        system = runtime.actor_system
        billing = await spawn_agent(
            system, AgentSpec("billing"), billing_model(seen), name="billing"
        )
        triage = await spawn_agent(
            system,
            AgentSpec("triage"),
            ScriptedModel([rule(always, hand_to("transfer_to_billing", "an invoice issue"))]),
            handoffs=[Handoff(billing, "invoices and refunds")],
        )
        result = await triage.ask("invoice 42 charged me twice", timeout=10)
        assert result.answer == "Refund issued for invoice 42."
        assert result.agent == billing.name
        assert result.handed_off_from == (triage.name,)
        assert result.usage == PER_CALL + PER_CALL  # both agents' requests
        [request] = seen
        users = [m.content for m in request.messages if m.role is MessageRole.USER]
        assert users[0] == "invoice 42 charged me twice"  # the conversation came along
        assert "handed this conversation over to you (an invoice issue)" in users[-1]
        await runtime.graceful_shutdown()


async def test_the_offered_tool_and_the_input_filter() -> None:
    seen: list[ModelRequest] = []
    offered: list[ModelRequest] = []

    def look_then_hand(request: ModelRequest) -> ModelResponse:
        offered.append(request)
        if request.tool_results_since_last_assistant():
            return hand_to("transfer_to_billing", "")(request)
        return call_tools(("echo", {"message": "account 7 looked up"}))(request)

    async with RuntimeManager.open() as runtime:
        system = runtime.actor_system
        runtime.tool_bus.register_tool(EchoTool(), policy="open")
        billing = await spawn_agent(
            system, AgentSpec("billing"), billing_model(seen), name="billing"
        )
        for input_filter, sees_tools in [(None, True), (remove_tool_calls, False)]:
            handoff = (
                Handoff(billing)
                if input_filter is None
                else Handoff(billing, input_filter=input_filter)
            )
            triage = await spawn_agent(
                system,
                AgentSpec("triage"),
                ScriptedModel([rule(always, look_then_hand)]),
                runtime.tool_bus,
                handoffs=[handoff],
            )
            await triage.ask("refund please", timeout=10)
            received = seen[-1].messages
            assert any(m.role is MessageRole.TOOL for m in received) is sees_tools
            # what the receiver got is a valid conversation on the wire
            body = OpenAICompatibleModel(
                "m", require_api_key=False, transport=FakeModelServer().transport()
            ).build_body(seen[-1])
            check_openai_request(body)
        names = [t.name for t in offered[0].tools]
        assert names == ["echo", "transfer_to_billing"]
        assert "reason" in offered[0].tools[1].input_schema["properties"]
        await runtime.graceful_shutdown()


async def test_a_chain_of_handoffs_is_bounded() -> None:
    """Seven agents each hand on to the next; the sixth handoff is refused as a tool
    error and the agent holding the task answers itself."""

    def relay(name: str, target: str) -> ScriptedModel:
        return ScriptedModel(
            [
                rule(after_tool(target, failed=True), answer(f"{name} answers")),
                rule(always, hand_to(target, "yours")),
            ]
        )

    async with RuntimeManager.open() as runtime:
        system = runtime.actor_system
        agents = [
            await spawn_agent(
                system, AgentSpec("relay"), ScriptedModel([rule(always, answer("end"))]), name="r7"
            )
        ]
        for number in range(6, 0, -1):
            agents.insert(
                0,
                await spawn_agent(
                    system,
                    AgentSpec("relay"),
                    relay(f"r{number}", f"transfer_to_r{number + 1}"),
                    name=f"r{number}",
                    handoffs=[Handoff(agents[0])],
                ),
            )
        result = await agents[0].ask("go", timeout=10)
        assert result.answer == f"r{MAX_HANDOFFS + 1} answers"
        assert result.handed_off_from == tuple(f"r{n}" for n in range(1, MAX_HANDOFFS + 1))
        await runtime.graceful_shutdown()


async def test_a_receiver_that_fails_is_a_typed_error() -> None:
    async with RuntimeManager.open() as runtime:
        system = runtime.actor_system
        broken = await spawn_agent(
            system, AgentSpec("broken"), ScriptedModel([rule(first_turn, answer("x"))])
        )
        await broken.stop()
        triage = await spawn_agent(
            system,
            AgentSpec("triage"),
            ScriptedModel([rule(always, hand_to("transfer_to_broken", ""))]),
            handoffs=[Handoff(broken, tool_name="transfer_to_broken")],
        )
        with pytest.raises(ActorCrashed) as caught:
            await triage.ask("x", timeout=10)
        assert isinstance(caught.value.__cause__, HandoffFailed)
        await runtime.graceful_shutdown()


async def test_a_triage_team_routes_to_the_member_fit_for_the_task() -> None:
    roles = [
        AgentRole("triage", "routes requests", capabilities={"triage"}),
        AgentRole("billing", "handles invoices and refunds"),
        AgentRole("support", "fixes technical problems"),
    ]
    assert choose_coordination("anything", roles) is CoordinationMode.TRIAGE

    def model_for(role: AgentRole) -> ScriptedModel:
        if role.name == "triage":

            def route(request: ModelRequest) -> ModelResponse:
                names = [t.name for t in request.tools]
                target = next(n for n in names if "billing" in n)
                return hand_to(target, "money matters")(request)

            return ScriptedModel([rule(always, route)])
        return ScriptedModel([rule(always, answer(f"{role.name} here: done"))])

    async with RuntimeManager.open() as runtime:
        team = await create_dynamic_team(
            "my invoice is wrong",
            controller=SpawnController(runtime.actor_system, 10),
            model=model_for,
            roles=roles,
        )
        async with team:
            assert team.mode is CoordinationMode.TRIAGE
            result = await team.run("my invoice is wrong", timeout=10)
        assert result.answer == "billing here: done"
        [member_result] = result.results
        assert member_result.handed_off_from == (team.triage.name,)
        await runtime.graceful_shutdown()
