"""The event records and the EventBus: typed bounded subscriptions, handlers, history."""

from __future__ import annotations

import contextlib
import inspect
import logging
import time
import uuid
from typing import Any

import attrs
import pytest
import trio
import trio.testing

import mister_smith
from mister_smith.errors import ErrorSeverity, EventTimeout, RecoveryAction
from mister_smith.events import (
    AgentSpawned,
    ComponentRecovered,
    ContextSummarized,
    DeadLetter,
    ErrorOccurred,
    Event,
    EventBus,
    EventBusStatistics,
    EventStream,
    LoopBlocked,
    StreamStatistics,
    SupervisionDecision,
    TaskCompleted,
    ToolCalled,
    ToolOutcome,
    event_time,
)
from mister_smith.types import ActorId, TaskId


@attrs.frozen(kw_only=True)
class Ping(Event):
    n: int = 0


@attrs.frozen(kw_only=True)
class LoudPing(Ping):
    pass


@attrs.frozen(kw_only=True)
class Pong(Event):
    n: int = 0


def pings(count: int, start: int = 0) -> list[Ping]:
    return [Ping(n=n) for n in range(start, start + count)]


def drain(stream: EventStream[Any]) -> list[Any]:
    """Everything queued on ``stream`` right now, without waiting."""
    out = []
    while True:
        try:
            out.append(stream.receive_nowait())
        except (trio.WouldBlock, trio.EndOfChannel):
            return out


# --- event records ------------------------------------------------------------------

DESIGN_DOC_RECORDS: list[Event] = [
    AgentSpawned(actor_id=ActorId.new(), name="researcher", role="lead"),
    TaskCompleted(task_id=TaskId.new(), result=42, usage={"input_tokens": 3}),
    ToolCalled(tool="search", caller="researcher", outcome=ToolOutcome.OK),
    ErrorOccurred(
        component="pool", error_type="PoolExhausted", message="m", severity=ErrorSeverity.MEDIUM
    ),
    ContextSummarized(agent="a", summarized_messages=10, summary="s"),
    SupervisionDecision(
        supervisor="root",
        child="worker",
        error_type="ValueError",
        error="bad",
        severity=ErrorSeverity.CRITICAL,
        action=RecoveryAction.RESTART,
    ),
    ComponentRecovered(
        supervisor="root", child="worker", action=RecoveryAction.RESTART, restarts=1
    ),
    DeadLetter(actor="a", message="hello", reason="stopped"),
    LoopBlocked(task="t", duration=0.25),
]


@pytest.mark.parametrize("record", DESIGN_DOC_RECORDS, ids=lambda r: type(r).__name__)
def test_design_doc_records_are_frozen_events(record: Event) -> None:
    assert isinstance(record, Event)
    assert record.event_type == type(record).__name__
    assert getattr(mister_smith, type(record).__name__) is type(record)
    assert isinstance(record.event_id, uuid.UUID)
    assert record.correlation_id is None
    assert record.causation_id is None
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        record.source = "changed"  # type: ignore[misc]


def test_events_get_unique_ids_and_equal_by_value() -> None:
    first, second = Ping(n=1, timestamp=1.0), Ping(n=1, timestamp=1.0)
    assert first.event_id != second.event_id
    assert first != second
    same_id = Ping(n=1, timestamp=1.0, event_id=first.event_id)
    assert same_id == first


def test_event_time_outside_trio_falls_back_to_monotonic() -> None:
    before = time.monotonic()
    event = Ping()
    stamp = event_time()
    after = time.monotonic()
    assert before <= event.timestamp <= stamp <= after


async def test_timestamp_comes_from_the_trio_clock(autojump_clock: trio.testing.MockClock) -> None:
    assert Ping().timestamp == 0.0
    await trio.sleep(12.5)
    assert event_time() == 12.5
    assert Ping().timestamp == 12.5
    assert AgentSpawned(actor_id=ActorId.new(), name="x").timestamp == 12.5


