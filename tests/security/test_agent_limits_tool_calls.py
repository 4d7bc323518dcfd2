"""Agents: tool calls per model turn and per task are bounded (issue 12, item 5).

Attack reproduced: one model turn requested 10,000 tool calls and all of them ran. Now
at most ``max_tool_calls_per_turn`` run; the others are not run and each is answered to
the model with a ``ToolCallLimitExceeded`` tool error (none silently dropped); a
per-task cap does the same across turns. Limits come from ``AgentSettings``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import attrs
import pytest
import trio

from mister_smith.actors import ActorSystem, open_actor_system
from mister_smith.agents import (
    AgentResult,
    AgentRole,
    AgentSpec,
    ContextSettings,
    MessageRole,
    ModelRequest,
    ModelResponse,
    ToolCall,
    spawn_agent,
)
from mister_smith.cli._session import limited_member_spec
from mister_smith.config import AgentSettings, ConfigValidationError, loads_config
from mister_smith.events import EventBus
from mister_smith.tools import FunctionTool, ToolBus, tool


@attrs.define
class Counter:
    """A tool that counts its runs and takes one (virtual) second each."""

    runs: int = 0

    def make(self) -> FunctionTool:
        @tool
        async def work() -> str:
            """Do one unit of work."""
            self.runs += 1
            await trio.sleep(1)
            return "done"

        return work


@asynccontextmanager
async def world(counter: Counter) -> AsyncIterator[tuple[ActorSystem, ToolBus]]:
    events = EventBus()
    tools = ToolBus(events=events, default_policy="open")
    tools.register_tool(counter.make())
    async with open_actor_system(events=events, ask_timeout=10_000) as system:
        yield system, tools


@attrs.define
class Flood:
    """A model that asks for ``calls`` tool calls at once, then answers with a count of
    the results it got back (``seen`` keeps that second request)."""

    calls: int
    name: str = "flood"
    seen: list[ModelRequest] = attrs.field(factory=list)

    async def complete(self, request: ModelRequest) -> ModelResponse:
        await trio.lowlevel.checkpoint()
        if not self.seen and request.messages[-1].role is MessageRole.USER:
            self.seen.append(request)
            return ModelResponse(
                tool_calls=[ToolCall(f"call-{i}", "work", {}) for i in range(self.calls)]
            )
        self.seen.append(request)
        results = request.tool_results_since_last_assistant()
        errors = sum(1 for r in results if r.is_error)
        return ModelResponse(text=f"{len(results)} results, {errors} errors")


async def test_ten_thousand_calls_in_one_turn_run_only_the_cap(
    autojump_clock: trio.abc.Clock,
) -> None:
    counter = Counter()
    model = Flood(10_000)
    # a window that holds the whole round, so the model's next request shows every answer
    # (a default window would fold them into its summary, which costs ~0.5 s here)
    spec = AgentSpec("flooded", context=ContextSettings(max_messages=10_010, max_tokens=10**6))
    async with world(counter) as (system, tools):
        ref = await spawn_agent(system, spec, model, tools)
        start = trio.current_time()
        result: AgentResult = await ref.ask("go")
        elapsed = trio.current_time() - start
    assert counter.runs == 32 == AgentSettings().max_tool_calls_per_turn
    assert (result.tool_calls, result.refused_tool_calls) == (32, 9_968)
    assert elapsed == 4.0  # 32 one-second calls, 8 at a time; all 10,000 would take 1,250 s
    answers = model.seen[-1].tool_results_since_last_assistant()
    assert len(answers) == 10_000
    assert sum(1 for answer in answers if answer.is_error) == 9_968
    assert result.answer == "10000 results, 9968 errors"


async def test_refused_calls_are_reported_to_the_model_as_tool_errors(
    autojump_clock: trio.abc.Clock,
) -> None:
    counter = Counter()
    model = Flood(40)
    spec = AgentSpec(
        "bounded", max_tool_calls_per_turn=5, context=ContextSettings(max_messages=100)
    )
    async with world(counter) as (system, tools):
        ref = await spawn_agent(system, spec, model, tools)
        result: AgentResult = await ref.ask("go")
    assert counter.runs == 5
    assert result.answer == "40 results, 35 errors"
    request = model.seen[-1]
    results = request.tool_results_since_last_assistant()
    assert [r.content for r in results[:5]] == ["done"] * 5
    refused = results[5:]
    assert all(r.is_error for r in refused)
    assert all(r.content.startswith("ToolCallLimitExceeded: not run") for r in refused)
    assert "at most 5 tool calls per turn" in refused[0].content
    assert len({r.tool_call_id for r in results}) == 40  # every call got its own answer


async def test_the_per_task_cap_holds_across_turns(autojump_clock: trio.abc.Clock) -> None:
    counter = Counter()

    class ThreePerTurn:
        name = "three-per-turn"
        turns = 0

        async def complete(self, request: ModelRequest) -> ModelResponse:
            await trio.lowlevel.checkpoint()
            self.turns += 1
            if self.turns <= 4:
                return ModelResponse(
                    tool_calls=[ToolCall(f"t{self.turns}-{i}", "work", {}) for i in range(3)]
                )
            return ModelResponse(text="enough")

    spec = AgentSpec("capped", max_tool_calls_per_turn=3, max_tool_calls_per_task=7)
    async with world(counter) as (system, tools):
        ref = await spawn_agent(system, spec, ThreePerTurn(), tools)
        result: AgentResult = await ref.ask("go")
    assert counter.runs == 7  # 3 + 3 + 1, then nothing
    assert (result.tool_calls, result.refused_tool_calls, result.turns) == (7, 5, 5)


def test_limits_are_validated_and_come_from_the_agents_config_section() -> None:
    spec = AgentSpec("r")
    settings = AgentSettings()
    assert (spec.max_tool_calls_per_turn, spec.max_tool_calls_per_task) == (
        settings.max_tool_calls_per_turn,
        settings.max_tool_calls_per_task,
    )
    for bad in ({"max_tool_calls_per_turn": 0}, {"max_tool_calls_per_task": -1}):
        with pytest.raises(ValueError):
            AgentSpec("r", **bad)  # type: ignore[arg-type]
    config = loads_config(
        "[agents]\nmax_tool_calls_per_turn = 4\nmax_tool_calls_per_task = 9\n"
        "max_response_bytes = 65536\n"
    )
    role = AgentRole("r", "a role")

    def prompt(role: AgentRole, spec: AgentSpec) -> AgentSpec:
        return attrs.evolve(spec, system_prompt=f"you are {role.name}")

    limited = limited_member_spec(prompt, config.agents, role, spec)
    assert (limited.max_tool_calls_per_turn, limited.max_tool_calls_per_task) == (4, 9)
    assert limited.system_prompt == "you are r"
    with pytest.raises(ConfigValidationError, match=r"agents\.max_tool_calls_per_turn"):
        loads_config("[agents]\nmax_tool_calls_per_turn = 0\n")
    with pytest.raises(ConfigValidationError, match="max_tool_calls_per_task"):
        loads_config("[agents]\nmax_tool_calls_per_turn = 50\nmax_tool_calls_per_task = 10\n")
    with pytest.raises(ConfigValidationError, match=r"agents\.max_response_bytes"):
        loads_config("[agents]\nmax_response_bytes = 10\n")
