"""Usage budgets: a task, an agent or a team stops with ``UsageLimitExceeded`` naming
the limit, checked before each model request and each round of tool calls."""

from __future__ import annotations

from typing import Any

import pytest
import trio
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from mister_smith import RuntimeManager
from mister_smith.actors import SpawnController
from mister_smith.agents import (
    Agent,
    AgentRole,
    AgentSpec,
    AgentTask,
    CoordinationMode,
    ModelLimits,
    ModelPrice,
    ModelRequest,
    ModelResponse,
    PriceTable,
    ScriptedModel,
    TeamError,
    ToolCall,
    UnknownModelPrice,
    Usage,
    UsageBudget,
    UsageLimitExceeded,
    UsageLimits,
    create_dynamic_team,
    spawn_agent,
)
from mister_smith.agents.script import always, rule
from mister_smith.errors import ActorCrashed
from mister_smith.events import EventBus, TaskFailed
from mister_smith.monitoring import FrameworkMetrics
from mister_smith.tools import EchoTool, ToolBus

PER_CALL = Usage(100, 50, 1)


def busy_model(seen: list[ModelRequest] | None = None, *, latency: float = 0.0) -> ScriptedModel:
    """Always asks for one echo call, each response costing ``PER_CALL``."""

    def respond(request: ModelRequest) -> ModelResponse:
        if seen is not None:
            seen.append(request)
        return ModelResponse(
            tool_calls=(ToolCall("", "echo", {"message": "again"}),), usage=PER_CALL
        )

    return ScriptedModel([rule(always, respond)], latency=latency)


def open_bus() -> ToolBus:
    bus = ToolBus(default_policy="open")
    bus.register_tool(EchoTool())
    return bus


async def run(spec: AgentSpec, model: Any, events: EventBus | None = None) -> Any:
    return await Agent(spec, model, open_bus()).run_task(AgentTask("work"), "w", events)


@pytest.mark.parametrize(
    ("limits", "limit", "requests"),
    [
        (UsageLimits(total_tokens=400), "total_tokens", 3),  # 450 >= 400 before the 4th
        (UsageLimits(input_tokens=250), "input_tokens", 3),
        (UsageLimits(output_tokens=100), "output_tokens", 2),
        (UsageLimits(requests=2), "requests", 2),
    ],
)
async def test_a_task_stops_before_the_request_that_would_pass_a_limit(
    limits: UsageLimits, limit: str, requests: int
) -> None:
    events = EventBus()
    model = busy_model()
    with pytest.raises(UsageLimitExceeded, match=limit) as caught:
        await run(AgentSpec("w", max_turns=50, task_limits=limits), model, events)
    assert caught.value.limit == limit
    assert caught.value.scope.startswith("task ")
    assert model.statistics().calls == requests  # nothing spent past the limit
    [failed] = events.history(TaskFailed)
    assert failed.error_type == "UsageLimitExceeded"
    assert limit in failed.error


async def test_tool_calls_are_checked_before_they_run() -> None:
    def three_calls(request: ModelRequest) -> ModelResponse:
        return ModelResponse(
            tool_calls=tuple(ToolCall("", "echo", {"message": "x"}) for _ in "abc")
        )

    bus = open_bus()
    agent = Agent(
        AgentSpec("w", task_limits=UsageLimits(tool_calls=2)),
        ScriptedModel([rule(always, three_calls)]),
        bus,
    )
    with pytest.raises(UsageLimitExceeded, match="tool_calls") as caught:
        await agent.run_task(AgentTask("go"), "w", None)
    assert (caught.value.value, caught.value.used) == (2, 3)
    assert bus.statistics().calls == 0


async def test_wall_time_on_virtual_time(autojump_clock: trio.testing.MockClock) -> None:
    started = trio.current_time()
    model = busy_model(latency=10.0)
    with pytest.raises(UsageLimitExceeded, match="wall_time"):
        await run(AgentSpec("w", max_turns=50, task_limits=UsageLimits(wall_time=25)), model)
    assert model.statistics().calls == 3  # at 0, 10 and 20 s; refused at 30 s
    assert trio.current_time() - started == 30


async def test_cost_from_a_price_table_with_cache_prices() -> None:
    prices = PriceTable({"scripted": ModelPrice(input=1_000.0, output=2_000.0)})
    model = busy_model()
    with pytest.raises(UsageLimitExceeded, match="cost") as caught:
        await run(
            AgentSpec("w", max_turns=50, task_limits=UsageLimits(cost=0.5, prices=prices)),
            model,
        )
    assert model.statistics().calls == 3  # 0.2 each: 0.4 < 0.5, then 0.6
    assert caught.value.used == pytest.approx(0.6)
    cached = ModelPrice(input=3.0, output=15.0, cache_read=0.3, cache_write=3.75)
    usage = Usage(1_000_000, 1_000_000, 1, cache_read_tokens=500_000, cache_write_tokens=100_000)
    assert cached.cost(usage) == pytest.approx(0.4 * 3 + 0.5 * 0.3 + 0.1 * 3.75 + 15)
    dated = PriceTable({"gpt-5": ModelPrice(1, 1), "gpt-5-mini": ModelPrice(2, 2)})
    assert dated.price("gpt-5-mini-2025-08-07") == ModelPrice(2, 2)


async def test_a_cost_limit_with_an_unpriced_model_is_a_typed_error() -> None:
    limits = UsageLimits(cost=1.0, prices=PriceTable({"other": ModelPrice(1, 1)}))
    with pytest.raises(UnknownModelPrice, match="scripted"):
        await run(AgentSpec("w", task_limits=limits), busy_model())
    with pytest.raises(ValueError, match="price table"):
        UsageLimits(cost=1.0)
    with pytest.raises(ValueError, match="requests"):
        UsageLimits(requests=-1)


