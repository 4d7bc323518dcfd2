"""``EventJournal``: the event bus recorded in a store, for audit and replay.

Optional and off unless opened: ``async with open_event_journal(store, bus, Event) as
journal:`` registers a handler on the bus that queues each event (a bounded queue: a
journal that falls behind drops the oldest events and counts them, it never slows
``emit``), and a task that writes the queue to a journal stream of the store in
batches, in the order emitted. ``await journal.replay(since=t)``
reads them back as events. How long entries are kept is the store's retention
(``journal_max_entries``, ``journal_max_age``).

The journal does not import the event package (it sits on a floor below): it is given
the bus (anything with ``add_handler(event_type, handler)``) and the event base class, and
decodes an entry only into a subclass of that base class it finds loaded (never by
importing a name read from the store).

Entries are JSON: ``{"type": ..., "module": ..., "event": {...}}`` with the event's
fields unstructured by the project's converter. A field typed ``Any`` comes back as its
JSON form (a value JSON cannot hold, as its ``repr``); a field whose JSON is larger than
an eighth of ``max_entry_bytes`` is kept as a ``"<cut: ...>"`` preview.
"""

from __future__ import annotations

import collections
import json
import logging
import types
import typing
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, Final, Generic, Protocol, TypeVar

import attrs
import cattrs
import trio

from ..config import config_converter
from ..errors import InvalidStoreRequest, JournalDecodeError
from ._records import JournalEntry
from ._store import DEFAULT_READ_LIMIT, Store
from ._validation import check_name

E = TypeVar("E")

logger = logging.getLogger("mister_smith.persistence")

DEFAULT_STREAM: Final = "events"
"""The journal stream events are recorded in unless told otherwise."""

DEFAULT_BUFFER: Final = 10_000
"""Events the journal queues before the oldest is dropped."""

DEFAULT_MAX_ENTRY_BYTES: Final = 64 * 1024
"""Largest journal entry written; larger fields are cut to a preview first."""

WRITE_BATCH: Final = 1_000
"""Most events written in one journal append."""

_PREVIEW_CHARS: Final = 200


class _Registration(Protocol):
    """What ``add_handler`` returns (``mister_smith.events.HandlerRegistration``)."""

    def remove(self) -> None:
        """Stop calling the handler."""
        ...


class EventSource(Protocol):
    """What the journal needs of an event bus (``mister_smith.events.EventBus``)."""

    def add_handler(self, event_type: type[Any], handler: Callable[[Any], object]) -> _Registration:
        """Call ``handler(event)`` synchronously in ``emit`` for each matching event."""
        ...


@attrs.frozen
class JournalStatistics:
    """A snapshot of an :class:`EventJournal`'s counters.

    Attributes:
        recorded: Events written to the store.
        held: Events received and not yet written.
        dropped: Events dropped because the journal fell more than its buffer behind
            (oldest first).
        cut_fields: Fields written as a preview because they were too large.
        too_large: Events not written because even cut they were too large (logged).
    """

    recorded: int
    held: int
    dropped: int
    cut_fields: int
    too_large: int


def _optional_inner(annotation: object) -> Any:
    """``X`` for ``X | None`` (or ``Optional[X]``), else ``None``."""
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        options = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(options) == 1 and len(typing.get_args(annotation)) == 2:
            return options[0]
    return None


def _journal_converter() -> cattrs.Converter:
    """The project's converter, plus UUIDs as strings (event ids are UUIDs); optional
    fields are structured by this converter too, so their UUIDs are found."""
    converter = config_converter.copy()
    converter.register_unstructure_hook(uuid.UUID, str)
    converter.register_structure_hook(uuid.UUID, lambda value, _: uuid.UUID(str(value)))

    def structure_optional(value: object, annotation: object) -> object:
        return None if value is None else converter.structure(value, _optional_inner(annotation))

    converter.register_structure_hook_func(
        lambda annotation: _optional_inner(annotation) is not None, structure_optional
    )
    return converter


_CONVERTER: Final = _journal_converter()


def _json_fallback(value: object) -> str:
    text = repr(value)
    return text if len(text) <= _PREVIEW_CHARS else text[:_PREVIEW_CHARS] + "...(cut)"


def _dumps(value: object) -> str:
    return json.dumps(value, default=_json_fallback, separators=(",", ":"))


