"""A durable agent working through ``STEPS`` tool calls, one per turn, in a process that
SIGKILLs itself inside step ``KILL_ON`` (before or after the step's effect is written);
run as a script by ``test_durable_agent_crash.py``, which imports the model and tools.

``python durable_agent_worker.py STORE EFFECTS KILL_ON EFFECT_FIRST``
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Any

import attrs
import trio

from mister_smith.agents import AgentSpec, ModelRequest, ModelResponse, ToolCall
from mister_smith.config import AgentConfig, PersistenceSettings
from mister_smith.runtime import RuntimeManager
from mister_smith.tools import tool

STEPS = 6
AGENT = "stepper"
SPEC = AgentSpec(role="stepper", max_turns=STEPS + 2)


@attrs.define
class Stepper:
    """Calls ``step`` with 1, 2, ... one per turn; answers with every result after the
    last step."""

    requests: int = 0
    answer: str | None = None
    answered: trio.Event = attrs.field(factory=trio.Event)

    @property
    def name(self) -> str:
        return "stepper"

    async def complete(self, request: ModelRequest) -> ModelResponse:
        self.requests += 1
        results = [m for m in request.messages if m.tool_call_id is not None]
        if len(results) < STEPS:
            n = len(results) + 1
            return ModelResponse(tool_calls=(ToolCall(f"s{n}", "step", {"n": n}),))
        self.answer = "\n".join(f"{m.tool_call_id}: {m.content}" for m in results)
        self.answered.set()
        return ModelResponse(text=self.answer)


def register_step(runtime: RuntimeManager, effects: str, kill_on: int, effect_first: bool) -> Any:
    """Register the non-idempotent ``step`` tool for the role ``stepper``."""
    role = runtime.identities.register_role("stepper")

    @tool
    async def step(n: int) -> str:
        """Take step ``n`` (writes its effect; not idempotent)."""
        if n == kill_on and not effect_first:
            os.kill(os.getpid(), signal.SIGKILL)
        fd = os.open(effects, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        try:
            os.write(fd, f"{n}\n".encode())
        finally:
            os.close(fd)
        if n == kill_on:
            os.kill(os.getpid(), signal.SIGKILL)
        await trio.lowlevel.checkpoint()
        return f"step {n} done"

    runtime.tool_bus.register_tool(step, roles=[role])
    return role


def config(store: str) -> AgentConfig:
    return AgentConfig(persistence=PersistenceSettings(path=store))


async def first_run(store: str, effects: str, kill_on: int, effect_first: bool) -> None:
    async with RuntimeManager.open(config(store)) as runtime:
        role = register_step(runtime, effects, kill_on, effect_first)
        agent = await runtime.spawn_agent(SPEC, Stepper(), name=AGENT, roles=[role], durable=True)
        await agent.tell("take every step")
        sys.stdout.write("told\n")
        sys.stdout.flush()
        await trio.sleep_forever()  # the step tool kills the process


if __name__ == "__main__":
    store_path, effects_path, kill_text, first_text = sys.argv[1:5]
    trio.run(first_run, store_path, effects_path, int(kill_text), first_text == "1")
