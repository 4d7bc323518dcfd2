"""The operations a store queues for its writer: small immutable tuples, checked already.

Each store method validates its arguments, builds one of these and waits for its
outcome; the writer runs a batch of them in one transaction, in order.
"""

from __future__ import annotations

from typing import NamedTuple


class AppendRequest(NamedTuple):
    """``Store.append``."""

    mailbox: str
    payload: bytes
    message_id: str | None


class AppendManyRequest(NamedTuple):
    """``Store.append_many``."""

    mailbox: str
    payloads: list[bytes]
    message_ids: list[str | None]


class AckRequest(NamedTuple):
    """``Store.ack``."""

    mailbox: str
    seq: int


class AckManyRequest(NamedTuple):
    """``Store.ack_many``."""

    mailbox: str
    seqs: list[int]


class DeadLetterRequest(NamedTuple):
    """``Store.dead_letter``."""

    mailbox: str
    seq: int
    reason: str


class PendingQuery(NamedTuple):
    """``Store.pending``."""

    mailbox: str
    after: int
    limit: int


class MailboxesQuery(NamedTuple):
    """``Store.mailboxes``."""

    limit: int


class DeadLettersQuery(NamedTuple):
    """``Store.dead_letters``."""

    mailbox: str
    after: int
    limit: int


class PutCheckpoint(NamedTuple):
    """``Store.put_checkpoint``."""

    key: str
    data: bytes
    expected_version: int | None


class GetCheckpoint(NamedTuple):
    """``Store.get_checkpoint``."""

    key: str


class DeleteCheckpoint(NamedTuple):
    """``Store.delete_checkpoint``."""

    key: str
    expected_version: int | None


class CheckpointKeysQuery(NamedTuple):
    """``Store.checkpoint_keys``."""

    prefix: str
    limit: int


class JournalAppend(NamedTuple):
    """``Store.journal_append``."""

    stream: str
    entries: list[bytes]


class JournalReplay(NamedTuple):
    """``Store.journal_replay``."""

    stream: str
    since: float | None
    after: int
    limit: int


Request = (
    AppendRequest
    | AppendManyRequest
    | AckRequest
    | AckManyRequest
    | DeadLetterRequest
    | PendingQuery
    | MailboxesQuery
    | DeadLettersQuery
    | PutCheckpoint
    | GetCheckpoint
    | DeleteCheckpoint
    | CheckpointKeysQuery
    | JournalAppend
    | JournalReplay
)
"""Any operation a store's writer runs."""
