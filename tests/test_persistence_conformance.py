"""The embedded SQLite store passes the store conformance suite.

The suite lives in :mod:`mister_smith.persistence.conformance` so that every store (the
NATS JetStream one of the distributed layer too) runs the same tests; here it runs
against :class:`~mister_smith.persistence.SQLiteStore` on a settable clock.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import pytest
import trio

from mister_smith.config import PersistenceSettings
from mister_smith.persistence import Store, open_sqlite_store
from mister_smith.persistence.conformance import ManualClock, StoreConformance, StoreHarness


class SQLiteHarness:
    """Stores in one directory (``<name>.db``), all on one settable clock."""

    time_scale = 1.0

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.clock = ManualClock()

    def open(self, name: str = "default", **settings: Any) -> AbstractAsyncContextManager[Store]:
        path = str(self.directory / f"{name}.db")
        return open_sqlite_store(PersistenceSettings(path=path, **settings), clock=self.clock)

    async def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)
        await trio.lowlevel.checkpoint()


class TestSQLiteStore(StoreConformance):
    @pytest.fixture
    def store_harness(self, tmp_path: Path) -> StoreHarness:
        return SQLiteHarness(tmp_path)
