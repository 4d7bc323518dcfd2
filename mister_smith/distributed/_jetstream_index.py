"""The JetStream store's index: what is pending, remembered and kept, without I/O.

The streams are the truth; this is the owner's view of them, rebuilt from the streams'
headers when the store opens and kept in step by the committer after every write that
JetStream acknowledged. Everything here is synchronous and takes store time as an
argument, so the retention rules are the same pure decisions the SQLite store makes in
SQL: duplicates, the idempotent receive window, and which records retention removes.
"""

from __future__ import annotations

import collections
from collections.abc import Iterator

import attrs


@attrs.frozen
class PendingMeta:
    """A pending message without its payload (that stays in the stream)."""

    seq: int
    message_id: str | None
    appended_at: float


@attrs.frozen
class Remembered:
    """A settled message id, held for the idempotent receive window.

    Attributes:
        seq: The settled message's sequence number (returned for a duplicate).
        settled_at: Store time it was settled.
        record_seq: Sequence of its record in the settlements stream.
    """

    seq: int
    settled_at: float
    record_seq: int


@attrs.frozen
class DeadMeta:
    """A dead letter without its payload (kept in the dead-letter stream)."""

    mailbox: str
    seq: int
    message_id: str | None
    reason: str
    appended_at: float
    dead_at: float
    record_seq: int


@attrs.define
class StoreIndex:
    """Pending messages per mailbox, remembered ids, dead letters and journal entries."""

    pending: dict[str, dict[int, PendingMeta]] = attrs.field(factory=dict)
    pending_ids: dict[tuple[str, str], int] = attrs.field(factory=dict)
    remembered: dict[tuple[str, str], Remembered] = attrs.field(factory=dict)
    dead: dict[int, DeadMeta] = attrs.field(factory=dict)
    journal: collections.deque[tuple[int, str, float]] = attrs.field(factory=collections.deque)
    """Every kept journal entry (seq, stream, recorded_at), oldest first."""

    # -- mailboxes --------------------------------------------------------------------

    def duplicate_of(
        self, mailbox: str, message_id: str | None, now: float, window: float
    ) -> int | None:
        """The seq a message with this id duplicates (pending, or settled less than
        ``window`` ago), or ``None`` when it is new."""
        if message_id is None:
            return None
        key = (mailbox, message_id)
        seq = self.pending_ids.get(key)
        if seq is not None:
            return seq
        remembered = self.remembered.get(key)
        if remembered is not None and now - remembered.settled_at < window:
            return remembered.seq
        return None

    def add_pending(self, mailbox: str, meta: PendingMeta) -> None:
        """Record an appended message as pending."""
        self.pending.setdefault(mailbox, {})[meta.seq] = meta
        if meta.message_id is not None:
            self.pending_ids[(mailbox, meta.message_id)] = meta.seq

    def find_pending(self, mailbox: str, seq: int) -> PendingMeta | None:
        """The pending message ``seq`` of ``mailbox``, or ``None``."""
        box = self.pending.get(mailbox)
        return None if box is None else box.get(seq)

    def settle(self, mailbox: str, seq: int) -> None:
        """Remove the pending message ``seq`` of ``mailbox``."""
        box = self.pending.get(mailbox)
        if box is None:
            return
        meta = box.pop(seq, None)
        if not box:
            del self.pending[mailbox]
        if meta is not None and meta.message_id is not None:
            self.pending_ids.pop((mailbox, meta.message_id), None)

    def pending_after(self, mailbox: str, after: int, limit: int) -> list[PendingMeta]:
        """Pending messages of ``mailbox`` with ``seq > after``, oldest first."""
        found: list[PendingMeta] = []
        for seq, meta in self.pending.get(mailbox, {}).items():
            if seq > after:
                found.append(meta)
                if len(found) == limit:
                    break
        return found

    def pending_count(self) -> int:
        """Pending messages over every mailbox."""
        return sum(len(box) for box in self.pending.values())

    def remember(self, mailbox: str, message_id: str, remembered: Remembered) -> int | None:
        """Remember a settled id (newest last); the record seq it replaces, if any."""
        old = self.remembered.pop((mailbox, message_id), None)
        self.remembered[(mailbox, message_id)] = remembered
        return None if old is None else old.record_seq

    def forget_ids(self, now: float, window: float, capacity: int) -> list[int]:
        """Forget ids settled ``window`` or more ago, then the oldest past ``capacity``;
        return the records to delete."""
        dropped: list[int] = []
        remembered = self.remembered
        while remembered:
            key, oldest = next(iter(remembered.items()))
            if len(remembered) <= capacity and now - oldest.settled_at < window:
                break
            del remembered[key]
            dropped.append(oldest.record_seq)
        return dropped

    # -- dead letters -----------------------------------------------------------------

    def add_dead(self, meta: DeadMeta) -> None:
        """Keep a dead letter (newest last)."""
        self.dead[meta.seq] = meta

    def dead_after(self, mailbox: str, after: int, limit: int, oldest: float) -> Iterator[DeadMeta]:
        """Dead letters of ``mailbox`` with ``seq > after`` dead at or after ``oldest``."""
        count = 0
        for meta in sorted(self.dead.values(), key=lambda m: m.seq):
            if meta.mailbox == mailbox and meta.seq > after and meta.dead_at >= oldest:
                yield meta
                count += 1
                if count == limit:
                    return

    def drop_dead(self, now: float, max_age: float | None, capacity: int) -> list[int]:
        """Drop dead letters older than ``max_age`` and the oldest past ``capacity``;
        return their records to delete."""
        dropped: list[int] = []
        dead = self.dead
        while dead:
            seq, oldest = next(iter(dead.items()))
            expired = max_age is not None and now - oldest.dead_at > max_age
            if len(dead) <= capacity and not expired:
                break
            del dead[seq]
            dropped.append(oldest.record_seq)
        return dropped

    # -- journal ----------------------------------------------------------------------

    def add_journal(self, seq: int, stream: str, recorded_at: float) -> None:
        """Record a journal entry (seqs and times never decrease)."""
        self.journal.append((seq, stream, recorded_at))

    def trim_journal(
        self, now: float, max_age: float | None, max_entries: int
    ) -> tuple[int, int | None]:
        """Drop entries past ``max_entries`` or older than ``max_age``.

        Returns:
            How many were dropped, and the first seq kept (``None``: none is kept).
        """
        journal = self.journal
        dropped = 0
        while journal and (
            len(journal) > max_entries or (max_age is not None and now - journal[0][2] > max_age)
        ):
            journal.popleft()
            dropped += 1
        return dropped, (journal[0][0] if journal else None)

    def journal_after(
        self, stream: str, after: int, oldest: float, limit: int
    ) -> list[tuple[int, float]]:
        """(seq, recorded_at) of entries of ``stream`` with ``seq > after`` recorded at
        or after ``oldest``, oldest first."""
        found: list[tuple[int, float]] = []
        for seq, name, recorded_at in self.journal:
            if name == stream and seq > after and recorded_at >= oldest:
                found.append((seq, recorded_at))
                if len(found) == limit:
                    break
        return found
