"""The SQLite store's file: opening it (WAL, exclusive lock) and its tables.

Opening is blocking and runs on the store's writer thread. Every failure is a typed
:class:`~mister_smith.errors.StoreUnavailable`: :class:`~mister_smith.errors.StoreLocked`
when another process has the file open, :class:`~mister_smith.errors.StoreCorrupted`
when the file is not a store this version reads.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Final, NamedTuple

from ..config import PersistenceSettings
from ..errors import StoreCorrupted, StoreLocked, StoreUnavailable

SCHEMA_VERSION: Final = 1
"""Version of the tables below; a file with a higher one is refused, not guessed at."""

APPLICATION_ID: Final = 0x4D534D53
"""``PRAGMA application_id`` of a store file ("MSMS"), so a foreign file is recognised."""

JOURNAL_SIZE_LIMIT: Final = 64 * 1024 * 1024
"""Bytes the write-ahead log is truncated to after a checkpoint."""

SCHEMA: Final = (
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) STRICT",
    # Pending messages; settled ones leave (acked: deleted, dead: to dead_letters).
    "CREATE TABLE messages (seq INTEGER PRIMARY KEY, mailbox TEXT NOT NULL,"
    " message_id TEXT, payload BLOB NOT NULL, appended_at REAL NOT NULL) STRICT",
    "CREATE INDEX messages_by_mailbox ON messages (mailbox, seq)",
    "CREATE UNIQUE INDEX messages_by_id ON messages (mailbox, message_id)"
    " WHERE message_id IS NOT NULL",
    # Ids of settled messages, kept for the idempotent receive window.
    "CREATE TABLE handled (mailbox TEXT NOT NULL, message_id TEXT NOT NULL,"
    " seq INTEGER NOT NULL, settled_at REAL NOT NULL,"
    " PRIMARY KEY (mailbox, message_id)) WITHOUT ROWID, STRICT",
    "CREATE INDEX handled_by_age ON handled (settled_at)",
    "CREATE TABLE dead_letters (seq INTEGER PRIMARY KEY, mailbox TEXT NOT NULL,"
    " message_id TEXT, payload BLOB NOT NULL, reason TEXT NOT NULL,"
    " appended_at REAL NOT NULL, dead_at REAL NOT NULL) STRICT",
    "CREATE INDEX dead_letters_by_mailbox ON dead_letters (mailbox, seq)",
    "CREATE INDEX dead_letters_by_age ON dead_letters (dead_at)",
    "CREATE TABLE checkpoints (key TEXT PRIMARY KEY, version INTEGER NOT NULL,"
    " data BLOB NOT NULL, updated_at REAL NOT NULL) STRICT",
    "CREATE TABLE journal (seq INTEGER PRIMARY KEY, stream TEXT NOT NULL,"
    " recorded_at REAL NOT NULL, data BLOB NOT NULL) STRICT",
    "CREATE INDEX journal_by_stream ON journal (stream, seq)",
)
"""The tables, created in one transaction when the file is new."""

COUNTED_TABLES: Final = {
    "pending": "messages",
    "remembered_ids": "handled",
    "dead_letters": "dead_letters",
    "journal_entries": "journal",
}
"""Row counts the writer tracks in memory (statistics name to table), read at open."""

_BUSY: Final = frozenset({"SQLITE_BUSY", "SQLITE_LOCKED"})


_SYNCHRONOUS_LEVELS: Final = {"normal": 1, "full": 2}
"""``PRAGMA synchronous`` values of :attr:`PersistenceSettings.synchronous`."""


class OpenedFile(NamedTuple):
    """What :func:`connect` hands the writer."""

    connection: sqlite3.Connection
    """In autocommit mode: the writer issues ``BEGIN``/``COMMIT`` itself."""
    next_seq: int
    """The next free sequence number."""
    counts: dict[str, int]
    """Row counts of :data:`COUNTED_TABLES`."""
    synchronous: str
    """The commit durability SQLite confirmed (``"normal"`` or ``"full"``)."""


def store_path(settings: PersistenceSettings) -> Path:
    """The absolute path of the store file ``settings`` names."""
    return Path(settings.path).absolute()


def connect(settings: PersistenceSettings) -> OpenedFile:
    """Open (creating if needed) the store file: WAL, exclusive lock, current schema.

    Raises:
        StoreLocked: another process holds the file.
        StoreCorrupted: the file is not a store of this version.
        StoreUnavailable: the file cannot be created, opened or written.
    """
    path = store_path(settings)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(path, timeout=0, isolation_level=None, check_same_thread=False)
    except (OSError, sqlite3.Error) as exc:
        raise StoreUnavailable(f"cannot open the store file {str(path)!r}: {exc}") from exc
    try:
        return _prepare(connection, path, settings)
    except BaseException:
        connection.close()
        raise


def _prepare(
    connection: sqlite3.Connection, path: Path, settings: PersistenceSettings
) -> OpenedFile:
    where = repr(str(path))
    try:
        # Exclusive before WAL: no shared-memory index, and the lock is held from the
        # first write until close, so a second process is refused instead of racing.
        connection.execute("PRAGMA locking_mode = EXCLUSIVE")
        mode = connection.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise StoreUnavailable(f"the store file {where} cannot use write-ahead logging")
        level = _SYNCHRONOUS_LEVELS[settings.synchronous]
        connection.execute(f"PRAGMA synchronous = {level}")
        if connection.execute("PRAGMA synchronous").fetchone()[0] != level:
            raise StoreUnavailable(f"SQLite refused synchronous={settings.synchronous}")
        connection.execute(f"PRAGMA journal_size_limit = {JOURNAL_SIZE_LIMIT}")
        connection.execute("BEGIN IMMEDIATE")
        next_seq = _schema(connection, where)
        counts = {
            name: connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            for name, table in COUNTED_TABLES.items()
        }
        connection.execute("COMMIT")
    except sqlite3.OperationalError as exc:
        if getattr(exc, "sqlite_errorname", "") in _BUSY:
            raise StoreLocked(
                f"the store file {where} is open in another process (one process at a time)"
            ) from exc
        raise StoreUnavailable(f"cannot use the store file {where}: {exc}") from exc
    except sqlite3.DatabaseError as exc:
        raise StoreCorrupted(f"{where} is not a readable store file: {exc}") from exc
    return OpenedFile(connection, next_seq, counts, settings.synchronous)


def _schema(connection: sqlite3.Connection, where: str) -> int:
    """Create the tables in a new file, or check an existing one; the next free seq."""
    application_id = connection.execute("PRAGMA application_id").fetchone()[0]
    tables = connection.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
    if application_id == 0 and tables == 0:
        for statement in SCHEMA:
            connection.execute(statement)
        connection.execute(
            "INSERT INTO meta (key, value) VALUES ('schema_version', ?), ('next_seq', 1)",
            (SCHEMA_VERSION,),
        )
        connection.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        return 1
    if application_id != APPLICATION_ID:
        raise StoreCorrupted(f"{where} is an SQLite file, but not a mister_smith store")
    meta = dict(connection.execute("SELECT key, value FROM meta").fetchall())
    version = meta.get("schema_version")
    if version != SCHEMA_VERSION:
        raise StoreCorrupted(
            f"{where} has store schema version {version!r}; this version reads"
            f" {SCHEMA_VERSION} only"
        )
    next_seq = meta.get("next_seq")
    if type(next_seq) is not int or next_seq < 1:
        raise StoreCorrupted(f"{where} has a damaged sequence counter ({next_seq!r})")
    return next_seq