# --- construction -------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs", [{"history_size": -1}, {"subscriber_buffer": 0}, {"subscriber_buffer": -5}]
)
def test_bus_rejects_bad_sizes(kwargs: dict[str, int]) -> None:
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        EventBus(**kwargs)


@pytest.mark.parametrize("buffer", [0, -1])
def test_subscribe_rejects_bad_buffer(buffer: int) -> None:
    bus = EventBus()
    with pytest.raises(ValueError, match="buffer"):
        bus.subscribe(Ping, buffer=buffer)
    assert bus.statistics().subscribers == 0


def test_zero_history_is_allowed_and_keeps_nothing() -> None:
    bus = EventBus(history_size=0, subscriber_buffer=1)
    bus.emit(Ping())
    assert bus.history() == []
    assert bus.statistics().history_len == 0
    assert bus.statistics().emitted == 1


def test_fresh_bus_statistics() -> None:
    assert EventBus().statistics() == EventBusStatistics(
        emitted=0,
        delivered=0,
        dropped=0,
        handler_failures=0,
        subscribers=0,
        handlers=0,
        history_len=0,
    )


# --- emit ----------------------------------------------------------------------------


async def test_emit_is_sync_and_never_blocks(autojump_clock: trio.testing.MockClock) -> None:
    assert not inspect.iscoroutinefunction(EventBus.emit)
    bus = EventBus(subscriber_buffer=1)
    async with bus.subscribe(Event) as stream:
        start = trio.current_time()
        with trio.testing.assert_no_checkpoints():
            for event in pings(1000):
                bus.emit(event)  # the full stream never pushes back
        assert trio.current_time() == start
        assert stream.statistics() == StreamStatistics(
            queued=1, capacity=1, dropped=999, received=0
        )


async def test_emit_without_subscribers_only_counts_and_records() -> None:
    bus = EventBus()
    events = pings(3)
    for event in events:
        bus.emit(event)
    stats = bus.statistics()
    assert (stats.emitted, stats.delivered, stats.dropped, stats.history_len) == (3, 0, 0, 3)
    assert bus.history() == events


# --- typed subscriptions --------------------------------------------------------------


async def test_subscription_receives_its_type_and_subclasses_only() -> None:
    bus = EventBus()
    async with bus.subscribe(Ping) as ping_stream, bus.subscribe(LoudPing) as loud_stream:
        ping, loud, pong = Ping(n=1), LoudPing(n=2), Pong(n=3)
        for event in (ping, loud, pong):
            bus.emit(event)
        assert drain(ping_stream) == [ping, loud]
        assert drain(loud_stream) == [loud]
        assert bus.statistics().delivered == 3


async def test_subscribing_to_event_receives_everything() -> None:
    bus = EventBus()
    async with bus.subscribe(Event) as stream:
        events: list[Event] = [
            Ping(n=1),
            Pong(n=2),
            LoudPing(n=3),
            LoopBlocked(task="t", duration=1.0),
        ]
        for event in events:
            bus.emit(event)
        assert [await stream.receive() for _ in events] == events


async def test_subscription_only_sees_events_emitted_while_open() -> None:
    bus = EventBus()
    bus.emit(Ping(n=0))
    stream = bus.subscribe(Ping)
    bus.emit(Ping(n=1))  # created but not entered: not registered yet
    assert bus.statistics().subscribers == 0
    async with stream:
        assert bus.statistics().subscribers == 1
        inside = Ping(n=2)
        bus.emit(inside)
    assert bus.statistics().subscribers == 0
    bus.emit(Ping(n=3))
    assert drain(stream) == [inside]


