"""The embedded store next to raw ``sqlite3`` doing the same writes with the same batching.

Both sides write the store's own tables (same schema, WAL, exclusive lock,
``synchronous=NORMAL``) into a fresh file in a temporary directory; only the writes are
timed. The baseline is the loop a careful programmer writes by hand on the event loop's
thread: ``execute`` one ``INSERT`` per row and ``COMMIT`` every ``batch`` rows. Ours goes
through the whole durable path a ``tell`` will take: argument checks, the queue, the
writer thread, the transaction, and each caller woken with its own committed ``seq``.

* ``append_many, batches of N``: one task appends N messages per call (one commit
  each); the baseline commits every N rows. The store's own write path.
* ``append, N tellers``: N tasks append concurrently (each waits for its commit);
  ``batch_max`` = N, and the baseline commits every N rows: the same batching. On top
  of the write path, each append is a Trio task parking and being woken (about 4 us of
  CPU in CPython, as much as SQLite's own work per row), which a plain loop does not
  pay: that is the cost of a durable ``tell`` per message.
* ``append, 1 teller``: one task appending in a loop, so one commit per append; the
  baseline commits every row.
* ``append latency``: one append at a time, from call to committed.
* ``checkpoint, 16 KiB``: ``put_checkpoint`` of an agent-turn-sized state (the cost per
  agent turn), next to an upsert + commit.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager

import trio

from benchmarks import BenchCase, Latency, Throughput
from mister_smith.config import PersistenceSettings
from mister_smith.persistence import open_sqlite_store
from mister_smith.persistence._sqlite_schema import SCHEMA

PAYLOAD = b"m" * 100
"""A small serialised message."""

CHECKPOINT = b"c" * 16 * 1024
"""An agent turn's state: context window, summary, usage."""

_INSERT = (
    "INSERT INTO messages (seq, mailbox, message_id, payload, appended_at)"
    " VALUES (?, ?, NULL, ?, ?)"
)
_UPSERT = (
    "INSERT INTO checkpoints (key, version, data, updated_at) VALUES (?, ?, ?, ?)"
    " ON CONFLICT (key) DO UPDATE SET version = excluded.version, data = excluded.data,"
    " updated_at = excluded.updated_at"
)


def cases(quick: bool) -> Sequence[BenchCase]:
    """Durable append throughput and latency, checkpoint latency."""
    scale = 1 if quick else 8
    built: list[BenchCase] = [
        Throughput(
            name=f"append_many, batches of {batch}",
            unit="appends/s",
            loops=batch * 24 * scale,
            ours=_batched_appends(batch),
            baseline=_raw_inserts(batch),
            baseline_label=f"sqlite3 execute per row, COMMIT every {batch} rows",
            description=f"one task, append_many of {batch} messages per call",
        )
        for batch in (64, 256)
    ]
    built += [
        Throughput(
            name=f"append, {tellers} tellers",
            unit="appends/s",
            loops=tellers * 24 * scale,
            ours=_concurrent_appends(tellers),
            baseline=_raw_inserts(tellers),
            baseline_label=f"sqlite3 execute per row, COMMIT every {tellers} rows",
            description=f"{tellers} tasks appending concurrently, batch_max={tellers}",
        )
        for tellers in (64, 256)
    ]
    built += [
        Throughput(
            name="append, 1 teller",
            unit="appends/s",
            loops=300 * scale,
            ours=_concurrent_appends(1),
            baseline=_raw_inserts(1),
            baseline_label="sqlite3 execute + COMMIT per row",
            description="one task appending in a loop: one commit per append",
        ),
        Latency(
            name="append latency, 1 teller",
            loops=300 * scale,
            ours=_append_latency,
            baseline=_raw_insert_latency,
            baseline_label="sqlite3 execute + COMMIT",
            description="from the call until the append has committed",
        ),
        Latency(
            name="checkpoint, 16 KiB",
            loops=200 * scale,
            ours=_checkpoint_latency,
            baseline=_raw_upsert_latency,
            baseline_label="sqlite3 upsert + COMMIT",
            description="put_checkpoint of an agent turn's state",
        ),
    ]
    return built


@contextmanager
def _scratch() -> Iterator[str]:
    directory = tempfile.mkdtemp(prefix="bench-persistence-")
    try:
        yield os.path.join(directory, "store.db")
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _settings(path: str, batch_max: int = 256) -> PersistenceSettings:
    return PersistenceSettings(path=path, batch_max=batch_max)


