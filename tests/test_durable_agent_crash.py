"""Crash test of durable agents: the process running a durable agent's task is SIGKILLed
inside a tool call at a step hypothesis draws (before or after the step took effect);
the agent is spawned again here and must resume the task from its checkpoint.

What must hold: the checkpoint left behind is whole (it decodes) and names the step in
flight; the resumed task does not start over (steps before the kill are not run again,
and the model is asked only for the remaining turns); the step in flight is not re-run
(its tool is not idempotent) and the model is told its outcome is unknown; every other
step takes effect exactly once; the task's message and checkpoint are gone at the end.
"""

from __future__ import annotations

import collections
import os
import subprocess
import sys
from pathlib import Path

import pytest
import trio
from durable_agent_worker import AGENT, SPEC, STEPS, Stepper, config, register_step
from hypothesis import given, settings
from hypothesis import strategies as st

from mister_smith.agents import OUTCOME_UNKNOWN, AgentCheckpoints
from mister_smith.runtime import RuntimeManager

WORKER = Path(__file__).with_name("durable_agent_worker.py")
ROOT = Path(__file__).parent.parent


async def resume(store: Path, effects: Path) -> tuple[int, str, int]:
    """Spawn the agent again; (saved turn, the answer, model requests made here)."""
    model = Stepper()
    async with RuntimeManager.open(config(str(store))) as runtime:
        role = register_step(runtime, str(effects), kill_on=-1, effect_first=True)
        durable = runtime.actor_system.durable
        assert durable is not None
        saved = await AgentCheckpoints(await durable.store(), AGENT).load()
        assert saved is not None  # whole: it decoded
        agent = await runtime.spawn_agent(SPEC, model, name=AGENT, roles=[role], durable=True)
        assert agent.statistics().replayed == 1
        with trio.fail_after(10):
            await model.answered.wait()
        store_now = await durable.store()
        with trio.fail_after(10):
            while await store_now.pending(AGENT):
                await trio.sleep(0.005)
        assert await store_now.get_checkpoint(f"agent/{AGENT}/task") is None
        assert [c.name for c in saved.pending_tool_calls] == ["step"]
        assert model.answer is not None
        return saved.turn, model.answer, model.requests


@settings(max_examples=3, deadline=None)
@given(kill_on=st.integers(1, STEPS), effect_first=st.booleans())
def test_a_killed_agent_task_resumes_from_its_checkpoint(
    tmp_path_factory: pytest.TempPathFactory, kill_on: int, effect_first: bool
) -> None:
    directory = tmp_path_factory.mktemp("agent-crash")
    store, effects = directory / "store.db", directory / "effects"
    done = subprocess.run(
        [sys.executable, str(WORKER), str(store), str(effects), str(kill_on),
         "1" if effect_first else "0"],
        capture_output=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=30,
        check=False,
    )  # fmt: skip
    assert done.returncode == -9, done.stderr.decode()[-2000:]

    turn, answer, requests = trio.run(resume, store, effects)

    assert turn == kill_on  # saved before the turn's tool call ran
    assert requests == STEPS - kill_on + 1  # resumed: only the remaining turns
    counts = collections.Counter(int(n) for n in effects.read_text().split())
    expected = {n: 1 for n in range(1, STEPS + 1) if n != kill_on}
    if effect_first:
        expected[kill_on] = 1  # it took effect before the kill, and was not run again
    assert dict(counts) == expected
    lines = answer.splitlines()
    assert lines[kill_on - 1] == f"s{kill_on}: {OUTCOME_UNKNOWN}"
    assert all(line == f"s{n}: step {n} done" for n, line in enumerate(lines, 1) if n != kill_on)