async def test_each_request_may_only_generate_what_the_budget_leaves() -> None:
    seen: list[ModelRequest] = []
    spec = AgentSpec(
        "w", max_turns=50, limits=ModelLimits(64), task_limits=UsageLimits(output_tokens=120)
    )
    with pytest.raises(UsageLimitExceeded):
        await run(spec, busy_model(seen))
    assert [r.limits.max_output_tokens for r in seen] == [64, 64, 20]


async def test_the_agent_budget_spans_tasks_and_survives_restarts() -> None:
    async with RuntimeManager.open() as runtime:
        agent = await spawn_agent(
            runtime.actor_system,
            AgentSpec("w", max_turns=2, agent_limits=UsageLimits(requests=3)),
            busy_model(),
            open_bus(),
        )
        with pytest.raises(ActorCrashed):  # 2 requests, then out of turns
            await agent.ask("one", timeout=10)
        with pytest.raises(ActorCrashed) as caught:  # 1 request, then the budget
            await agent.ask("two", timeout=10)
        assert isinstance(caught.value.__cause__, UsageLimitExceeded)
        with pytest.raises(ActorCrashed) as again:  # a restarted agent keeps its budget
            await agent.ask("three", timeout=10)
        cause = again.value.__cause__
        assert isinstance(cause, UsageLimitExceeded)
        assert cause.scope == f"agent {agent.name!r}"
        await runtime.graceful_shutdown()


async def test_a_team_shares_one_budget() -> None:
    def answer_after_one_call(request: ModelRequest) -> ModelResponse:
        if request.tool_results_since_last_assistant():
            return ModelResponse(text="done", usage=PER_CALL)
        return ModelResponse(tool_calls=(ToolCall("", "echo", {"message": "m"}),), usage=PER_CALL)

    roles = [AgentRole("researcher", "finds"), AgentRole("writer", "writes")]
    async with RuntimeManager.open() as runtime:
        team = await create_dynamic_team(
            "research then write",
            controller=SpawnController(runtime.actor_system, 10),
            model=ScriptedModel([rule(always, answer_after_one_call)]),
            tools=open_bus(),
            roles=roles,
            mode=CoordinationMode.PIPELINE,
            usage_limits=UsageLimits(requests=3),
            retries=0,
        )
        async with team:
            with pytest.raises(TeamError, match="UsageLimitExceeded"):
                await team.run("go")  # researcher: 2 requests; writer: 1, then refused
            assert team.budget is not None
            assert team.budget.snapshot(trio.current_time()).usage.calls == 3
        await runtime.graceful_shutdown()


async def test_a_run_of_a_team_can_have_its_own_limits() -> None:
    async with RuntimeManager.open() as runtime:
        team = await create_dynamic_team(
            "write",
            controller=SpawnController(runtime.actor_system, 10),
            model=busy_model(),
            tools=open_bus(),
            roles=[AgentRole("writer", "writes")],
            retries=0,
        )
        async with team:
            with pytest.raises(TeamError, match="requests"):
                await team.run("go", usage_limits=UsageLimits(requests=1))
        await runtime.graceful_shutdown()


async def test_per_agent_metrics() -> None:
    events = EventBus()
    metrics = FrameworkMetrics(registry=CollectorRegistry())
    metrics.attach(events)

    def answer(request: ModelRequest) -> ModelResponse:
        return ModelResponse(text="ok", usage=PER_CALL)

    await Agent(AgentSpec("w"), ScriptedModel([rule(always, answer)])).run_task(
        AgentTask("x"), "writer", events
    )
    with pytest.raises(UsageLimitExceeded):
        await run(AgentSpec("w", task_limits=UsageLimits(requests=0)), busy_model(), events)
    for _ in range(3):
        await trio.sleep(0)  # deliver the events
    value = metrics.registry.get_sample_value
    assert value("mister_smith_agent_tokens_total", {"agent": "writer", "kind": "input"}) == 100
    assert value("mister_smith_agent_model_requests_total", {"agent": "writer"}) == 1
    assert (
        value(
            "mister_smith_agent_task_failures_total",
            {"agent": "w", "error_type": "UsageLimitExceeded"},
        )
        == 1
    )


@given(
    limits=st.builds(
        UsageLimits,
        input_tokens=st.none() | st.integers(0, 500),
        output_tokens=st.none() | st.integers(0, 500),
        total_tokens=st.none() | st.integers(0, 800),
        requests=st.none() | st.integers(0, 6),
    ),
    usages=st.lists(st.builds(Usage, st.integers(0, 200), st.integers(0, 200), st.just(1))),
)
def test_a_budget_refuses_exactly_when_a_counter_reached_its_limit(
    limits: UsageLimits, usages: list[Usage]
) -> None:
    budget = UsageBudget(limits, "test", 0.0)
    spent = Usage()
    for usage in usages:
        over = any(
            limit is not None and used >= limit
            for limit, used in [
                (limits.input_tokens, spent.input_tokens),
                (limits.output_tokens, spent.output_tokens),
                (limits.total_tokens, spent.total_tokens),
                (limits.requests, spent.calls),
            ]
        )
        if over:
            with pytest.raises(UsageLimitExceeded):
                budget.check(0.0)
            return
        budget.check(0.0)
        budget.record_response("m", usage)
        spent = spent + usage
    assert budget.snapshot(0.0).usage == spent