def _raw_connection(path: str) -> sqlite3.Connection:
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("PRAGMA locking_mode = EXCLUSIVE")
    connection.execute("PRAGMA journal_mode = WAL")
    connection.execute("PRAGMA synchronous = NORMAL")
    connection.execute("BEGIN IMMEDIATE")
    for statement in SCHEMA:
        connection.execute(statement)
    connection.execute("COMMIT")
    return connection


# -- throughput ---------------------------------------------------------------------------


def _concurrent_appends(tellers: int) -> Callable[[int], Awaitable[float]]:
    async def run(loops: int) -> float:
        each = max(loops // tellers, 1)
        with _scratch() as path:
            async with open_sqlite_store(_settings(path, batch_max=tellers)) as store:

                async def teller() -> None:
                    for _ in range(each):
                        await store.append("bench", PAYLOAD)

                started = time.perf_counter()
                async with trio.open_nursery() as nursery:
                    for _ in range(tellers):
                        nursery.start_soon(teller)
                elapsed = time.perf_counter() - started
        return elapsed * loops / (each * tellers)

    return run


def _batched_appends(batch: int) -> Callable[[int], Awaitable[float]]:
    async def run(loops: int) -> float:
        calls = max(loops // batch, 1)
        payloads = [PAYLOAD] * batch
        with _scratch() as path:
            async with open_sqlite_store(_settings(path)) as store:
                started = time.perf_counter()
                for _ in range(calls):
                    await store.append_many("bench", payloads)
                elapsed = time.perf_counter() - started
        return elapsed * loops / (calls * batch)

    return run


def _raw_inserts(batch: int) -> Callable[[int], Awaitable[float]]:
    async def run(loops: int) -> float:
        with _scratch() as path:
            connection = _raw_connection(path)
            seq = 1
            started = time.perf_counter()
            for _ in range(max(loops // batch, 1)):
                connection.execute("BEGIN IMMEDIATE")
                now = time.time()
                for _ in range(batch):
                    connection.execute(_INSERT, (seq, "bench", PAYLOAD, now))
                    seq += 1
                connection.execute("COMMIT")
            elapsed = time.perf_counter() - started
            connection.close()
        await trio.lowlevel.checkpoint()
        return elapsed * loops / (seq - 1)

    return run


# -- latency ------------------------------------------------------------------------------


async def _append_latency(loops: int) -> Sequence[float]:
    latencies = []
    with _scratch() as path:
        async with open_sqlite_store(_settings(path)) as store:
            for _ in range(loops):
                started = time.perf_counter()
                await store.append("bench", PAYLOAD)
                latencies.append(time.perf_counter() - started)
    return latencies


async def _raw_insert_latency(loops: int) -> Sequence[float]:
    latencies = []
    with _scratch() as path:
        connection = _raw_connection(path)
        for seq in range(1, loops + 1):
            started = time.perf_counter()
            connection.execute("BEGIN IMMEDIATE")
            connection.execute(_INSERT, (seq, "bench", PAYLOAD, time.time()))
            connection.execute("COMMIT")
            latencies.append(time.perf_counter() - started)
        connection.close()
    await trio.lowlevel.checkpoint()
    return latencies


async def _checkpoint_latency(loops: int) -> Sequence[float]:
    latencies = []
    with _scratch() as path:
        async with open_sqlite_store(_settings(path)) as store:
            for _ in range(loops):
                started = time.perf_counter()
                await store.put_checkpoint("agent/turns", CHECKPOINT)
                latencies.append(time.perf_counter() - started)
    return latencies


async def _raw_upsert_latency(loops: int) -> Sequence[float]:
    latencies = []
    with _scratch() as path:
        connection = _raw_connection(path)
        for version in range(1, loops + 1):
            started = time.perf_counter()
            connection.execute("BEGIN IMMEDIATE")
            connection.execute("SELECT version FROM checkpoints WHERE key = ?", ("agent/turns",))
            connection.execute(_UPSERT, ("agent/turns", version, CHECKPOINT, time.time()))
            connection.execute("COMMIT")
            latencies.append(time.perf_counter() - started)
        connection.close()
    await trio.lowlevel.checkpoint()
    return latencies
