"""Durable ``tell`` next to in-memory ``tell`` and next to raw ``sqlite3`` batching.

Ours: N tasks ``tell`` a small registered message to one durable actor (spawned with
``durable=True`` over the embedded store, ``batch_max`` = N); the clock stops once every
``tell`` returned (each had committed) and the actor handled every message (its acks
commit in the same writer, competing with the appends). So one durable message here
costs: encoding (cattrs + JSON), an append through the group commit, the in-memory
mailbox, the handler, and an ack.

* ``durable tell, N tellers`` vs a raw ``sqlite3`` loop on the event loop's thread that
  inserts one row per message and commits every N rows (the same batching, none of the
  rest): the goal is >= 0.5x.
* ``durable tell vs in-memory, N tellers``: the same workload with the baseline being
  the same actor spawned without ``durable`` (what durability costs per message).
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import attrs
import trio

from benchmarks import BenchCase, Throughput
from mister_smith.actors import Actor, ActorContext, ActorRef, open_actor_system
from mister_smith.config import PersistenceSettings
from mister_smith.persistence import durable_message, open_sqlite_store
from mister_smith.persistence._sqlite_schema import SCHEMA


@durable_message(tag="bench.Order")
@attrs.frozen
class Order:
    """A small message (about 40 bytes encoded)."""

    order: int
    item: str


class Counter(Actor):
    """Counts messages and wakes the bench when the last one was handled."""

    def __init__(self, expected: int, done: trio.Event) -> None:
        self.expected = expected
        self.done = done
        self.count = 0

    async def handle(self, message: Any, ctx: ActorContext) -> None:
        self.count += 1
        if self.count >= self.expected:
            self.done.set()


_INSERT = (
    "INSERT INTO messages (seq, mailbox, message_id, payload, appended_at) VALUES (?, ?, ?, ?, ?)"
)


def cases(quick: bool) -> Sequence[BenchCase]:
    """Durable tell throughput against raw sqlite3 and against in-memory tell."""
    scale = 1 if quick else 8
    built: list[BenchCase] = []
    for tellers in (64, 256):
        loops = tellers * 16 * scale
        built.append(
            Throughput(
                name=f"durable tell, {tellers} tellers",
                unit="messages/s",
                loops=loops,
                ours=_tells(tellers, durable=True),
                baseline=_raw_inserts(tellers),
                baseline_label=f"sqlite3 execute per row, COMMIT every {tellers} rows",
                description=f"{tellers} tasks tell a durable actor until all are handled",
            )
        )
        built.append(
            Throughput(
                name=f"durable tell vs in-memory, {tellers} tellers",
                unit="messages/s",
                loops=loops,
                ours=_tells(tellers, durable=True),
                baseline=_tells(tellers, durable=False),
                baseline_label="the same tells to the actor spawned without durable",
                description=f"{tellers} tasks tell one actor until all are handled",
            )
        )
    return built


@contextmanager
def _scratch() -> Iterator[str]:
    directory = tempfile.mkdtemp(prefix="bench-durable-")
    try:
        yield os.path.join(directory, "store.db")
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _tells(tellers: int, *, durable: bool) -> Callable[[int], Awaitable[float]]:
    async def run(loops: int) -> float:
        each = max(loops // tellers, 1)
        total = each * tellers
        done = trio.Event()
        with _scratch() as path:
            settings = PersistenceSettings(path=path, batch_max=2 * tellers)  # append + ack
            async with (
                open_sqlite_store(settings) as store,
                open_actor_system(store=store, mailbox_capacity=tellers * 2) as system,
            ):
                ref: ActorRef = await system.spawn(
                    Counter, total, done, name="orders", durable=durable
                )

                async def teller(first: int) -> None:
                    for n in range(first, first + each):
                        await ref.tell(Order(n, "widget"))

                started = time.perf_counter()
                async with trio.open_nursery() as nursery:
                    for index in range(tellers):
                        nursery.start_soon(teller, index * each)
                await done.wait()
                elapsed = time.perf_counter() - started
        return elapsed * loops / total

    return run


def _raw_inserts(batch: int) -> Callable[[int], Awaitable[float]]:
    async def run(loops: int) -> float:
        with _scratch() as path:
            connection = sqlite3.connect(path, isolation_level=None)
            connection.execute("PRAGMA locking_mode = EXCLUSIVE")
            connection.execute("PRAGMA journal_mode = WAL")
            connection.execute("PRAGMA synchronous = NORMAL")
            connection.execute("BEGIN IMMEDIATE")
            for statement in SCHEMA:
                connection.execute(statement)
            connection.execute("COMMIT")
            payload = b'bench.Order\n{"order":1,"item":"widget"}'
            seq = 1
            started = time.perf_counter()
            for _ in range(max(loops // batch, 1)):
                connection.execute("BEGIN IMMEDIATE")
                now = time.time()
                for _ in range(batch):
                    connection.execute(_INSERT, (seq, "orders", f"id-{seq}", payload, now))
                    seq += 1
                connection.execute("COMMIT")
            elapsed = time.perf_counter() - started
            connection.close()
        await trio.lowlevel.checkpoint()
        return elapsed * loops / (seq - 1)

    return run
