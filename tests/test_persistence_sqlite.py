"""The embedded SQLite store as a file: WAL, one process at a time, typed failures.

What every store promises is in the conformance suite; here is what is particular to
the file: how it is opened and locked, what happens to a file that is not a store (or
a newer one), a disk that fills up mid-batch, and group commit at work.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import trio

from mister_smith.config import PersistenceSettings
from mister_smith.errors import (
    PersistenceError,
    StoreCorrupted,
    StoreLocked,
    StoreUnavailable,
    StoreWriteFailed,
)
from mister_smith.persistence import SQLiteStore, open_sqlite_store
from mister_smith.persistence._sqlite_schema import APPLICATION_ID, SCHEMA_VERSION


def settings(tmp_path: Path, **fields: object) -> PersistenceSettings:
    return PersistenceSettings(path=str(tmp_path / "store.db"), **fields)  # type: ignore[arg-type]


def inspect(path: Path, query: str) -> object:
    """Read the closed store file directly."""
    connection = sqlite3.connect(path)
    try:
        return connection.execute(query).fetchone()[0]
    finally:
        connection.close()


async def test_the_file_is_a_wal_store_and_closes_cleanly(tmp_path: Path) -> None:
    async with open_sqlite_store(settings(tmp_path)) as store:
        await store.append("inbox", b"x")
        assert store.path == str(tmp_path / "store.db")
        assert (tmp_path / "store.db-wal").exists()  # committed into the log
    assert inspect(tmp_path / "store.db", "PRAGMA journal_mode") == "wal"
    assert inspect(tmp_path / "store.db", "PRAGMA application_id") == APPLICATION_ID
    assert inspect(tmp_path / "store.db", "PRAGMA integrity_check") == "ok"
    assert inspect(tmp_path / "store.db", "SELECT count(*) FROM messages") == 1


async def test_a_second_opener_is_refused_while_the_first_holds_it(tmp_path: Path) -> None:
    async with open_sqlite_store(settings(tmp_path)) as store:
        await store.append("inbox", b"x")
        with pytest.raises(StoreLocked, match="open in another process"):
            async with open_sqlite_store(settings(tmp_path)):
                pass  # pragma: no cover
        assert len(await store.pending("inbox")) == 1  # the holder is unaffected
    async with open_sqlite_store(settings(tmp_path)) as again:  # released on close
        assert len(await again.pending("inbox")) == 1


async def test_a_foreign_sqlite_file_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    connection = sqlite3.connect(path)
    connection.execute("CREATE TABLE users (name TEXT)")
    connection.commit()
    connection.close()
    with pytest.raises(StoreCorrupted, match="not a mister_smith store"):
        async with open_sqlite_store(settings(tmp_path)):
            pass  # pragma: no cover
    assert inspect(path, "SELECT count(*) FROM sqlite_master") == 1


async def test_a_file_that_is_not_sqlite_is_refused(tmp_path: Path) -> None:
    (tmp_path / "store.db").write_bytes(b"this is not a database, " * 100)
    with pytest.raises(StoreCorrupted, match="not a readable store file"):
        async with open_sqlite_store(settings(tmp_path)):
            pass  # pragma: no cover


async def test_a_store_from_a_newer_version_is_refused(tmp_path: Path) -> None:
    async with open_sqlite_store(settings(tmp_path)):
        pass
    connection = sqlite3.connect(tmp_path / "store.db")
    connection.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (99,))
    connection.commit()
    connection.close()
    with pytest.raises(StoreCorrupted, match=f"version 99; this version reads {SCHEMA_VERSION}"):
        async with open_sqlite_store(settings(tmp_path)):
            pass  # pragma: no cover


async def test_a_path_that_cannot_be_a_file_is_unavailable(tmp_path: Path) -> None:
    (tmp_path / "store.db").mkdir()
    with pytest.raises(StoreUnavailable) as excinfo:
        async with open_sqlite_store(settings(tmp_path)):
            pass  # pragma: no cover
    assert isinstance(excinfo.value, PersistenceError)
    assert "store.db" in str(excinfo.value)


async def test_a_full_disk_fails_the_batch_and_the_store_recovers(tmp_path: Path) -> None:
    async with open_sqlite_store(settings(tmp_path)) as store:
        await store.append("inbox", b"before")
        pages = await limit_pages(store, extra=1)  # fault injection: the disk is full
        results: list[object] = []

        async def append(n: int) -> None:
            try:
                results.append(await store.append("inbox", bytes(8000)))
            except StoreWriteFailed as exc:
                results.append(exc)

        async with trio.open_nursery() as nursery:
            for n in range(10):
                nursery.start_soon(append, n)
        failures = [r for r in results if isinstance(r, StoreWriteFailed)]
        assert failures
        assert all("rolled back" in str(f) for f in failures)
        assert all(isinstance(f.__cause__, sqlite3.Error) for f in failures)
        stats = store.statistics()
        assert stats.failed_batches >= 1
        written = len(results) - len(failures)
        assert len(await store.pending("inbox")) == 1 + written
        await limit_pages(store, extra=10_000, pages=pages)  # space again
        await store.append("inbox", b"after")
        assert len(await store.pending("inbox")) == 2 + written
    async with open_sqlite_store(settings(tmp_path)) as reopened:
        assert len(await reopened.pending("inbox")) == 2 + written


async def limit_pages(store: SQLiteStore, *, extra: int, pages: int | None = None) -> int:
    """Cap the file at its current size plus ``extra`` pages (through the store's own
    connection, while its writer is idle: fault injection, not an API)."""
    connection = store._writer._db

    def apply() -> int:
        used = int(connection.execute("PRAGMA page_count").fetchone()[0])
        connection.execute(f"PRAGMA max_page_count = {(pages or used) + extra}")
        return used

    return await trio.to_thread.run_sync(apply)


async def test_concurrent_appends_share_commits(tmp_path: Path) -> None:
    async with open_sqlite_store(settings(tmp_path, batch_max=16)) as store:
        async with trio.open_nursery() as nursery:
            for n in range(64):
                nursery.start_soon(store.append, "inbox", bytes([n]))
        stats = store.statistics()
        assert stats.appended == 64
        assert stats.commits < 64  # group commit: several appends per transaction
        assert stats.largest_batch <= 16
        assert stats.operations == 64


async def test_counts_are_restored_on_reopen(tmp_path: Path) -> None:
    async with open_sqlite_store(settings(tmp_path)) as store:
        for n in range(3):
            appended = await store.append("inbox", b"x", message_id=f"id-{n}")
            if n:
                await store.ack("inbox", appended.seq)
        seq = (await store.append("inbox", b"dead")).seq
        await store.dead_letter("inbox", seq, "because")
        await store.journal_append("audit", [b"a", b"b"])
    async with open_sqlite_store(settings(tmp_path)) as store:
        stats = store.statistics()
        assert (stats.pending, stats.remembered_ids, stats.dead_letters) == (1, 2, 1)
        assert stats.journal_entries == 2


async def test_a_long_dead_letter_reason_is_cut_not_refused(tmp_path: Path) -> None:
    async with open_sqlite_store(settings(tmp_path)) as store:
        seq = (await store.append("inbox", b"x")).seq
        assert await store.dead_letter("inbox", seq, "why " * 10_000)
        (letter,) = await store.dead_letters("inbox")
        assert len(letter.reason) <= 4096
        assert letter.reason.endswith("...(cut)")