async def test_predicate_filters_stream() -> None:
    bus = EventBus()
    async with bus.subscribe(Ping, predicate=lambda e: e.n % 2 == 0) as evens:
        for event in pings(6):
            bus.emit(event)
        assert [e.n for e in drain(evens)] == [0, 2, 4]
        # Filtered events are neither delivered nor dropped.
        assert bus.statistics().delivered == 3
        assert evens.statistics() == StreamStatistics(
            queued=0, capacity=1000, dropped=0, received=3
        )


async def test_failing_predicate_does_not_break_emit() -> None:
    bus = EventBus()
    seen: list[Event] = []

    def broken(event: Ping) -> bool:
        raise KeyError("predicate bug")

    async with bus.subscribe(Ping, predicate=broken), bus.subscribe(Ping) as healthy:
        bus.add_handler(Ping, seen.append)
        event = Ping()
        bus.emit(event)  # must not raise because of a subscriber
        assert drain(healthy) == [event]
        assert seen == [event]


# --- handlers -----------------------------------------------------------------------


async def test_handlers_are_called_synchronously_inside_emit() -> None:
    bus = EventBus()
    pings_seen: list[Ping] = []
    everything: list[Event] = []
    bus.add_handler(Ping, pings_seen.append)
    bus.add_handler(Event, everything.append)
    ping, loud, pong = Ping(n=1), LoudPing(n=2), Pong(n=3)
    with trio.testing.assert_no_checkpoints():
        bus.emit(ping)
        assert pings_seen == [ping]  # before emit returned to us and before any checkpoint
        bus.emit(loud)
        bus.emit(pong)
    assert pings_seen == [ping, loud]
    assert everything == [ping, loud, pong]
    stats = bus.statistics()
    assert (stats.handlers, stats.delivered, stats.handler_failures) == (2, 5, 0)


async def test_handler_sees_bus_state_including_the_event() -> None:
    bus = EventBus()
    observed: list[tuple[int, bool]] = []
    bus.add_handler(Ping, lambda e: observed.append((bus.statistics().emitted, e in bus.history())))
    bus.emit(Ping())
    assert observed == [(1, True)]


def test_handler_removal_is_idempotent() -> None:
    bus = EventBus()
    seen: list[Event] = []
    registration = bus.add_handler(Ping, seen.append)
    bus.emit(Ping(n=1))
    registration.remove()
    registration.remove()
    assert bus.statistics().handlers == 0
    bus.emit(Ping(n=2))
    assert [e.n for e in seen if isinstance(e, Ping)] == [1]
    assert registration.event_type is Ping


def test_same_handler_registered_twice_is_called_twice() -> None:
    bus = EventBus()
    seen: list[Event] = []
    first = bus.add_handler(Ping, seen.append)
    bus.add_handler(Ping, seen.append)
    event = Ping()
    bus.emit(event)
    assert seen == [event, event]
    first.remove()
    bus.emit(event)
    assert seen == [event, event, event]


async def test_failing_handler_is_isolated_logged_and_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR, logger="mister_smith.events")
    bus = EventBus()
    before: list[Event] = []
    after: list[Event] = []

    def explode(event: Ping) -> None:
        raise ZeroDivisionError("handler bug")

    bus.add_handler(Ping, before.append)
    bus.add_handler(Ping, explode)
    bus.add_handler(Ping, after.append)
    async with bus.subscribe(Ping) as stream:
        first, second = Ping(n=1), Ping(n=2)
        bus.emit(first)
        bus.emit(second)
        assert drain(stream) == [first, second]
    assert before == [first, second]
    assert after == [first, second]

    stats = bus.statistics()
    assert stats.handler_failures == 2
    assert stats.emitted == 2
    records = [r for r in caplog.records if r.name == "mister_smith.events"]
    assert len(records) == 2
    for record in records:
        assert record.levelno == logging.ERROR
        assert record.exc_info is not None
        assert record.exc_info[0] is ZeroDivisionError
        assert "Ping" in record.getMessage()
        assert "explode" in record.getMessage()


# --- bounded queues -----------------------------------------------------------------


