"""EventJournal: the event bus recorded in a store, replayed typed, bounded, optional."""

from __future__ import annotations

import enum
import types
import typing
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio

import mister_smith  # noqa: F401  (loads every event class, agents' too)
from mister_smith.config import PersistenceSettings
from mister_smith.errors import InvalidStoreRequest, JournalDecodeError, StoreClosed
from mister_smith.events import AgentSpawned, DeadLetter, Event, EventBus, TaskCompleted
from mister_smith.persistence import (
    EventJournal,
    SQLiteStore,
    open_event_journal,
    open_sqlite_store,
)
from mister_smith.persistence.conformance import ManualClock
from mister_smith.types import TYPED_IDS, ActorId, TaskId


@asynccontextmanager
async def store_in(tmp_path: Path, clock: ManualClock, **fields: Any) -> AsyncIterator[SQLiteStore]:
    settings = PersistenceSettings(path=str(tmp_path / "store.db"), **fields)
    async with open_sqlite_store(settings, clock=clock) as store:
        yield store


def spawned(name: str) -> AgentSpawned:
    return AgentSpawned(source="test", actor_id=ActorId.new(), name=name, role="worker")


async def test_bus_events_are_recorded_and_replayed_typed(tmp_path: Path) -> None:
    bus = EventBus()
    async with store_in(tmp_path, ManualClock()) as store:
        async with open_event_journal(store, bus, Event) as journal:
            emitted = [spawned(f"a{n}") for n in range(5)]
            for event in emitted:
                bus.emit(event)
        assert journal.statistics().recorded == 5
        assert await journal.replay() == emitted  # ids, times, typed ids: all equal


async def test_replay_since_a_point_in_store_time(tmp_path: Path) -> None:
    bus = EventBus()
    clock = ManualClock()
    async with (
        store_in(tmp_path, clock) as store,
        open_event_journal(store, bus, Event) as journal,
    ):
        bus.emit(spawned("early"))
        await journal.flush()
        clock.advance(60)
        cut = clock.now
        bus.emit(spawned("late"))
        await journal.flush()
        assert [e.name for e in await journal.replay(since=cut)] == ["late"]  # type: ignore[attr-defined]
        assert len(await journal.replay()) == 2


async def test_the_journal_is_bounded_by_the_stores_retention(tmp_path: Path) -> None:
    bus = EventBus()
    async with (
        store_in(tmp_path, ManualClock(), journal_max_entries=5) as store,
        open_event_journal(store, bus, Event) as journal,
    ):
        for n in range(20):
            bus.emit(spawned(f"a{n}"))
            await journal.flush()
        replayed = await journal.replay()
        assert [e.name for e in replayed] == [f"a{n}" for n in range(15, 20)]  # type: ignore[attr-defined]
        assert store.statistics().journal_entries == 5


async def test_nothing_is_journaled_unless_a_journal_is_opened(tmp_path: Path) -> None:
    bus = EventBus()
    async with store_in(tmp_path, ManualClock()) as store:
        bus.emit(spawned("unrecorded"))
        await trio.sleep(0.01)
        assert await store.journal_replay("events") == []
        async with open_event_journal(store, bus, Event):
            bus.emit(spawned("recorded"))
        assert len(await store.journal_replay("events")) == 1


async def test_a_journal_that_falls_behind_drops_the_oldest_and_counts(tmp_path: Path) -> None:
    bus = EventBus()
    async with (
        store_in(tmp_path, ManualClock()) as store,
        open_event_journal(store, bus, Event, buffer=10) as journal,
    ):
        for n in range(50):  # no checkpoint: the journal cannot keep up
            bus.emit(spawned(f"a{n}"))
        await journal.flush()
        stats = journal.statistics()
        assert (stats.recorded, stats.dropped, stats.held) == (10, 40, 0)
        names = [e.name for e in await journal.replay()]  # type: ignore[attr-defined]
        assert names == [f"a{n}" for n in range(40, 50)]


async def test_a_huge_field_is_kept_as_a_preview(tmp_path: Path) -> None:
    bus = EventBus()
    async with (
        store_in(tmp_path, ManualClock()) as store,
        open_event_journal(store, bus, Event, max_entry_bytes=4096) as journal,
    ):
        bus.emit(DeadLetter(source="t", actor="a", message="x" * 1_000_000, reason="stopped"))
        await journal.flush()
        (letter,) = await journal.replay()
        assert isinstance(letter, DeadLetter)
        assert letter.reason == "stopped"
        assert letter.message.startswith("<cut: 1000002 bytes of JSON")
        assert len((await journal.entries())[0].data) <= 4096
        assert journal.statistics().cut_fields == 1


