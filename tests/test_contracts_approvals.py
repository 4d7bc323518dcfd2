"""Human approval: a tool registered with ``approval=True`` (or picked by a policy)
suspends the agent's call until ``runtime.approvals`` approves or denies it; the wait is
bounded (no decision → denied, reported to the model); pending approvals are listed and
can be decided through the API, the CLI prompt or the monitoring HTTP endpoint."""

from __future__ import annotations

import io
from typing import Any

import httpx
import pytest
import trio

from mister_smith import AgentConfig, MonitoringSettings, RuntimeManager
from mister_smith.agents import AgentSpec, ScriptedModel, spawn_agent
from mister_smith.agents.script import (
    after_tool,
    answer_with_tool_results,
    call_tools,
    first_turn,
    rule,
)
from mister_smith.cli._approve import prompt_approvals
from mister_smith.cli._display import Display
from mister_smith.errors import ToolApprovalDenied
from mister_smith.events import EventBus, ToolCalled, ToolOutcome
from mister_smith.supervision import TreeSnapshot
from mister_smith.tools import (
    ApprovalDecided,
    ApprovalNotFound,
    ApprovalRequested,
    Approvals,
    EchoTool,
    ToolBus,
    Verdict,
    tool,
)

ran: list[str] = []


@tool
async def transfer(amount: int) -> str:
    """Move money (a person must approve each call)."""
    ran.append(f"transfer {amount}")
    return f"transferred {amount}"


def transfer_model() -> ScriptedModel:
    return ScriptedModel(
        [
            rule(first_turn, call_tools(("transfer", {"amount": 100}))),
            rule(after_tool("transfer"), answer_with_tool_results("{results}")),
        ]
    )


async def spawn_payer(runtime: RuntimeManager) -> Any:
    payer = runtime.identities.register_role("payer")
    runtime.tool_bus.register_tool(transfer, roles=[payer], approval=True)
    return await spawn_agent(
        runtime.actor_system,
        AgentSpec("payer"),
        transfer_model(),
        runtime.tool_bus,
        roles=[payer],
    )


@pytest.fixture(autouse=True)
def _forget_runs() -> None:
    ran.clear()


async def test_the_call_waits_until_approved(autojump_clock: trio.testing.MockClock) -> None:
    async with RuntimeManager.open() as runtime:
        agent = await spawn_payer(runtime)
        async with trio.open_nursery() as nursery:
            results: list[Any] = []

            async def ask() -> None:
                results.append(await agent.ask("pay", timeout=600))

            nursery.start_soon(ask)
            request = await runtime.approvals.wait_for_request()
            await trio.sleep(30)  # a person takes their time
            assert ran == []  # suspended: the tool has not run
            assert [r.id for r in runtime.approvals.pending()] == [request.id]
            assert (request.tool, request.arguments) == ("transfer", '{"amount": 100}')
            runtime.approvals.approve(request.id, by="alice")
        assert ran == ["transfer 100"]
        assert results[0].answer == "transferred 100"
        assert runtime.approvals.pending() == []
        decided = runtime.events.history(ApprovalDecided)
        assert decided[-1].outcome.by == "alice"
        await runtime.graceful_shutdown()


