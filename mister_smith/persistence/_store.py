"""``Store``: the interface every durable store implements (embedded SQLite, JetStream).

The contract, which :mod:`mister_smith.persistence.conformance` checks for any store:

* **Durable once returned.** An operation that returned has committed: it survives the
  process being killed right after (``kill -9``). One that raised wrote nothing, and so
  did one that was cancelled (``trio.Cancelled`` raised); an operation that was already
  committing when its caller was cancelled completes and returns, and the cancellation
  is delivered at the caller's next checkpoint.
* **In order.** Operations from one task take effect in the order they were called, and
  a read sees every write that returned before it was called.
* **Batched.** Operations from many tasks are committed together (up to
  ``batch_max``): throughput grows with concurrency while each caller still waits only
  for its own commit.
* **Mailboxes: at-least-once with an idempotent receive window.** ``append`` stores a
  message under a store-wide increasing ``seq``; it stays :meth:`~Store.pending` until
  :meth:`~Store.ack` (handled) or :meth:`~Store.dead_letter` settles it. A message
  appended with a ``message_id`` that is still pending, or was settled less than
  ``dedupe_window`` ago, is a duplicate: nothing is written and ``duplicate=True``
  tells the sender not to deliver it again.
* **Checkpoints are whole.** ``put_checkpoint`` replaces the value atomically (never
  torn) and bumps its version; ``expected_version`` makes it a compare-and-set.
* **Journal with retention.** Entries are kept until ``journal_max_entries`` or
  ``journal_max_age`` (whichever comes first) pushes them out.
* **Bad input is refused up front** with :class:`~mister_smith.errors.InvalidStoreRequest`
  (or :class:`~mister_smith.errors.RecordTooLarge`), before anything is queued.

Names (mailboxes, checkpoint keys, journal streams) are 1-256 characters with no
control characters; message ids 1-256 characters likewise. A store that needs a
narrower alphabet (NATS subjects) encodes them; callers never have to.
"""

from __future__ import annotations

from typing import Protocol

from ._records import (
    Appended,
    Checkpoint,
    JournalEntry,
    StoredDeadLetter,
    StoredMessage,
    StoreStatistics,
)

DEFAULT_READ_LIMIT = 1_000
"""Records one read returns unless told otherwise."""

MAX_READ_LIMIT = 10_000
"""Most records one read may return: page with ``after=`` past it."""


