"""Persistence: durable mailboxes, checkpoints and an event journal that outlive the process.

placeholder docstring, rewritten below
"""

from ._records import Appended as Appended
from ._records import Checkpoint as Checkpoint
from ._records import DeadLetterRecord as DeadLetterRecord
from ._records import JournalEntry as JournalEntry
from ._records import StoredMessage as StoredMessage
from ._records import StoreStatistics as StoreStatistics
from ._sqlite_store import SQLiteStore as SQLiteStore
from ._sqlite_store import open_sqlite_store as open_sqlite_store
from ._store import DEFAULT_READ_LIMIT as DEFAULT_READ_LIMIT
from ._store import MAX_READ_LIMIT as MAX_READ_LIMIT
from ._store import Store as Store