async def test_values_json_cannot_hold_come_back_as_their_repr(tmp_path: Path) -> None:
    class Opaque:
        def __repr__(self) -> str:
            return "<opaque result>"

    bus = EventBus()
    async with (
        store_in(tmp_path, ManualClock()) as store,
        open_event_journal(store, bus, Event) as journal,
    ):
        bus.emit(TaskCompleted(task_id=TaskId.new(), result=Opaque(), usage={"tokens": 3}))
        await journal.flush()
        (done,) = await journal.replay()
        assert isinstance(done, TaskCompleted)
        assert (done.result, done.usage) == ("<opaque result>", {"tokens": 3})


async def test_entries_that_are_not_events_fail_typed(tmp_path: Path) -> None:
    async with store_in(tmp_path, ManualClock()) as store:
        journal = EventJournal(store, Event)
        (garbage,) = await store.journal_append("events", [b"not json"])
        with pytest.raises(JournalDecodeError, match=f"entry {garbage}"):
            await journal.replay()
        entries = await journal.entries(after=garbage)
        assert entries == []
        await store.journal_append("other", [b'{"type":"Nope","module":"x","event":{}}'])
        other = EventJournal(store, Event, stream="other")
        with pytest.raises(JournalDecodeError, match=r"no loaded event class x\.Nope"):
            await other.replay()
        await store.journal_append(
            "third", [b'{"type":"AgentSpawned","module":"m","event":{"bogus":1}}']
        )
        third = EventJournal(store, Event, stream="third")
        with pytest.raises(JournalDecodeError, match="do not fit"):
            await third.replay()


async def test_bad_journal_arguments_are_refused(tmp_path: Path) -> None:
    async with store_in(tmp_path, ManualClock()) as store:
        with pytest.raises(InvalidStoreRequest, match="attrs class"):
            EventJournal(store, int)
        with pytest.raises(InvalidStoreRequest, match="max_entry_bytes"):
            EventJournal(store, Event, max_entry_bytes=10)
        with pytest.raises(InvalidStoreRequest, match="stream"):
            EventJournal(store, Event, stream="")


async def test_a_store_failure_surfaces_from_the_journal(tmp_path: Path) -> None:
    bus = EventBus()
    async with store_in(tmp_path, ManualClock()) as store:
        with pytest.RaisesGroup(StoreClosed, flatten_subgroups=True):
            async with open_event_journal(store, bus, Event):
                await store.aclose()
                bus.emit(spawned("lost?"))
                await trio.sleep_forever()


# -- every event class survives the journal ----------------------------------------------


def example(annotation: Any) -> Any:
    """A value of ``annotation`` (the field types events use)."""
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        options = [a for a in typing.get_args(annotation) if a is not type(None)]
        return example(options[0])
    origin = typing.get_origin(annotation)
    if origin is tuple:
        return ("a", "b")
    if origin is dict:
        return {"tokens": 7}
    if annotation is typing.Any:
        return {"nested": [1, "two", None]}
    if isinstance(annotation, type) and attrs.has(annotation):  # a nested record
        hints = typing.get_type_hints(annotation)
        return annotation(
            **{f.alias or f.name: example(hints[f.name]) for f in attrs.fields(annotation)}
        )
    if annotation in TYPED_IDS:
        return annotation.new()
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return list(annotation)[-1]
    values: dict[Any, Any] = {str: "text", int: 42, float: 2.5, bool: True, uuid.UUID: uuid.uuid4()}
    return values[annotation]


def every_event_class() -> list[type[Event]]:
    found: list[type[Event]] = []
    pending: list[type[Event]] = [Event]
    while pending:
        cls = pending.pop()
        if "__attrs_attrs__" in cls.__dict__:  # not the class attrs replaced by a slotted one
            found.append(cls)
        pending.extend(cls.__subclasses__())
    return sorted(found, key=lambda cls: cls.__qualname__)


@pytest.mark.parametrize("cls", every_event_class(), ids=lambda cls: cls.__qualname__)
async def test_every_event_class_round_trips(tmp_path: Path, cls: type[Event]) -> None:
    hints = typing.get_type_hints(cls)
    event = cls(**{f.alias or f.name: example(hints[f.name]) for f in attrs.fields(cls)})
    async with store_in(tmp_path, ManualClock()) as store:
        journal = EventJournal(store, Event)
        await journal.record([event])
        assert await journal.replay() == [event]