class Store(Protocol):
    """Durable mailboxes, checkpoints and journal streams (see the module docstring)."""

    # -- durable mailboxes ------------------------------------------------------------

    async def append(
        self, mailbox: str, payload: bytes, *, message_id: str | None = None
    ) -> Appended:
        """Persist ``payload`` as the next message of ``mailbox``; return once committed.

        Args:
            mailbox: The mailbox's name.
            payload: The message, already serialised.
            message_id: The sender's id of this message. Appending the same id again
                while the first is pending, or within ``dedupe_window`` after it was
                settled, writes nothing and returns ``duplicate=True``.

        Raises:
            InvalidStoreRequest: a bad name, id or payload type.
            RecordTooLarge: ``payload`` is larger than ``max_record_bytes``.
            StoreWriteFailed: the transaction failed; nothing was written.
            StoreClosed: the store is closed.
        """
        ...

    async def append_many(
        self,
        mailbox: str,
        payloads: list[bytes],
        *,
        message_ids: list[str | None] | None = None,
    ) -> list[Appended]:
        """Append several messages to ``mailbox`` in one call: in order, in one
        transaction, each as :meth:`append` would (a repeated id, in the store or
        earlier in the same call, is a duplicate). At most :data:`MAX_READ_LIMIT`.

        Raises:
            InvalidStoreRequest: a bad name, payload or id, or ``message_ids`` of
                another length than ``payloads``; nothing was written.
        """
        ...

    async def ack(self, mailbox: str, seq: int) -> bool:
        """Settle a pending message as handled: it is no longer :meth:`pending` and its
        id (if any) is remembered for the idempotent receive window.

        Returns:
            ``True`` if it was pending; ``False`` if it was not (already settled, never
            appended): acking twice is harmless.
        """
        ...

    async def ack_many(self, mailbox: str, seqs: list[int]) -> list[bool]:
        """Settle several messages of ``mailbox`` as handled in one call (one
        transaction), each as :meth:`ack` would; at most :data:`MAX_READ_LIMIT`.

        Returns:
            For each seq, whether it was pending.

        Raises:
            InvalidStoreRequest: a bad name or seq, or too many; nothing was settled.
        """
        ...

    async def dead_letter(self, mailbox: str, seq: int, reason: str) -> bool:
        """Settle a pending message as undeliverable: it moves to :meth:`dead_letters`
        with ``reason`` and its id is remembered like an acked one's.

        Returns:
            ``True`` if it was pending, ``False`` if not.
        """
        ...

    async def pending(
        self, mailbox: str, *, after: int = 0, limit: int = DEFAULT_READ_LIMIT
    ) -> list[StoredMessage]:
        """The messages of ``mailbox`` not yet settled, oldest first, with ``seq > after``;
        at most ``limit`` (1 to :data:`MAX_READ_LIMIT`)."""
        ...

    async def mailboxes(self) -> list[str]:
        """The names of the mailboxes holding pending messages, sorted."""
        ...

    async def dead_letters(
        self, mailbox: str, *, after: int = 0, limit: int = DEFAULT_READ_LIMIT
    ) -> list[StoredDeadLetter]:
        """The dead letters of ``mailbox`` still kept, oldest first, with ``seq > after``."""
        ...

    # -- checkpoints ------------------------------------------------------------------

    async def put_checkpoint(
        self, key: str, data: bytes, *, expected_version: int | None = None
    ) -> Checkpoint:
        """Replace the checkpoint ``key`` with ``data``, whole, and return it.

        Args:
            key: The checkpoint's key.
            data: The state, already serialised.
            expected_version: Write only if the stored version is this one (``0``: only
                if there is no checkpoint yet); ``None`` writes unconditionally.

        Raises:
            CheckpointConflict: the stored version differs from ``expected_version``.
        """
        ...

    async def get_checkpoint(self, key: str) -> Checkpoint | None:
        """The checkpoint ``key``, or ``None`` if there is none."""
        ...

    async def delete_checkpoint(self, key: str, *, expected_version: int | None = None) -> bool:
        """Delete the checkpoint ``key``; ``False`` if there was none.

        Raises:
            CheckpointConflict: ``expected_version`` is given and differs.
        """
        ...

    async def checkpoint_keys(self, prefix: str = "") -> list[str]:
        """The keys of the checkpoints starting with ``prefix``, sorted (at most
        :data:`MAX_READ_LIMIT`)."""
        ...

    # -- journal ----------------------------------------------------------------------

    async def journal_append(self, stream: str, entries: list[bytes]) -> list[int]:
        """Record ``entries`` at the end of journal ``stream`` in one transaction; return
        their sequence numbers. Retention is applied in the same transaction."""
        ...

    async def journal_replay(
        self,
        stream: str,
        *,
        since: float | None = None,
        after: int = 0,
        limit: int = DEFAULT_READ_LIMIT,
    ) -> list[JournalEntry]:
        """Entries of ``stream`` still kept, oldest first: those recorded at or after
        ``since`` (store time, seconds since the epoch) and with ``seq > after``."""
        ...

    # -- lifecycle --------------------------------------------------------------------

    def statistics(self) -> StoreStatistics:
        """Counters of this store (see :class:`StoreStatistics`)."""
        ...

    async def aclose(self) -> None:
        """Commit what is queued, then close; later operations raise ``StoreClosed``.
        Idempotent."""
        ...
