"""The SQLite store's writer: runs a batch of operations as one transaction.

Synchronous and blocking: the store calls :meth:`SQLiteWriter.run_batch` on its one
writer thread (``trio.to_thread.run_sync`` behind a limiter of one), never two at once.
Each operation's result is an ``outcome``: a caller's mistake the writer can only see in
the data (a checkpoint version conflict) fails that operation alone, with nothing
written; any database error rolls the whole batch back and fails every operation in it
with :class:`~mister_smith.errors.StoreWriteFailed`.

Store time is the injected clock (wall-clock seconds by default), made non-decreasing
and read once per batch, so every row of one transaction carries the same time.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Final

import outcome

from ..config import PersistenceSettings
from ..errors import CheckpointConflict, StoreWriteFailed
from ._records import (
    Appended,
    Checkpoint,
    JournalEntry,
    StoredDeadLetter,
    StoredMessage,
    StoreStatistics,
)
from ._requests import (
    AckManyRequest,
    AckRequest,
    AppendManyRequest,
    AppendRequest,
    CheckpointKeysQuery,
    DeadLetterRequest,
    DeadLettersQuery,
    DeleteCheckpoint,
    GetCheckpoint,
    JournalAppend,
    JournalReplay,
    MailboxesQuery,
    PendingQuery,
    PutCheckpoint,
    Request,
)
from ._sqlite_schema import OpenedFile, connect

Outcome = outcome.Value[Any] | outcome.Error

AGE_PRUNE_INTERVAL: Final = 1.0
"""Store-time seconds between two sweeps of rows past their age (reads filter exactly)."""

_INSERT_MESSAGE: Final = (
    "INSERT INTO messages (seq, mailbox, message_id, payload, appended_at) VALUES (?, ?, ?, ?, ?)"
)
_INSERT_MESSAGE_ONCE: Final = _INSERT_MESSAGE + (
    " ON CONFLICT (mailbox, message_id) WHERE message_id IS NOT NULL DO NOTHING"
)
_REMEMBER: Final = "INSERT INTO handled (mailbox, message_id, seq, settled_at) VALUES (?, ?, ?, ?)"


class SQLiteWriter:
    """One connection to a store file and the code that runs batches on it.

    Not thread-safe: exactly one thread at a time may call its methods (the store's
    limiter of one guarantees it). Build one with :meth:`open`.
    """

    def __init__(
        self, opened: OpenedFile, settings: PersistenceSettings, clock: Callable[[], float]
    ) -> None:
        self._db = opened.connection
        self._settings = settings
        self._clock = clock
        self._now = clock()
        self._next_prune = self._now
        self._broken: BaseException | None = None
        self._closed = False
        self._counts: dict[str, int] = {
            "next_seq": opened.next_seq,
            "operations": 0,
            "commits": 0,
            "largest_batch": 0,
            "failed_batches": 0,
            "appended": 0,
            "duplicates": 0,
            "acked": 0,
            "dead_lettered": 0,
            "checkpoints_written": 0,
            "pruned": 0,
            **opened.counts,
        }
        self._committed = dict(self._counts)
        self.synchronous = opened.synchronous
        """The commit durability SQLite confirmed at open."""
        self._dispatch: dict[type[Any], Callable[[Any, float], Outcome]] = {
            AppendRequest: self._append,
            AppendManyRequest: self._append_many,
            AckRequest: self._ack,
            AckManyRequest: self._ack_many,
            DeadLetterRequest: self._dead_letter,
            PendingQuery: self._pending,
            MailboxesQuery: self._mailboxes,
            DeadLettersQuery: self._dead_letters,
            PutCheckpoint: self._put_checkpoint,
            GetCheckpoint: self._get_checkpoint,
            DeleteCheckpoint: self._delete_checkpoint,
            CheckpointKeysQuery: self._checkpoint_keys,
            JournalAppend: self._journal_append,
            JournalReplay: self._journal_replay,
        }

    @classmethod
    def open(cls, settings: PersistenceSettings, clock: Callable[[], float]) -> SQLiteWriter:
        """Open the file ``settings.path`` names (blocking; see :func:`connect`)."""
        return cls(connect(settings), settings, clock)

    # -- batches ----------------------------------------------------------------------

    def run_batch(self, requests: Sequence[Request]) -> list[Outcome]:
        """Run ``requests`` in order in one transaction; one outcome per request."""
        if self._closed or self._broken is not None:
            return [outcome.Error(self._unusable()) for _ in requests]
        now = self._tick()
        saved = dict(self._counts)
        try:
            self._db.execute("BEGIN IMMEDIATE")
            results = self._run(requests, now)
            self._housekeep(now)
            if self._counts["next_seq"] != saved["next_seq"]:
                self._db.execute(
                    "UPDATE meta SET value = ? WHERE key = 'next_seq'", (self._counts["next_seq"],)
                )
            self._db.execute("COMMIT")
        except Exception as exc:
            self._counts = saved
            self._counts["failed_batches"] += 1
            self._rollback()
            self._committed = dict(self._counts)
            return [outcome.Error(self._failed(len(requests), exc)) for _ in requests]
        counts = self._counts
        counts["operations"] += len(requests)
        counts["commits"] += 1
        counts["largest_batch"] = max(counts["largest_batch"], len(requests))
        self._committed = dict(counts)
        return results

    def _run(self, requests: Sequence[Request], now: float) -> list[Outcome]:
        """Run each request in order; runs of appends without an id go in one
        ``executemany`` (the common case of a durable ``tell``)."""
        dispatch = self._dispatch
        counts = self._counts
        results: list[Outcome] = []
        rows: list[tuple[int, str, None, bytes, float]] = []
        for request in requests:
            if type(request) is AppendRequest and request.message_id is None:
                mailbox = request.mailbox
                seq = counts["next_seq"]
                counts["next_seq"] = seq + 1
                rows.append((seq, mailbox, None, request.payload, now))
                results.append(outcome.Value(Appended(mailbox, seq, None)))
                continue
            if rows:
                self._insert_plain(rows)
                rows = []
            results.append(dispatch[type(request)](request, now))
        if rows:
            self._insert_plain(rows)
        return results

    def _insert_plain(self, rows: list[tuple[int, str, None, bytes, float]]) -> None:
        self._db.executemany(_INSERT_MESSAGE, rows)
        self._counts["appended"] += len(rows)
        self._counts["pending"] += len(rows)

    def statistics(self, queued: int) -> StoreStatistics:
        """The counters as of the last commit (safe to call from another thread)."""
        counts = self._committed
        return StoreStatistics(
            operations=counts["operations"],
            commits=counts["commits"],
            largest_batch=counts["largest_batch"],
            failed_batches=counts["failed_batches"],
            appended=counts["appended"],
            duplicates=counts["duplicates"],
            acked=counts["acked"],
            dead_lettered=counts["dead_lettered"],
            pending=counts["pending"],
            remembered_ids=counts["remembered_ids"],
            dead_letters=counts["dead_letters"],
            journal_entries=counts["journal_entries"],
            checkpoints_written=counts["checkpoints_written"],
            pruned=counts["pruned"],
            queued=queued,
        )

    def close(self) -> None:
        """Close the connection (idempotent); WAL content is checkpointed into the file."""
        if not self._closed:
            self._closed = True
            self._db.close()

    def _tick(self) -> float:
        self._now = max(self._now, float(self._clock()))
        return self._now

    def _rollback(self) -> None:
        try:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
        except Exception as exc:  # the connection can no longer be trusted
            self._broken = exc

    def _failed(self, size: int, exc: BaseException) -> StoreWriteFailed:
        error = StoreWriteFailed(
            f"the store's transaction of {size} operation(s) failed and was rolled back;"
            f" none of them took effect: {type(exc).__name__}: {exc}"
        )
        error.__cause__ = exc
        return error

    def _unusable(self) -> StoreWriteFailed:
        if self._closed:
            return StoreWriteFailed("the store's connection is closed")
        error = StoreWriteFailed(
            f"the store is unusable since a rollback failed: {self._broken!r}; reopen it"
        )
        error.__cause__ = self._broken
        return error

    def _take_seq(self) -> int:
        seq = self._counts["next_seq"]
        self._counts["next_seq"] = seq + 1
        return seq

    # -- mailboxes --------------------------------------------------------------------

    def _append(self, request: AppendRequest, now: float) -> Outcome:
        mailbox, payload, message_id = request
        counts = self._counts
        seq = counts["next_seq"]
        if message_id is None:
            self._db.execute(_INSERT_MESSAGE, (seq, mailbox, None, payload, now))
        else:
            remembered = self._db.execute(
                "SELECT seq, settled_at FROM handled WHERE mailbox = ? AND message_id = ?",
                (mailbox, message_id),
            ).fetchone()
            if remembered is not None:
                if remembered[1] > now - self._settings.dedupe_window:
                    counts["duplicates"] += 1
                    return outcome.Value(Appended(mailbox, remembered[0], message_id, True))
                self._forget(mailbox, message_id)  # past its window: a new message
            cursor = self._db.execute(
                _INSERT_MESSAGE_ONCE, (seq, mailbox, message_id, payload, now)
            )
            if cursor.rowcount == 0:  # the same id is pending
                (first,) = self._db.execute(
                    "SELECT seq FROM messages WHERE mailbox = ? AND message_id = ?",
                    (mailbox, message_id),
                ).fetchone()
                counts["duplicates"] += 1
                return outcome.Value(Appended(mailbox, first, message_id, True))
        counts["next_seq"] = seq + 1
        counts["appended"] += 1
        counts["pending"] += 1
        return outcome.Value(Appended(mailbox, seq, message_id))

    def _append_many(self, request: AppendManyRequest, now: float) -> Outcome:
        mailbox, payloads, message_ids = request
        counts = self._counts
        results: list[Appended] = []
        rows: list[tuple[int, str, None, bytes, float]] = []
        for payload, message_id in zip(payloads, message_ids, strict=True):
            if message_id is None:
                seq = counts["next_seq"]
                counts["next_seq"] = seq + 1
                rows.append((seq, mailbox, None, payload, now))
                results.append(Appended(mailbox, seq, None))
                continue
            if rows:
                self._insert_plain(rows)
                rows = []
            results.append(self._append(AppendRequest(mailbox, payload, message_id), now).unwrap())
        if rows:
            self._insert_plain(rows)
        return outcome.Value(results)

    def _settle(self, mailbox: str, seq: int, columns: str) -> tuple[Any, ...] | None:
        """Delete the pending message; its ``columns`` (message_id first), or ``None``."""
        rows = self._db.execute(
            f"DELETE FROM messages WHERE seq = ? AND mailbox = ? RETURNING {columns}",
            (seq, mailbox),
        ).fetchall()
        if not rows:
            return None
        self._counts["pending"] -= 1
        row: tuple[Any, ...] = rows[0]
        return row

    def _remember(self, mailbox: str, message_id: str | None, seq: int, now: float) -> None:
        if message_id is not None:
            self._db.execute(_REMEMBER, (mailbox, message_id, seq, now))
            self._counts["remembered_ids"] += 1

    def _forget(self, mailbox: str, message_id: str) -> None:
        self._db.execute(
            "DELETE FROM handled WHERE mailbox = ? AND message_id = ?", (mailbox, message_id)
        )
        self._counts["remembered_ids"] -= 1
        self._counts["pruned"] += 1

    def _ack(self, request: AckRequest, now: float) -> Outcome:
        mailbox, seq = request
        row = self._settle(mailbox, seq, "message_id")
        if row is None:
            return outcome.Value(False)
        self._remember(mailbox, row[0], seq, now)
        self._counts["acked"] += 1
        return outcome.Value(True)

    def _ack_many(self, request: AckManyRequest, now: float) -> Outcome:
        mailbox, seqs = request
        return outcome.Value([self._ack(AckRequest(mailbox, seq), now).unwrap() for seq in seqs])

    def _dead_letter(self, request: DeadLetterRequest, now: float) -> Outcome:
        mailbox, seq, reason = request
        row = self._settle(mailbox, seq, "message_id, payload, appended_at")
        if row is None:
            return outcome.Value(False)
        message_id, payload, appended_at = row
        self._db.execute(
            "INSERT INTO dead_letters (seq, mailbox, message_id, payload, reason, appended_at,"
            " dead_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (seq, mailbox, message_id, payload, reason, appended_at, now),
        )
        self._remember(mailbox, message_id, seq, now)
        self._counts["dead_lettered"] += 1
        self._counts["dead_letters"] += 1
        return outcome.Value(True)

    def _pending(self, request: PendingQuery, now: float) -> Outcome:
        mailbox, after, limit = request
        rows = self._db.execute(
            "SELECT seq, message_id, payload, appended_at FROM messages"
            " WHERE mailbox = ? AND seq > ? ORDER BY seq LIMIT ?",
            (mailbox, after, limit),
        ).fetchall()
        return outcome.Value([StoredMessage(mailbox, *row) for row in rows])

    def _mailboxes(self, request: MailboxesQuery, now: float) -> Outcome:
        rows = self._db.execute(
            "SELECT DISTINCT mailbox FROM messages ORDER BY mailbox LIMIT ?", (request.limit,)
        ).fetchall()
        return outcome.Value([row[0] for row in rows])

    def _dead_letters(self, request: DeadLettersQuery, now: float) -> Outcome:
        mailbox, after, limit = request
        max_age = self._settings.dead_letter_max_age
        oldest = -1.0 if max_age is None else now - max_age
        rows = self._db.execute(
            "SELECT seq, message_id, payload, reason, appended_at, dead_at FROM dead_letters"
            " WHERE mailbox = ? AND seq > ? AND dead_at >= ? ORDER BY seq LIMIT ?",
            (mailbox, after, oldest, limit),
        ).fetchall()
        return outcome.Value([StoredDeadLetter(mailbox, *row) for row in rows])

    # -- checkpoints ------------------------------------------------------------------

    def _version(self, key: str) -> int:
        row = self._db.execute("SELECT version FROM checkpoints WHERE key = ?", (key,)).fetchone()
        return 0 if row is None else int(row[0])

    @staticmethod
    def _conflict(key: str, expected: int, actual: int, action: str) -> Outcome:
        return outcome.Error(
            CheckpointConflict(
                f"cannot {action} checkpoint {key!r}: expected version {expected}, it is"
                f" {'absent' if actual == 0 else f'at version {actual}'}",
                key=key,
                expected=expected,
                actual=actual or None,
            )
        )

    def _put_checkpoint(self, request: PutCheckpoint, now: float) -> Outcome:
        key, data, expected = request
        current = self._version(key)
        if expected is not None and expected != current:
            return self._conflict(key, expected, current, "write")
        version = current + 1
        self._db.execute(
            "INSERT INTO checkpoints (key, version, data, updated_at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (key) DO UPDATE SET version = excluded.version,"
            " data = excluded.data, updated_at = excluded.updated_at",
            (key, version, data, now),
        )
        self._counts["checkpoints_written"] += 1
        return outcome.Value(Checkpoint(key, version, data, now))

    def _get_checkpoint(self, request: GetCheckpoint, now: float) -> Outcome:
        row = self._db.execute(
            "SELECT version, data, updated_at FROM checkpoints WHERE key = ?", (request.key,)
        ).fetchone()
        return outcome.Value(None if row is None else Checkpoint(request.key, *row))

    def _delete_checkpoint(self, request: DeleteCheckpoint, now: float) -> Outcome:
        key, expected = request
        current = self._version(key)
        if expected is not None and expected != current:
            return self._conflict(key, expected, current, "delete")
        if current == 0:
            return outcome.Value(False)
        self._db.execute("DELETE FROM checkpoints WHERE key = ?", (key,))
        return outcome.Value(True)

    def _checkpoint_keys(self, request: CheckpointKeysQuery, now: float) -> Outcome:
        prefix, limit = request
        keys: list[str] = []
        cursor = self._db.execute(
            "SELECT key FROM checkpoints WHERE key >= ? ORDER BY key", (prefix,)
        )
        for (key,) in cursor:
            if not key.startswith(prefix) or len(keys) == limit:
                break
            keys.append(key)
        cursor.close()
        return outcome.Value(keys)

    # -- journal ----------------------------------------------------------------------

    def _journal_append(self, request: JournalAppend, now: float) -> Outcome:
        stream, entries = request
        first = self._counts["next_seq"]
        seqs = list(range(first, first + len(entries)))
        self._db.executemany(
            "INSERT INTO journal (seq, stream, recorded_at, data) VALUES (?, ?, ?, ?)",
            [(seq, stream, now, data) for seq, data in zip(seqs, entries, strict=True)],
        )
        self._counts["next_seq"] = first + len(entries)
        self._counts["journal_entries"] += len(entries)
        return outcome.Value(seqs)

    def _journal_replay(self, request: JournalReplay, now: float) -> Outcome:
        stream, since, after, limit = request
        max_age = self._settings.journal_max_age
        oldest = -1.0 if max_age is None else now - max_age
        if since is not None:
            oldest = max(oldest, since)
        rows = self._db.execute(
            "SELECT seq, recorded_at, data FROM journal"
            " WHERE stream = ? AND seq > ? AND recorded_at >= ? ORDER BY seq LIMIT ?",
            (stream, after, oldest, limit),
        ).fetchall()
        return outcome.Value([JournalEntry(stream, *row) for row in rows])

    # -- retention --------------------------------------------------------------------

    def _housekeep(self, now: float) -> None:
        """Apply the capacities (every batch, O(1) when within them) and, once per
        :data:`AGE_PRUNE_INTERVAL`, the ages."""
        settings = self._settings
        counts = self._counts
        if counts["remembered_ids"] > settings.dedupe_capacity:
            self._prune(
                "remembered_ids",
                "DELETE FROM handled WHERE (mailbox, message_id) IN (SELECT mailbox, message_id"
                " FROM handled ORDER BY settled_at LIMIT ?)",
                counts["remembered_ids"] - settings.dedupe_capacity,
            )
        if counts["dead_letters"] > settings.dead_letter_capacity:
            self._prune(
                "dead_letters",
                "DELETE FROM dead_letters WHERE seq IN"
                " (SELECT seq FROM dead_letters ORDER BY dead_at, seq LIMIT ?)",
                counts["dead_letters"] - settings.dead_letter_capacity,
            )
        if counts["journal_entries"] > settings.journal_max_entries:
            self._prune(
                "journal_entries",
                "DELETE FROM journal WHERE seq IN (SELECT seq FROM journal ORDER BY seq LIMIT ?)",
                counts["journal_entries"] - settings.journal_max_entries,
            )
        if now >= self._next_prune:
            self._next_prune = now + AGE_PRUNE_INTERVAL
            self._prune(
                "remembered_ids",
                "DELETE FROM handled WHERE settled_at < ?",
                now - settings.dedupe_window,
            )
            if settings.dead_letter_max_age is not None:
                self._prune(
                    "dead_letters",
                    "DELETE FROM dead_letters WHERE dead_at < ?",
                    now - settings.dead_letter_max_age,
                )
            if settings.journal_max_age is not None:
                # recorded_at never decreases along seq: the expired entries are a prefix.
                self._prune(
                    "journal_entries",
                    "DELETE FROM journal WHERE seq < coalesce((SELECT seq FROM journal"
                    f" WHERE recorded_at >= ?1 ORDER BY seq LIMIT 1), {counts['next_seq']})",
                    now - settings.journal_max_age,
                )

    def _prune(self, counter: str, statement: str, argument: float) -> None:
        deleted = self._db.execute(statement, (argument,)).rowcount
        if deleted > 0:
            self._counts[counter] -= deleted
            self._counts["pruned"] += deleted
