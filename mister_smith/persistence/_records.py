"""Frozen records a :class:`~mister_smith.persistence.Store` hands back."""

from __future__ import annotations

import attrs


@attrs.frozen
class Appended:
    """What :meth:`Store.append` did with a message.

    Attributes:
        mailbox: The mailbox appended to.
        seq: The message's sequence number: store-wide increasing, never reused. For a
            duplicate, the sequence number the first copy got.
        message_id: The id given with the message (``None`` if none was).
        duplicate: ``True`` when a message with this id was already pending, or was
            settled (handled or dead-lettered) within the idempotent receive window:
            nothing was written and the message must not be delivered again.
    """

    mailbox: str
    seq: int
    message_id: str | None
    duplicate: bool = False


@attrs.frozen
class StoredMessage:
    """A message appended to a mailbox and not yet settled (acked or dead-lettered).

    Attributes:
        mailbox: Its mailbox.
        seq: Its sequence number (see :class:`Appended`).
        message_id: The id it was appended with, or ``None``.
        payload: The bytes appended.
        appended_at: Store time (wall-clock seconds since the epoch) of the append.
    """

    mailbox: str
    seq: int
    message_id: str | None
    payload: bytes
    appended_at: float


@attrs.frozen
class StoredDeadLetter:
    """A message that was settled as undeliverable, kept for inspection.

    Attributes:
        mailbox: Its mailbox.
        seq: Its sequence number.
        message_id: The id it was appended with, or ``None``.
        payload: The bytes appended.
        reason: Why it could not be delivered (as given to :meth:`Store.dead_letter`).
        appended_at: Store time of the append.
        dead_at: Store time it was dead-lettered.
    """

    mailbox: str
    seq: int
    message_id: str | None
    payload: bytes
    reason: str
    appended_at: float
    dead_at: float


@attrs.frozen
class Checkpoint:
    """The latest state saved under a key.

    Attributes:
        key: The checkpoint's key.
        version: 1 for the first write, one more for each write after it; the number
            to pass as ``expected_version`` for a compare-and-set write.
        data: The bytes saved, whole (a checkpoint is never torn).
        updated_at: Store time of the write.
    """

    key: str
    version: int
    data: bytes
    updated_at: float


@attrs.frozen
class JournalEntry:
    """One entry of a journal stream.

    Attributes:
        stream: The journal stream it belongs to.
        seq: Store-wide increasing sequence number (the cursor for ``after=``).
        recorded_at: Store time it was recorded (never decreasing along ``seq``).
        data: The bytes recorded.
    """

    stream: str
    seq: int
    recorded_at: float
    data: bytes


@attrs.frozen
class StoreStatistics:
    """A snapshot of a store's counters.

    Attributes:
        operations: Operations completed (reads included).
        commits: Transactions committed; ``operations / commits`` is the mean batch.
        largest_batch: Most operations one transaction held.
        failed_batches: Transactions that failed and were rolled back.
        appended: Messages written by ``append``.
        duplicates: Appends recognised as duplicates (nothing written).
        acked: Messages settled as handled.
        dead_lettered: Messages settled as dead letters.
        pending: Messages appended and not settled, over all mailboxes.
        remembered_ids: Message ids held for the idempotent receive window.
        dead_letters: Dead letters held.
        journal_entries: Journal entries held.
        checkpoints_written: Checkpoint writes.
        pruned: Rows deleted by retention (ids past the window or capacity, dead
            letters and journal entries past their age or capacity).
        queued: Operations waiting for the next transaction right now.
    """

    operations: int = 0
    commits: int = 0
    largest_batch: int = 0
    failed_batches: int = 0
    appended: int = 0
    duplicates: int = 0
    acked: int = 0
    dead_lettered: int = 0
    pending: int = 0
    remembered_ids: int = 0
    dead_letters: int = 0
    journal_entries: int = 0
    checkpoints_written: int = 0
    pruned: int = 0
    queued: int = 0
