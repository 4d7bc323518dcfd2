"""The agent loop with ScriptedModel: tools, parallel calls, timeouts, max_turns,
crash and restart mid-task, permissions, deadlines, agent-as-tool, context folding."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import attrs
import pytest
import trio

from mister_smith.actors import ActorContext, ActorSystem, open_actor_system
from mister_smith.agents import (
    Agent,
    AgentEndpoint,
    AgentProgress,
    AgentResult,
    AgentSpec,
    AgentTask,
    ContextSettings,
    InvalidTask,
    MaxTurnsExceeded,
    ModelRequest,
    ModelResponse,
    ScriptedModel,
    ToolCall,
    spawn_agent,
)
from mister_smith.agents.script import (
    after_tool,
    answer,
    answer_with_tool_results,
    call_tools,
    first_turn,
    rule,
    user_matches,
)
from mister_smith.errors import ActorCrashed, TaskTimeout
from mister_smith.events import (
    ComponentRecovered,
    ContextSummarized,
    EventBus,
    TaskCompleted,
    TaskFailed,
)
from mister_smith.tools import AgentTool, EchoTool, ToolBus, tool


@tool
async def nap(seconds: float) -> str:
    """Sleep, then say how long.

    Args:
        seconds: How long to sleep.
    """
    await trio.sleep(seconds)
    return f"slept {seconds}"


@tool(timeout=0.5)
async def hang() -> str:
    """Never returns."""
    await trio.sleep_forever()
    raise AssertionError("unreachable")


@asynccontextmanager
async def world(policy: str = "open") -> AsyncIterator[tuple[ActorSystem, ToolBus, EventBus]]:
    """An actor system and a tool bus sharing its identities; the tools are open unless
    the test is about permissions."""
    bus = EventBus()
    async with open_actor_system(events=bus, ask_timeout=60) as system:
        tools = ToolBus(
            events=bus,
            default_policy=policy,  # type: ignore[arg-type]
            identities=system.identities,
        )
        for built in (EchoTool(), nap, hang):
            tools.register_tool(built)
        yield system, tools, bus


def results_text(request: ModelRequest) -> list[str]:
    return [m.content for m in request.tool_results_since_last_assistant()]


async def test_tool_call_round_trip_and_events(autojump_clock: trio.abc.Clock) -> None:
    model = ScriptedModel(
        [
            rule(first_turn, call_tools(("echo", {"message": "ping"}))),
            rule(after_tool("echo"), answer_with_tool_results("echo said {results}")),
        ]
    )
    async with (
        world() as (system, tools, bus),
        bus.subscribe(TaskCompleted) as completed,
        bus.subscribe(AgentProgress) as progress,
    ):
        ref = await spawn_agent(system, AgentSpec("tester"), model, tools, name="a1")
        result: AgentResult = await ref.ask("say ping")
        event = completed.receive_nowait()
        steps = [progress.receive_nowait(), progress.receive_nowait()]
    assert result.answer == 'echo said {"message": "ping"}'
    assert (result.turns, result.tool_calls, result.tool_errors) == (2, 1, 0)
    assert result.usage.calls == 2
    assert result.agent == "a1"
    assert result.role == "tester"
    assert event.result == result.answer
    assert event.task_id == result.task_id
    assert event.agent == "a1"
    assert event.usage == result.usage.as_dict()
    assert [(s.turn, s.status, s.tool_calls) for s in steps] == [
        (1, "working", 1),
        (2, "done", 1),
    ]
    assert steps[-1].progress == 1.0


async def test_independent_tool_calls_run_concurrently(autojump_clock: trio.abc.Clock) -> None:
    three_naps = call_tools(*[("nap", {"seconds": 1.0})] * 3)
    model = ScriptedModel(
        [rule(first_turn, three_naps), rule(after_tool("nap"), answer_with_tool_results())]
    )
    async with world() as (system, tools, _):
        parallel = await spawn_agent(system, AgentSpec("p"), model, tools)
        serial = await spawn_agent(system, AgentSpec("s", parallel_tool_calls=False), model, tools)
        start = trio.current_time()
        result = await parallel.ask("nap")
        assert trio.current_time() - start == 1.0
        assert result.answer == "slept 1.0\nslept 1.0\nslept 1.0"
        start = trio.current_time()
        await serial.ask("nap")
        assert trio.current_time() - start == 3.0


async def test_tool_timeout_is_reported_to_the_model(autojump_clock: trio.abc.Clock) -> None:
    seen: list[str] = []

    def remember(request: ModelRequest) -> ModelResponse:
        seen.extend(results_text(request))
        return ModelResponse(text="the tool hung; giving up on it")

    model = ScriptedModel(
        [
            rule(first_turn, call_tools(("hang", {}), ("echo", {"message": "still fine"}))),
            rule(after_tool("hang", failed=True), remember),
        ]
    )
    async with world() as (system, tools, _):
        ref = await spawn_agent(system, AgentSpec("t"), model, tools)
        start = trio.current_time()
        result = await ref.ask("go")
    assert trio.current_time() - start == 0.5
    assert result.answer == "the tool hung; giving up on it"
    assert result.tool_errors == 1
    assert seen[0].startswith("ToolTimeout: ")
    assert json.loads(seen[1]) == {"message": "still fine"}
    stats = tools.statistics()
    assert stats.tools["hang"].timeouts == 1


async def test_max_turns_is_a_typed_error_not_a_loop(autojump_clock: trio.abc.Clock) -> None:
    forever = ScriptedModel([rule(lambda r: True, call_tools(("echo", {"message": "again"})))])
    async with world() as (system, tools, bus), bus.subscribe(TaskFailed) as failed:
        ref = await spawn_agent(system, AgentSpec("looper", max_turns=4), forever, tools)
        with pytest.raises(ActorCrashed) as caught:
            await ref.ask("loop")
        event = failed.receive_nowait()
    cause = caught.value.__cause__
    assert isinstance(cause, MaxTurnsExceeded)
    assert cause.turns == 4
    assert forever.statistics().calls == 4
    assert event.error_type == "MaxTurnsExceeded"


@attrs.define
class CrashOnce:
    """A model wrapper that raises on its n-th call, once (shared by incarnations)."""

    inner: ScriptedModel
    crash_on: int
    calls: int = 0
    name: str = "crash-once"

    async def complete(self, request: ModelRequest) -> ModelResponse:
        self.calls += 1
        if self.calls == self.crash_on:
            await trio.lowlevel.checkpoint()
            raise RuntimeError("model lost its mind")
        return await self.inner.complete(request)


def two_step_model() -> ScriptedModel:
    return ScriptedModel(
        [
            rule(first_turn, call_tools(("nap", {"seconds": 1.0}))),
            rule(after_tool("nap"), answer_with_tool_results("done: {results}")),
        ]
    )


async def test_crash_mid_task_restarts_the_agent(autojump_clock: trio.abc.Clock) -> None:
    model = CrashOnce(two_step_model(), crash_on=2)
    async with world() as (system, tools, bus), bus.subscribe(ComponentRecovered) as recovered:
        ref = await spawn_agent(system, AgentSpec("worker"), model, tools, name="worker")
        with pytest.raises(ActorCrashed) as caught:
            await ref.ask("work")
        assert isinstance(caught.value.__cause__, RuntimeError)
        event = await recovered.receive()
        assert event.child == "worker"
        result = await ref.ask("work")  # the restarted incarnation finishes it
        assert result.answer == "done: slept 1.0"
        stats = ref.statistics()
        assert stats.restarts == 1
        assert (stats.accepted, stats.handled, stats.dead_lettered) == (2, 1, 1)
    [letter] = system.dead_letters()
    assert "crashed while handling it" in letter.reason
    totals = system.statistics()
    assert totals.accepted == totals.handled + totals.dead_lettered


async def test_endpoint_retries_a_crashed_delegate(autojump_clock: trio.abc.Clock) -> None:
    model = CrashOnce(two_step_model(), crash_on=2)
    async with world() as (system, tools, _):
        ref = await spawn_agent(system, AgentSpec("worker"), model, tools)
        endpoint = AgentEndpoint(ref, retries=1)
        assert await endpoint.ask("work", timeout=30) == "done: slept 1.0"
        assert ref.statistics().restarts == 1


async def test_allowed_tools_and_bus_permissions(autojump_clock: trio.abc.Clock) -> None:
    seen: list[str] = []

    def remember(request: ModelRequest) -> ModelResponse:
        seen.extend(results_text(request))
        return ModelResponse(text=",".join(sorted(t.name for t in request.tools)))

    model = ScriptedModel(
        [
            rule(first_turn, call_tools(("nap", {"seconds": 1}), ("echo", {"message": "x"}))),
            rule(after_tool(), remember),
        ]
    )
    async with world(policy="deny") as (system, tools, _):
        echoer = system.identities.register_role("echoer")
        tools.grant("echo", roles=["echoer"])
        tools.grant("nap", roles=[echoer])
        spec = AgentSpec("echoer", allowed_tools=["echo"])
        ref = await spawn_agent(system, spec, model, tools, roles=[echoer])
        result = await ref.ask("go")
        assert result.answer == "echo"  # only echo was offered to the model
        assert seen[0].startswith("ToolPermissionDenied: ")
        assert json.loads(seen[1]) == {"message": "x"}
        # The spec's role is a label: an agent spawned without the Role object gets nothing.
        stranger = await spawn_agent(system, AgentSpec("echoer"), model, tools)
        seen.clear()
        result = await stranger.ask("go")
        assert result.answer == ""  # nothing granted to this role
        assert all(text.startswith("ToolPermissionDenied") for text in seen)


async def test_task_deadline_caps_tools_and_fails_the_task(
    autojump_clock: trio.abc.Clock,
) -> None:
    model = ScriptedModel([rule(first_turn, call_tools(("nap", {"seconds": 10})))])
    async with world() as (system, tools, bus), bus.subscribe(TaskFailed) as failed:
        ref = await spawn_agent(system, AgentSpec("slow"), model, tools)
        start = trio.current_time()
        with pytest.raises(ActorCrashed) as caught:
            await ref.ask(AgentTask.with_timeout("nap long", 2.0))
        assert trio.current_time() - start == 2.0
        assert isinstance(caught.value.__cause__, TaskTimeout)
        assert failed.receive_nowait().error_type == "TaskTimeout"


async def test_agent_as_tool_propagates_the_deadline(autojump_clock: trio.abc.Clock) -> None:
    delegate_model = ScriptedModel([rule(first_turn, call_tools(("nap", {"seconds": 100})))])
    seen: list[str] = []

    def remember(request: ModelRequest) -> ModelResponse:
        seen.extend(results_text(request))
        return ModelResponse(text="the delegate ran out of time")

    lead_model = ScriptedModel(
        [
            rule(first_turn, call_tools(("ask_helper", {"message": "nap for ages"}))),
            rule(after_tool("ask_helper"), remember),
        ]
    )
    async with world() as (system, tools, bus), bus.subscribe(TaskFailed) as failed:
        helper = await spawn_agent(system, AgentSpec("helper"), delegate_model, tools)
        tools.register_tool(
            AgentTool(AgentEndpoint(helper), name="ask_helper", description="a helper"),
            timeout=3.0,
        )
        lead = await spawn_agent(system, AgentSpec("lead"), lead_model, tools)
        start = trio.current_time()
        result = await lead.ask("delegate")
        assert result.answer == "the delegate ran out of time"
        assert trio.current_time() - start == 3.0
        assert seen[0].startswith("ToolTimeout")
        event = await failed.receive()  # the helper stopped at the caller's deadline
        assert event.agent == helper.name
        assert event.error_type == "TaskTimeout"
        assert event.timestamp - start == 3.0


async def test_small_context_folds_during_a_long_task(autojump_clock: trio.abc.Clock) -> None:
    def count(request: ModelRequest) -> ModelResponse:
        done = sum(1 for m in request.messages if m.role.value == "tool")
        last = request.last_assistant_message()
        previous = int(last.content) if last is not None and last.content else 0
        total = previous + done
        if total >= 12:
            return ModelResponse(text=f"done after {total}")
        return ModelResponse(
            text=str(total), tool_calls=(ToolCall("", "echo", {"message": str(total)}),)
        )

    model = ScriptedModel([rule(user_matches("count"), count)])
    spec = AgentSpec("counter", max_turns=20, context=ContextSettings(max_messages=4))
    async with world() as (system, tools, bus), bus.subscribe(ContextSummarized) as folds:
        ref = await spawn_agent(system, spec, model, tools, name="counter")
        result = await ref.ask("count to twelve")
        event = folds.receive_nowait()
    assert result.answer == "done after 12"
    assert event.agent == "counter"
    assert event.summarized_messages >= 1


async def test_middleware_wraps_agent_tasks(autojump_clock: trio.abc.Clock) -> None:
    seen: list[str] = []

    class Audit:
        async def run(
            self, message: Any, ctx: ActorContext, handler: Callable[..., Awaitable[Any]]
        ) -> Any:
            seen.append(f"before {AgentTask.coerce(message).prompt}")
            result = await handler(message, ctx)
            seen.append(f"after {result.answer}")
            return result

    model = ScriptedModel([rule(first_turn, answer("hi"))])
    async with world() as (system, tools, _):
        ref = await spawn_agent(system, AgentSpec("m"), model, tools, middleware=[Audit()])
        await ref.ask({"task": "greet"})
    assert seen == ["before greet", "after hi"]


async def test_invalid_tasks_and_mappings(autojump_clock: trio.abc.Clock) -> None:
    with pytest.raises(InvalidTask):
        AgentTask.coerce(42)
    task = AgentTask.coerce({"message": "x", "timeout": 5})
    assert task.prompt == "x"
    assert task.deadline == trio.current_time() + 5


async def test_persistent_context_remembers_earlier_tasks(
    autojump_clock: trio.abc.Clock,
) -> None:
    model = ScriptedModel(
        [rule(first_turn, answer(lambda r: f"{len(r.conversation())} messages seen"))]
    )
    async with world() as (system, tools, _):
        fresh = await spawn_agent(system, AgentSpec("f"), model, tools)
        keeper = await spawn_agent(system, AgentSpec("k", persistent_context=True), model, tools)
        assert [(await fresh.ask("a")).answer for _ in range(2)] == ["1 messages seen"] * 2
        assert [(await keeper.ask("a")).answer for _ in range(2)] == [
            "1 messages seen",
            "3 messages seen",
        ]


async def test_run_task_without_an_actor_system(autojump_clock: trio.abc.Clock) -> None:
    model = ScriptedModel([rule(first_turn, answer("standalone"))])
    agent = Agent(AgentSpec("solo"), model)
    result = await agent.run_task(AgentTask("hi"), "solo", None)
    assert result.answer == "standalone"