async def test_full_queue_drops_oldest_and_counts_exactly() -> None:
    bus = EventBus()
    async with bus.subscribe(Ping, buffer=3) as stream:
        events = pings(5)
        for event in events:
            bus.emit(event)
        assert stream.statistics() == StreamStatistics(queued=3, capacity=3, dropped=2, received=0)
        assert [await stream.receive() for _ in range(3)] == events[2:]
        assert stream.statistics() == StreamStatistics(queued=0, capacity=3, dropped=2, received=3)
        bus.emit(later := Ping(n=99))
        assert stream.receive_nowait() is later
        stats = bus.statistics()
        assert (stats.emitted, stats.delivered, stats.dropped) == (6, 6, 2)


async def test_default_buffer_comes_from_the_bus() -> None:
    bus = EventBus(subscriber_buffer=2)
    async with bus.subscribe(Ping) as stream, bus.subscribe(Ping, buffer=4) as roomy:
        for event in pings(5):
            bus.emit(event)
        assert stream.statistics() == StreamStatistics(queued=2, capacity=2, dropped=3, received=0)
        assert roomy.statistics() == StreamStatistics(queued=4, capacity=4, dropped=1, received=0)
        assert bus.statistics().dropped == 4


async def test_bus_drop_count_survives_closed_streams() -> None:
    bus = EventBus(subscriber_buffer=1)
    async with bus.subscribe(Ping):
        for event in pings(4):
            bus.emit(event)
    assert bus.statistics().dropped == 3
    assert bus.statistics().subscribers == 0


async def test_slow_subscriber_does_not_affect_a_fast_one(
    autojump_clock: trio.testing.MockClock,
) -> None:
    bus = EventBus()
    events = pings(20)
    fast_got: list[Ping] = []
    async with bus.subscribe(Ping, buffer=2) as fast, bus.subscribe(Ping, buffer=2) as slow:

        async def fast_consumer() -> None:
            async for event in fast:
                fast_got.append(event)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(fast_consumer)
            for event in events:
                start = trio.current_time()
                bus.emit(event)
                assert trio.current_time() == start
                await trio.sleep(1)  # the fast consumer keeps up; the slow one never reads
            fast.close()
        assert fast_got == events
        assert fast.statistics() == StreamStatistics(queued=0, capacity=2, dropped=0, received=20)
        assert slow.statistics() == StreamStatistics(queued=2, capacity=2, dropped=18, received=0)
        assert drain(slow) == events[-2:]
        assert bus.statistics().dropped == 18
        assert trio.current_time() == 20.0


# --- history ------------------------------------------------------------------------


def test_history_is_a_bounded_ring_buffer() -> None:
    bus = EventBus(history_size=3)
    events = pings(5)
    for event in events:
        bus.emit(event)
    assert bus.history() == events[2:]
    assert bus.history(Event) == events[2:]
    assert bus.statistics().history_len == 3
    assert bus.statistics().emitted == 5


def test_history_filters_by_type_and_predicate() -> None:
    bus = EventBus(history_size=10)
    mixed: list[Event] = [Ping(n=1), Pong(n=2), LoudPing(n=3), Ping(n=4), Pong(n=5)]
    for event in mixed:
        bus.emit(event)
    assert bus.history(Ping) == [mixed[0], mixed[2], mixed[3]]
    assert bus.history(LoudPing) == [mixed[2]]
    assert bus.history(Pong) == [mixed[1], mixed[4]]
    assert bus.history(Ping, lambda e: e.n > 1) == [mixed[2], mixed[3]]
    assert bus.history(Pong, lambda e: e.n > 100) == []
    assert bus.history(LoopBlocked) == []


def test_history_returns_a_copy() -> None:
    bus = EventBus()
    bus.emit(Ping())
    snapshot: list[Event] = bus.history()
    snapshot.clear()
    assert len(bus.history()) == 1


# --- wait_for_event -----------------------------------------------------------------


