"""Crash tests of durable mailboxes: a process telling a durable actor is SIGKILLed at a
point hypothesis draws (after some tells returned, or inside the handler before or after
its effect), then the actor is spawned again here and every sender retries.

What must hold after the restart:

* every message whose ``tell`` returned before the kill is handled (its effect is
  written) — replayed from the store if it had not been handled;
* the retried sends (same message ids) deliver nothing twice that the store remembers:
  only a message handled but not yet acked at the kill can take effect twice
  (at-least-once), and never more than twice;
* nothing stays pending, nothing is dead-lettered, and the file passes
  ``PRAGMA integrity_check``.
"""

from __future__ import annotations

import collections
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import trio
from durable_crash_worker import Item, Sink
from hypothesis import given, settings
from hypothesis import strategies as st

from mister_smith.actors import DurableActorRef, open_actor_system
from mister_smith.config import PersistenceSettings
from mister_smith.persistence import open_sqlite_store

WORKER = Path(__file__).with_name("durable_crash_worker.py")
ROOT = Path(__file__).parent.parent
TOTAL = 40


def run_killed(store: Path, effects: Path, kill_after: int, kill_on: int, first: bool) -> set[int]:
    """Run the workload until it kills itself; the numbers whose tell returned."""
    done = subprocess.run(
        [
            sys.executable,
            str(WORKER),
            str(store),
            str(effects),
            str(TOTAL),
            str(kill_after),
            str(kill_on),
            "1" if first else "0",
        ],
        capture_output=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=30,
        check=False,
    )
    assert done.returncode == -9, done.stderr.decode()[-2000:]
    return {int(line) for line in done.stdout.decode().split()}


async def restart_and_retry(store_path: Path, effects: Path) -> tuple[int, int, int]:
    """Spawn the actor again (replaying what is pending), retry every send, wait until
    everything was handled; (replayed, duplicates refused, dead letters)."""
    async with open_sqlite_store(PersistenceSettings(path=str(store_path))) as store:
        async with open_actor_system(store=store) as system:
            ref = await system.spawn(Sink, str(effects), name="sink", durable=True)
            assert isinstance(ref, DurableActorRef)
            refused = 0
            for n in range(TOTAL):
                if not await ref.tell(Item(n), message_id=f"m{n}"):
                    refused += 1
            with trio.fail_after(10):
                while await store.pending("sink"):
                    await trio.sleep(0.005)
            replayed = ref.statistics().replayed
        dead = len(await store.dead_letters("sink"))
    return replayed, refused, dead


def integrity(path: Path) -> str:
    connection = sqlite3.connect(path)
    try:
        result: str = connection.execute("PRAGMA integrity_check").fetchone()[0]
        return result
    finally:
        connection.close()


@settings(max_examples=3, deadline=None)
@given(
    kill_after=st.integers(1, TOTAL + 1),
    kill_on=st.integers(-1, TOTAL - 1),
    effect_first=st.booleans(),
)
def test_sigkill_loses_no_message_whose_tell_returned(
    tmp_path_factory: pytest.TempPathFactory, kill_after: int, kill_on: int, effect_first: bool
) -> None:
    if kill_after > TOTAL and kill_on < 0:
        kill_on = TOTAL - 1  # something must end the first run
    directory = tmp_path_factory.mktemp("durable-crash")
    store, effects = directory / "store.db", directory / "effects"
    returned = run_killed(store, effects, kill_after, kill_on, effect_first)
    before = effects.read_text().split() if effects.exists() else []
    assert integrity(store) == "ok"

    replayed, refused, dead = trio.run(restart_and_retry, store, effects)

    counts = collections.Counter(int(n) for n in effects.read_text().split())
    assert set(counts) == set(range(TOTAL))  # every message took effect
    assert returned <= set(counts)
    twice = {n for n, seen in counts.items() if seen > 1}
    assert max(counts.values()) <= 2
    # only messages handled in the first run can take effect again (a lost ack)
    assert twice <= {int(n) for n in before}
    assert dead == 0
    assert refused >= len(returned) - replayed - len(before)  # retries recognised
    assert integrity(store) == "ok"
