"""Every ``persistence.*`` setting acts: each test loads it from TOML the way a user
writes it and shows its effect on a store opened from ``config.persistence``.

These are the behavioural tests ``tests/test_settings_effects.py`` names for the section.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trio

from mister_smith.config import ConfigValidationError, loads_config
from mister_smith.errors import RecordTooLarge
from mister_smith.persistence import SQLiteStore, open_sqlite_store
from mister_smith.persistence.conformance import ManualClock


@asynccontextmanager
async def store_from(
    toml: str, tmp_path: Path, clock: ManualClock | None = None
) -> AsyncIterator[SQLiteStore]:
    """Open the store ``[persistence]`` in ``toml`` describes (path under ``tmp_path``)."""
    text = f'[persistence]\npath = "{tmp_path / "store.db"}"\n{toml}'
    config = loads_config(text)
    async with open_sqlite_store(config.persistence, clock=clock or ManualClock()) as store:
        yield store


async def test_path_names_the_store_file(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "agents.db"
    config = loads_config(f'[persistence]\npath = "{path}"\n')
    async with open_sqlite_store(config.persistence) as store:
        await store.append("inbox", b"x")
        assert store.path == str(path)
    assert path.is_file()  # missing directories were created
    async with open_sqlite_store(config.persistence) as store:
        assert len(await store.pending("inbox")) == 1
    with pytest.raises(ConfigValidationError, match=r"persistence\.path"):
        loads_config('[persistence]\npath = ""\n')


@pytest.mark.parametrize("mode", ["normal", "FULL"])
async def test_synchronous_sets_the_commit_durability(tmp_path: Path, mode: str) -> None:
    async with store_from(f'synchronous = "{mode}"\n', tmp_path) as store:
        assert store.synchronous == mode.lower()  # as SQLite reports it back
        await store.append("inbox", b"x")
    with pytest.raises(ConfigValidationError, match=r"persistence\.synchronous"):
        loads_config('[persistence]\nsynchronous = "off"\n')


async def test_batch_max_caps_operations_per_commit(tmp_path: Path) -> None:
    async with store_from("batch_max = 3\n", tmp_path) as store:
        async with trio.open_nursery() as nursery:
            for n in range(30):
                nursery.start_soon(store.append, "inbox", bytes([n]))
        stats = store.statistics()
        assert stats.largest_batch <= 3
        assert stats.commits >= 10
    async with store_from("batch_max = 1\n", tmp_path) as store:
        async with trio.open_nursery() as nursery:
            for n in range(5):
                nursery.start_soon(store.append, "inbox", bytes([n]))
        assert store.statistics().commits == store.statistics().operations == 5


async def test_max_record_bytes_refuses_larger_records(tmp_path: Path) -> None:
    async with store_from("max_record_bytes = 2048\n", tmp_path) as store:
        await store.put_checkpoint("k", bytes(2048))
        with pytest.raises(RecordTooLarge, match="2049 bytes; at most 2048"):
            await store.put_checkpoint("k", bytes(2049))
        checkpoint = await store.get_checkpoint("k")
        assert checkpoint is not None
        assert len(checkpoint.data) == 2048


async def test_dedupe_window_is_how_long_handled_ids_are_remembered(tmp_path: Path) -> None:
    clock = ManualClock()
    async with store_from('dedupe_window = "30s"\n', tmp_path, clock) as store:
        seq = (await store.append("inbox", b"x", message_id="a")).seq
        await store.ack("inbox", seq)
        clock.advance(29)
        assert (await store.append("inbox", b"x", message_id="a")).duplicate
        clock.advance(2)
        assert not (await store.append("inbox", b"x", message_id="a")).duplicate


async def test_dedupe_capacity_bounds_the_remembered_ids(tmp_path: Path) -> None:
    clock = ManualClock()
    async with store_from("dedupe_capacity = 10\n", tmp_path, clock) as store:
        for n in range(25):
            seq = (await store.append("inbox", b"x", message_id=f"id-{n}")).seq
            await store.ack("inbox", seq)
            clock.advance(0.001)
        assert store.statistics().remembered_ids == 10
        assert (await store.append("inbox", b"x", message_id="id-24")).duplicate
        assert not (await store.append("inbox", b"x", message_id="id-0")).duplicate


async def test_dead_letter_retention(tmp_path: Path) -> None:
    clock = ManualClock()
    toml = 'dead_letter_capacity = 3\ndead_letter_max_age = "1h"\n'
    async with store_from(toml, tmp_path, clock) as store:
        for n in range(5):
            seq = (await store.append("inbox", bytes([n]))).seq
            await store.dead_letter("inbox", seq, "stopped")
        assert [d.payload for d in await store.dead_letters("inbox")] == [b"\x02", b"\x03", b"\x04"]
        clock.advance(3601)
        assert await store.dead_letters("inbox") == []
        await store.append("inbox", b"sweep")  # the next commit deletes them
        assert store.statistics().dead_letters == 0


async def test_journal_retention(tmp_path: Path) -> None:
    clock = ManualClock()
    toml = 'journal_max_entries = 4\njournal_max_age = "10m"\n'
    async with store_from(toml, tmp_path, clock) as store:
        await store.journal_append("audit", [b"1", b"2", b"3"])
        await store.journal_append("audit", [b"4", b"5", b"6"])
        assert [e.data for e in await store.journal_replay("audit")] == [b"3", b"4", b"5", b"6"]
        clock.advance(601)
        await store.journal_append("audit", [b"7"])
        assert [e.data for e in await store.journal_replay("audit")] == [b"7"]
        assert store.statistics().journal_entries == 1