async def test_wait_for_event_returns_first_match(autojump_clock: trio.testing.MockClock) -> None:
    bus = EventBus()
    wanted = Ping(n=7)

    async def emitter() -> None:
        await trio.sleep(1)
        bus.emit(Pong(n=7))
        bus.emit(Ping(n=1))
        await trio.sleep(1)
        bus.emit(wanted)
        bus.emit(Ping(n=7))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(emitter)
        got = await bus.wait_for_event(Ping, lambda e: e.n == 7, timeout=10)
    assert got is wanted
    assert trio.current_time() == 2.0
    assert bus.statistics().subscribers == 0


async def test_wait_for_event_accepts_subclasses() -> None:
    bus = EventBus()
    loud = LoudPing(n=1)

    async def emit_later() -> None:
        await trio.testing.wait_all_tasks_blocked()
        bus.emit(Pong())
        bus.emit(loud)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(emit_later)
        assert await bus.wait_for_event(Ping) is loud


async def test_wait_for_event_ignores_history_by_default(
    autojump_clock: trio.testing.MockClock,
) -> None:
    bus = EventBus()
    bus.emit(Ping(n=1))
    with pytest.raises(EventTimeout):
        await bus.wait_for_event(Ping, timeout=3)
    assert trio.current_time() == 3.0


async def test_wait_for_event_include_history_returns_oldest_match(
    autojump_clock: trio.testing.MockClock,
) -> None:
    bus = EventBus()
    old = [Ping(n=1), Ping(n=2), Ping(n=3)]
    for event in old:
        bus.emit(event)
    bus.emit(Pong(n=2))
    with trio.testing.assert_checkpoints():
        got = await bus.wait_for_event(Ping, lambda e: e.n >= 2, include_history=True, timeout=1)
    assert got is old[1]
    assert trio.current_time() == 0.0
    assert bus.statistics().subscribers == 0


async def test_wait_for_event_include_history_falls_back_to_waiting(
    autojump_clock: trio.testing.MockClock,
) -> None:
    bus = EventBus()
    bus.emit(Ping(n=1))
    fresh = Ping(n=5)

    async def emitter() -> None:
        await trio.sleep(4)
        bus.emit(fresh)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(emitter)
        got = await bus.wait_for_event(Ping, lambda e: e.n == 5, include_history=True)
    assert got is fresh
    assert trio.current_time() == 4.0


@pytest.mark.parametrize("timeout", [0, 0.5, 5, 3600])
async def test_wait_for_event_times_out_after_exactly_timeout(
    autojump_clock: trio.testing.MockClock, timeout: float
) -> None:
    bus = EventBus()
    await trio.sleep(1.25)
    start = trio.current_time()

    async def distractions() -> None:
        while True:
            bus.emit(Pong())
            await trio.sleep(0.1)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(distractions)
        with pytest.raises(EventTimeout) as info:
            await bus.wait_for_event(Ping, timeout=timeout)
        nursery.cancel_scope.cancel()
    assert isinstance(info.value, TimeoutError)
    assert "Ping" in str(info.value)
    assert trio.current_time() == start + timeout
    assert bus.statistics().subscribers == 0


async def test_wait_for_event_cancelled_from_outside_leaves_no_subscriber(
    autojump_clock: trio.testing.MockClock,
) -> None:
    bus = EventBus()
    with trio.move_on_after(2) as scope:
        await bus.wait_for_event(Ping)
    assert scope.cancelled_caught
    assert trio.current_time() == 2.0
    assert bus.statistics().subscribers == 0


# --- streams ------------------------------------------------------------------------


async def test_closing_stream_ends_async_for() -> None:
    bus = EventBus()
    got: list[Ping] = []
    events = pings(3)
    async with bus.subscribe(Ping) as stream:

        async def consume() -> None:
            async for event in stream:
                got.append(event)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(consume)
            await trio.testing.wait_all_tasks_blocked()
            for event in events:
                bus.emit(event)
            stream.close()
            bus.emit(Ping(n=100))  # after close: not received
    assert got == events
    assert stream.statistics().received == 3
    assert bus.statistics().subscribers == 0