def _subclasses(base: type[Any]) -> list[type[Any]]:
    """``base`` and its loaded subclasses that are attrs classes themselves.

    Decorating a class with ``@attrs.frozen`` replaces it by a new (slotted) class; the
    original stays listed by ``__subclasses__`` without its own ``__attrs_attrs__``, and
    is skipped here.
    """
    found: list[type[Any]] = []
    pending = [base]
    while pending:
        cls = pending.pop()
        if "__attrs_attrs__" in cls.__dict__:
            found.append(cls)
        pending.extend(cls.__subclasses__())
    return found


class EventJournal(Generic[E]):
    """Records events of type ``E`` in a journal stream of a store and reads them back.

    Use :func:`open_event_journal` to record a bus; :meth:`record` and :meth:`replay`
    also work on their own (e.g. to read a journal at start-up before recording).

    Args:
        store: Where entries go (any :class:`~mister_smith.persistence.Store`).
        event_type: The event base class (``mister_smith.events.Event``): what is
            recorded, and the classes entries are decoded into.
        stream: The journal stream's name.
        max_entry_bytes: Largest entry written (>= 1 KiB); keep it at or under the
            store's ``max_record_bytes``.
    """

    def __init__(
        self,
        store: Store,
        event_type: type[E],
        *,
        stream: str = DEFAULT_STREAM,
        max_entry_bytes: int = DEFAULT_MAX_ENTRY_BYTES,
    ) -> None:
        if not attrs.has(event_type):
            raise InvalidStoreRequest(f"event_type must be an attrs class, got {event_type!r}")
        if type(max_entry_bytes) is not int or max_entry_bytes < 1024:
            raise InvalidStoreRequest(f"max_entry_bytes must be >= 1024, got {max_entry_bytes!r}")
        self._store = store
        self._event_type = event_type
        self._stream_name = check_name(stream, "stream")
        self._max_entry_bytes = max_entry_bytes
        self._held: collections.deque[E] = collections.deque()
        self._buffer = DEFAULT_BUFFER
        self._wakeup = trio.lowlevel.ParkingLot()
        self._settled = trio.lowlevel.ParkingLot()
        self._writing = 0
        self._running = False
        self._dropped = 0
        self._recorded = 0
        self._cut_fields = 0
        self._too_large = 0

    @property
    def stream(self) -> str:
        """The journal stream's name."""
        return self._stream_name

    # -- writing ----------------------------------------------------------------------

    def encode(self, event: E) -> bytes | None:
        """The journal entry for ``event``, or ``None`` if it is too large even cut."""
        cls = type(event)
        fields = _CONVERTER.unstructure(event)
        entry = {"type": cls.__qualname__, "module": cls.__module__, "event": fields}
        data = _dumps(entry).encode()
        if len(data) <= self._max_entry_bytes:
            return data
        field_limit = self._max_entry_bytes // 8
        for name, value in list(fields.items()):
            text = _dumps(value)
            if len(text) > field_limit:
                fields[name] = f"<cut: {len(text)} bytes of JSON: {text[:_PREVIEW_CHARS]}...>"
                self._cut_fields += 1
        data = _dumps(entry).encode()
        if len(data) <= self._max_entry_bytes:
            return data
        self._too_large += 1
        logger.warning("event journal: %s is too large to record, even cut", cls.__qualname__)
        return None

    async def record(self, events: list[E]) -> list[int]:
        """Write ``events`` to the journal stream in one append; their sequence numbers
        (events too large to record are skipped and counted)."""
        entries = [data for data in map(self.encode, events) if data is not None]
        seqs: list[int] = []
        for start in range(0, len(entries), WRITE_BATCH):
            seqs += await self._store.journal_append(
                self._stream_name, entries[start : start + WRITE_BATCH]
            )
        self._recorded += len(seqs)
        return seqs

    def _offer(self, event: E) -> None:
        """The bus handler: queue ``event`` (dropping the oldest past the buffer)."""
        held = self._held
        if len(held) >= self._buffer:
            held.popleft()
            self._dropped += 1
        held.append(event)
        if self._wakeup:
            self._wakeup.unpark()

    async def flush(self) -> None:
        """Wait until every event received so far is written (right away when the
        journal is not recording a bus: :meth:`record` writes at once)."""
        if not self._running:
            await trio.lowlevel.checkpoint()
            return
        while self._held or self._writing:
            await self._settled.park()

    async def run(
        self,
        bus: EventSource,
        *,
        buffer: int = DEFAULT_BUFFER,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Record every event of the bus until cancelled.

        Registers its handler before reporting started (so with ``nursery.start`` no
        event emitted after it returns is missed), then writes in batches: whatever
        arrived while the previous batch was written, in the order emitted.
        """
        if type(buffer) is not int or buffer < 1:
            raise InvalidStoreRequest(f"buffer must be an integer >= 1, got {buffer!r}")
        if self._running:
            raise InvalidStoreRequest("this journal is already recording a bus")
        self._buffer = buffer
        registration = bus.add_handler(self._event_type, self._offer)
        self._running = True
        try:
            task_status.started()
            while True:
                if not self._held:
                    self._settled.unpark_all()
                    await self._wakeup.park()
                    continue
                batch = [self._held.popleft() for _ in range(min(WRITE_BATCH, len(self._held)))]
                self._writing = len(batch)
                try:
                    await self.record(batch)
                except BaseException:
                    self._held.extendleft(reversed(batch))  # not written: keep them
                    raise
                finally:
                    self._writing = 0
        finally:
            registration.remove()
            self._running = False
            self._settled.unpark_all()

    # -- reading ----------------------------------------------------------------------

    def decode(self, entry: JournalEntry) -> E:
        """The event an entry holds.

        Raises:
            JournalDecodeError: not JSON, or no loaded subclass of the event type has
                that name (and module), or its fields no longer fit the class.
        """
        try:
            document = json.loads(entry.data)
            name, module, fields = document["type"], document["module"], document["event"]
        except (ValueError, KeyError, TypeError) as exc:
            raise JournalDecodeError(
                f"journal {entry.stream!r} entry {entry.seq} is not a recorded event: {exc}"
            ) from exc
        candidates = [cls for cls in _subclasses(self._event_type) if cls.__qualname__ == name]
        if len(candidates) > 1:
            candidates = [cls for cls in candidates if cls.__module__ == module]
        if len(candidates) != 1:
            raise JournalDecodeError(
                f"journal {entry.stream!r} entry {entry.seq}: no loaded event class"
                f" {module}.{name} under {self._event_type.__qualname__}"
            )
        try:
            event: E = _CONVERTER.structure(fields, candidates[0])
        except Exception as exc:
            raise JournalDecodeError(
                f"journal {entry.stream!r} entry {entry.seq}: its fields do not fit"
                f" {module}.{name} any more: {exc}"
            ) from exc
        return event

    async def replay(
        self,
        *,
        since: float | None = None,
        after: int = 0,
        limit: int = DEFAULT_READ_LIMIT,
    ) -> list[E]:
        """The recorded events still kept, oldest first: those recorded at or after
        ``since`` (store time, seconds since the epoch), with ``seq > after``.

        Raises:
            JournalDecodeError: an entry cannot be decoded (see :meth:`decode`); use
                :meth:`entries` to read the raw entries instead.
        """
        return [self.decode(entry) for entry in await self.entries(since, after, limit)]

    async def entries(
        self, since: float | None = None, after: int = 0, limit: int = DEFAULT_READ_LIMIT
    ) -> list[JournalEntry]:
        """The raw entries :meth:`replay` decodes (``seq`` is the cursor for ``after``)."""
        return await self._store.journal_replay(
            self._stream_name, since=since, after=after, limit=limit
        )

    def statistics(self) -> JournalStatistics:
        """Counters of this journal (see :class:`JournalStatistics`)."""
        return JournalStatistics(
            recorded=self._recorded,
            held=len(self._held) + self._writing,
            dropped=self._dropped,
            cut_fields=self._cut_fields,
            too_large=self._too_large,
        )


@asynccontextmanager
async def open_event_journal(
    store: Store,
    bus: EventSource,
    event_type: type[E],
    *,
    stream: str = DEFAULT_STREAM,
    buffer: int = DEFAULT_BUFFER,
    max_entry_bytes: int = DEFAULT_MAX_ENTRY_BYTES,
) -> AsyncIterator[EventJournal[E]]:
    """Record every ``event_type`` event of ``bus`` in ``store`` for the block's body.

    Every event emitted after this is entered is recorded (unless the journal falls more
    than ``buffer`` events behind: then the oldest are dropped and counted). On a normal
    exit the events received are flushed; on an error or cancellation they are not
    waited for.
    """
    journal = EventJournal(store, event_type, stream=stream, max_entry_bytes=max_entry_bytes)
    async with trio.open_nursery() as nursery:
        await nursery.start(_run_journal, journal, bus, buffer)
        try:
            yield journal
            await journal.flush()
        finally:
            nursery.cancel_scope.cancel()


async def _run_journal(
    journal: EventJournal[Any],
    bus: EventSource,
    buffer: int,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    await journal.run(bus, buffer=buffer, task_status=task_status)