async def test_a_denial_is_reported_to_the_model_which_carries_on(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with RuntimeManager.open() as runtime:
        agent = await spawn_payer(runtime)
        async with trio.open_nursery() as nursery:
            results: list[Any] = []

            async def ask() -> None:
                results.append(await agent.ask("pay", timeout=600))

            nursery.start_soon(ask)
            request = await runtime.approvals.wait_for_request()
            runtime.approvals.deny(request.id, by="bob", reason="over budget")
        assert ran == []
        result = results[0]
        assert result.tool_errors == 1
        assert "ToolApprovalDenied" in result.answer
        assert "over budget" in result.answer
        [called] = [e for e in runtime.events.history(ToolCalled) if e.tool == "transfer"]
        assert called.outcome is ToolOutcome.DENIED
        await runtime.graceful_shutdown()


async def test_no_decision_in_time_is_a_denial(autojump_clock: trio.testing.MockClock) -> None:
    bus = ToolBus(default_policy="open", approvals=Approvals(timeout=120))
    bus.register_tool(transfer, approval=True)
    started = trio.current_time()
    with pytest.raises(ToolApprovalDenied, match="timed_out"):
        await bus.call("someone", "transfer", {"amount": 5})
    assert trio.current_time() - started == 120
    assert ran == []
    assert bus.approvals.pending() == []
    assert bus.statistics().tools["transfer"].denied == 1


async def test_a_policy_picks_the_calls_needing_approval() -> None:
    events = EventBus()
    big = {"amount": 10_000}
    bus = ToolBus(
        default_policy="open",
        events=events,
        approval_policy=lambda name, caller, args: args.get("amount", 0) > 1000,
        approvals=Approvals(events=events),
    )

    @tool
    async def pay(amount: int) -> str:
        return f"paid {amount}"

    bus.register_tool(pay)
    assert await bus.call("x", "pay", {"amount": 5}) == "paid 5"  # small: no approval
    async with trio.open_nursery() as nursery:
        nursery.start_soon(bus.call, "x", "pay", big)
        request = await bus.approvals.wait_for_request()
        bus.approvals.approve(request.id)
    [requested] = events.history(ApprovalRequested)
    assert requested.request.tool == "pay"


async def test_deciding_an_unknown_or_decided_request_is_a_typed_error() -> None:
    approvals = Approvals()
    with pytest.raises(ApprovalNotFound):
        approvals.approve("approval-99")
    async with trio.open_nursery() as nursery:
        outcomes: list[Any] = []

        async def ask() -> None:
            outcomes.append(await approvals.request("t", "c", {}))

        nursery.start_soon(ask)
        request = await approvals.wait_for_request()
        approvals.deny(request.id)
        with pytest.raises(ApprovalNotFound):
            approvals.approve(request.id)
    assert outcomes[0].verdict is Verdict.DENIED
    with pytest.raises(ValueError, match="timeout"):
        Approvals(timeout=0)


async def test_a_cancelled_call_withdraws_its_request() -> None:
    approvals = Approvals()
    with trio.move_on_after(0.01):
        await approvals.request("t", "c", {})
    assert approvals.pending() == []


async def test_the_monitoring_endpoint_lists_and_decides_with_a_token() -> None:
    config = AgentConfig(monitoring=MonitoringSettings(http_port=0))
    async with RuntimeManager.open(config, serve_http=True) as runtime:
        agent = await spawn_payer(runtime)
        base = f"http://127.0.0.1:{runtime.http_port}"
        token = {"authorization": f"Bearer {runtime.approvals.token}"}
        async with httpx.AsyncClient(base_url=base) as client, trio.open_nursery() as nursery:
            results: list[Any] = []

            async def ask() -> None:
                results.append(await agent.ask("pay", timeout=60))

            nursery.start_soon(ask)
            request = await runtime.approvals.wait_for_request()
            assert (await client.get("/approvals")).status_code == 401
            wrong = {"authorization": "Bearer guess"}
            assert (
                await client.post(f"/approvals/{request.id}/approve", headers=wrong)
            ).status_code == 401
            listed = (await client.get("/approvals", headers=token)).json()
            assert [p["id"] for p in listed["pending"]] == [request.id]
            missing = await client.post("/approvals/approval-404/approve", headers=token)
            assert missing.status_code == 404
            approved = await client.post(f"/approvals/{request.id}/approve", headers=token)
            assert approved.status_code == 200
        assert results[0].answer == "transferred 100"
        await runtime.graceful_shutdown()


async def test_the_cli_prompt_decides_pending_approvals() -> None:
    approvals = Approvals()
    out = io.StringIO()
    display = Display(
        out,
        color=False,
        live=False,
        tree=lambda: TreeSnapshot("root", "supervisor", "running"),
        started=0.0,
    )
    answers = iter(["y", "n"])
    asked: list[str] = []

    def read_line(question: str) -> str:
        asked.append(question)
        return next(answers)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(prompt_approvals, approvals, display, read_line)
        first = await approvals.request("transfer", "payer", {"amount": 1})
        second = await approvals.request("transfer", "payer", {"amount": 2})
        nursery.cancel_scope.cancel()
    assert (first.verdict, second.verdict) == (Verdict.APPROVED, Verdict.DENIED)
    assert first.by == "cli"
    assert asked == ["approve approval-1? [y/N] ", "approve approval-2? [y/N] "]
    assert 'approval needed: transfer for payer with {"amount": 1}' in out.getvalue()


async def test_approval_and_tool_registration_flags() -> None:
    bus = ToolBus(default_policy="open")
    spec = bus.register_tool(EchoTool(), approval=True)
    assert spec.name == "echo"
    async with trio.open_nursery() as nursery:
        nursery.start_soon(bus.call, "x", "echo", {"message": "m"})
        request = await bus.approvals.wait_for_request()
        assert request.tool == "echo"
        bus.approvals.approve(request.id)