async def test_close_wakes_a_parked_receiver() -> None:
    bus = EventBus()
    async with bus.subscribe(Ping) as stream, trio.open_nursery() as nursery:

        async def receiver() -> None:
            with pytest.raises(trio.EndOfChannel):
                await stream.receive()

        nursery.start_soon(receiver)
        await trio.testing.wait_all_tasks_blocked()
        stream.close()


async def test_queued_events_survive_close() -> None:
    bus = EventBus()
    stream = bus.subscribe(Ping)
    async with stream:
        events = pings(2)
        for event in events:
            bus.emit(event)
    assert await stream.receive() is events[0]
    assert stream.receive_nowait() is events[1]
    with pytest.raises(trio.EndOfChannel):
        stream.receive_nowait()
    with pytest.raises(trio.EndOfChannel):
        await stream.receive()


async def test_receive_nowait_would_block_on_open_empty_stream() -> None:
    bus = EventBus()
    async with bus.subscribe(Ping) as stream:
        with pytest.raises(trio.WouldBlock):
            stream.receive_nowait()
        assert stream.statistics().received == 0


async def test_closed_stream_cannot_be_reentered() -> None:
    bus = EventBus()
    stream = bus.subscribe(Ping)
    async with stream:
        pass
    with pytest.raises(RuntimeError):
        async with stream:
            pass  # pragma: no cover
    assert bus.statistics().subscribers == 0


async def test_entering_an_open_stream_again_never_registers_it_twice() -> None:
    bus = EventBus()
    stream = bus.subscribe(Ping)
    async with stream:
        with contextlib.suppress(RuntimeError):
            async with stream:
                bus.emit(Ping(n=1))
        bus.emit(Ping(n=2))
    got = drain(stream)
    assert len(got) == len({event.event_id for event in got})
    assert bus.statistics().subscribers == 0


async def test_close_is_idempotent() -> None:
    bus = EventBus()
    async with bus.subscribe(Ping) as stream, bus.subscribe(Ping) as other:
        stream.close()
        stream.close()
        assert bus.statistics().subscribers == 1
        bus.emit(event := Ping())
        assert drain(other) == [event]
        assert drain(stream) == []


async def test_receive_checkpoints_on_the_fast_path() -> None:
    bus = EventBus()
    async with bus.subscribe(Ping) as stream:
        bus.emit(event := Ping())
        with trio.testing.assert_checkpoints():
            assert await stream.receive() is event


async def test_receive_when_cancelled_keeps_the_event() -> None:
    bus = EventBus()
    async with bus.subscribe(Ping) as stream:
        bus.emit(event := Ping())
        with trio.CancelScope() as scope:
            scope.cancel()
            await stream.receive()
        assert scope.cancelled_caught
        assert stream.statistics().queued == 1
        assert stream.statistics().received == 0
        assert stream.receive_nowait() is event


async def test_receive_waits_for_the_next_event(autojump_clock: trio.testing.MockClock) -> None:
    bus = EventBus()
    event = Ping()
    async with bus.subscribe(Ping) as stream, trio.open_nursery() as nursery:

        async def later() -> None:
            await trio.sleep(3)
            bus.emit(event)

        nursery.start_soon(later)
        assert await stream.receive() is event
        assert trio.current_time() == 3.0


async def test_statistics_are_frozen_snapshots() -> None:
    bus = EventBus()
    async with bus.subscribe(Ping) as stream:
        bus_stats, stream_stats = bus.statistics(), stream.statistics()
        bus.emit(Ping())
        assert bus_stats.emitted == 0
        assert stream_stats.queued == 0
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            bus_stats.emitted = 5  # type: ignore[misc]
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            stream_stats.queued = 5  # type: ignore[misc]
