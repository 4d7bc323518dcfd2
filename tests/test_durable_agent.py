"""Durable agents: the running task is checkpointed after every turn and, after its
process ends, resumes from the checkpoint; a tool call in flight is re-run only if its
tool is idempotent, else the model is told its outcome is unknown."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs
import pytest
import trio

from mister_smith.actors import open_actor_system
from mister_smith.agents import (
    OUTCOME_UNKNOWN,
    AgentCheckpoints,
    AgentSpec,
    DurableAgentRef,
    Message,
    ModelRequest,
    ModelResponse,
    TaskCheckpoint,
    ToolCall,
)
from mister_smith.agents._checkpoint import decode_checkpoint
from mister_smith.config import AgentConfig, PersistenceSettings
from mister_smith.errors import CheckpointConflict, CheckpointUnreadable, DurabilityUnavailable
from mister_smith.persistence import open_sqlite_store
from mister_smith.runtime import RuntimeManager
from mister_smith.tools import tool


@attrs.define
class Planner:
    """Asks for a charge and a lookup, then answers with the tool results it saw."""

    requests: list[ModelRequest] = attrs.field(factory=list)
    answered: trio.Event = attrs.field(factory=trio.Event)
    answers: list[str] = attrs.field(factory=list)

    @property
    def name(self) -> str:
        return "planner"

    async def complete(self, request: ModelRequest) -> ModelResponse:
        self.requests.append(request)
        results = [m for m in request.messages if m.tool_call_id is not None]
        if not results:
            return ModelResponse(
                tool_calls=(
                    ToolCall("c1", "charge", {"order": "o1"}),
                    ToolCall("c2", "lookup", {"query": "o1"}),
                )
            )
        answer = " | ".join(f"{m.name}: {m.content}" for m in results)
        self.answers.append(answer)
        self.answered.set()
        return ModelResponse(text=answer)


@attrs.define
class Tools:
    """The two tools; they block while ``open`` is unset and count their runs."""

    open: trio.Event = attrs.field(factory=trio.Event)
    started: int = 0
    both_started: trio.Event = attrs.field(factory=trio.Event)
    runs: dict[str, int] = attrs.field(factory=lambda: {"charge": 0, "lookup": 0})

    def register(self, runtime: RuntimeManager) -> Any:
        role = runtime.identities.register_role("clerk")

        @tool
        async def charge(order: str) -> str:
            """Charge an order (not idempotent)."""
            await self._enter("charge")
            return f"charged {order}"

        @tool(idempotent=True)
        async def lookup(query: str) -> str:
            """Look an order up (idempotent)."""
            await self._enter("lookup")
            return f"found {query}"

        runtime.tool_bus.register_tool(charge, roles=[role])
        runtime.tool_bus.register_tool(lookup, roles=[role])
        return role

    async def _enter(self, name: str) -> None:
        self.runs[name] += 1
        self.started += 1
        if self.started == 2:
            self.both_started.set()
        await self.open.wait()


def config(tmp_path: Path) -> AgentConfig:
    return AgentConfig(persistence=PersistenceSettings(path=str(tmp_path / "store.db")))


SPEC = AgentSpec(role="clerk", max_turns=4)


async def test_a_task_resumes_from_its_checkpoint_in_the_next_process(tmp_path: Path) -> None:
    first_tools, first_model = Tools(), Planner()
    async with RuntimeManager.open(config(tmp_path)) as runtime:
        role = first_tools.register(runtime)
        agent = await runtime.spawn_agent(
            SPEC, first_model, name="clerk-1", roles=[role], durable=True
        )
        assert isinstance(agent, DurableAgentRef)
        await agent.tell("bill order o1")
        with trio.fail_after(5):
            await first_tools.both_started.wait()
        store = await runtime.actor_system.durable.store()  # type: ignore[union-attr]
        saved = await AgentCheckpoints(store, "clerk-1").load()
        assert saved is not None
        assert (saved.prompt, saved.turn) == ("bill order o1", 1)
        assert [c.name for c in saved.pending_tool_calls] == ["charge", "lookup"]
        # leaving the block ends the runtime with the task in flight: the process "ends"

    second_tools, second_model = Tools(), Planner()
    second_tools.open.set()
    async with RuntimeManager.open(config(tmp_path)) as runtime:
        role = second_tools.register(runtime)
        agent = await runtime.spawn_agent(
            SPEC, second_model, name="clerk-1", roles=[role], durable=True
        )
        assert agent.statistics().replayed == 1
        with trio.fail_after(5):
            await second_model.answered.wait()
        store = await runtime.actor_system.durable.store()  # type: ignore[union-attr]
        with trio.fail_after(5):
            while await store.pending("clerk-1"):
                await trio.sleep(0.005)
        assert await store.get_checkpoint("agent/clerk-1/task") is None  # the task ended

    # resumed, not restarted: one model call in the second process, after the recovery
    assert len(first_model.requests) == 1
    assert len(second_model.requests) == 1
    assert second_tools.runs == {"charge": 0, "lookup": 1}  # only the idempotent re-ran
    (answer,) = second_model.answers
    assert answer == f"charge: {OUTCOME_UNKNOWN} | lookup: found o1"
    tool_results = [m for m in second_model.requests[0].messages if m.role.value == "tool"]
    assert [m.is_error for m in tool_results] == [True, False]


async def test_checkpoints_are_compare_and_set_and_typed_when_unreadable(tmp_path: Path) -> None:
    settings = PersistenceSettings(path=str(tmp_path / "store.db"))
    async with open_sqlite_store(settings) as store:
        mine, theirs = AgentCheckpoints(store, "a"), AgentCheckpoints(store, "a")
        state = TaskCheckpoint("p", 1, (Message.user("p"),), (0,), "")
        assert await mine.load() is None
        assert await theirs.load() is None
        await mine.save(state)
        with pytest.raises(CheckpointConflict):
            await theirs.save(attrs.evolve(state, turn=2))  # it did not see mine
        assert await theirs.load() == state
        await theirs.save(attrs.evolve(state, turn=2))
        await store.put_checkpoint("agent/b/task", b'{"prompt": 3}')
        with pytest.raises(CheckpointUnreadable, match="'agent/b/task'"):
            await AgentCheckpoints(store, "b").load()
    with pytest.raises(CheckpointUnreadable, match="not a task checkpoint"):
        decode_checkpoint("k", b"not json")


async def test_a_durable_agent_needs_a_store() -> None:
    from mister_smith.agents import spawn_agent

    async with open_actor_system() as system:
        with pytest.raises(DurabilityUnavailable, match="has no store"):
            await spawn_agent(system, SPEC, Planner(), name="clerk", durable=True)
