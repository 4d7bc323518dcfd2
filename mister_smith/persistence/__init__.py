"""Persistence: durable mailboxes, checkpoints and an event journal that outlive the process.

A :class:`Store` keeps three things across restarts and ``kill -9``:

* **durable mailboxes**: ``append`` (or ``append_many``) a message, optionally with a
  ``message_id``, and it stays :meth:`~Store.pending` until it is settled by
  :meth:`~Store.ack` (handled) or :meth:`~Store.dead_letter`. Delivery is
  at-least-once; the idempotent receive window (``dedupe_window``) turns a repeated
  ``message_id`` into ``duplicate=True`` instead of a second delivery;
* **checkpoints**: whole values under a key, versioned, with compare-and-set;
* **journal streams**: appended entries kept within a retention (count and age), which
  :class:`EventJournal` uses to record the event bus for audit and replay.

:func:`open_sqlite_store` opens the embedded store: one SQLite file in WAL mode, held by
one process, written by one thread that commits many callers' operations per
transaction (group commit). A call that returned has committed; one that raised or was
cancelled wrote nothing. The distributed layer adds a NATS JetStream store with the same
interface; :mod:`mister_smith.persistence.conformance` is the test suite both pass.

A durable mailbox on a store, step by step (what the actor system does with it):

1. ``tell``: ``appended = await store.append(name, encode(message), message_id=id)``
   *before* the message goes into the in-memory mailbox; if ``appended.duplicate``,
   do not enqueue it (it is pending already or was handled within the window). Carry
   ``appended.seq`` with the message. ``tell`` returns after the commit.
2. handling: run the handler; *after* it finished, ``await store.ack(name, seq)``. If
   it is stopped or gives up on the message, ``await store.dead_letter(name, seq,
   reason)`` instead. A crash in between means redelivery (at-least-once).
3. ``spawn`` of the same name after a restart: page through
   ``await store.pending(name, after=cursor)`` and enqueue those messages (oldest
   first) before new ones; ``await store.mailboxes()`` lists the names with work left.
4. checkpoints: ``await store.put_checkpoint(key, state, expected_version=v)`` after
   each agent turn; ``get_checkpoint`` on resume.

The actor system does exactly this for actors spawned with ``durable=True`` (see
:class:`~mister_smith.actors.DurableMailboxes`), encoding messages with a
:class:`MessageCodec` (registered attrs classes and plain JSON, never pickle;
:func:`durable_message` registers with :data:`DEFAULT_CODEC`).

Errors are :class:`~mister_smith.errors.PersistenceError` subclasses:
``InvalidStoreRequest`` / ``RecordTooLarge`` (bad input, nothing queued),
``CheckpointConflict``, ``StoreWriteFailed`` (the transaction rolled back),
``StoreClosed``, ``StoreLocked`` / ``StoreCorrupted`` / ``StoreUnavailable`` (opening),
``JournalDecodeError``.
"""

from ._codec import DEFAULT_CODEC as DEFAULT_CODEC
from ._codec import Codec as Codec
from ._codec import MessageCodec as MessageCodec
from ._codec import durable_message as durable_message
from ._codec import from_payload as from_payload
from ._codec import to_payload as to_payload
from ._journal import EventJournal as EventJournal
from ._journal import EventSource as EventSource
from ._journal import JournalStatistics as JournalStatistics
from ._journal import open_event_journal as open_event_journal
from ._records import Appended as Appended
from ._records import Checkpoint as Checkpoint
from ._records import JournalEntry as JournalEntry
from ._records import StoredDeadLetter as StoredDeadLetter
from ._records import StoredMessage as StoredMessage
from ._records import StoreStatistics as StoreStatistics
from ._sqlite_store import SQLiteStore as SQLiteStore
from ._sqlite_store import open_sqlite_store as open_sqlite_store
from ._store import DEFAULT_READ_LIMIT as DEFAULT_READ_LIMIT
from ._store import MAX_READ_LIMIT as MAX_READ_LIMIT
from ._store import Store as Store

__all__ = [
    "DEFAULT_CODEC",
    "DEFAULT_READ_LIMIT",
    "MAX_READ_LIMIT",
    "Appended",
    "Checkpoint",
    "Codec",
    "MessageCodec",
    "StoredDeadLetter",
    "EventJournal",
    "EventSource",
    "JournalEntry",
    "JournalStatistics",
    "SQLiteStore",
    "Store",
    "StoreStatistics",
    "StoredMessage",
    "durable_message",
    "from_payload",
    "open_event_journal",
    "open_sqlite_store",
    "to_payload",
]
