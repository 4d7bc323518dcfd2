"""Stateful test of the EventBus against a plain model of bounded, typed subscriptions.

Rules subscribe (random event type, buffer and predicate), unsubscribe, emit, drain
part of a stream and add or remove handlers. The model says exactly what every stream
must hold: no subscriber misses an event it had room for, overflow drops the oldest,
and every counter in ``statistics()`` is exact.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import attrs
import pytest
import trio
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    initialize,
    invariant,
    precondition,
    rule,
)

from mister_smith.events import (
    Event,
    EventBus,
    EventBusStatistics,
    EventStream,
    HandlerRegistration,
    StreamStatistics,
)

T = TypeVar("T")


@attrs.frozen(kw_only=True)
class Base(Event):
    seq: int


@attrs.frozen(kw_only=True)
class Left(Base):
    pass


@attrs.frozen(kw_only=True)
class LeftChild(Left):
    pass


@attrs.frozen(kw_only=True)
class Right(Base):
    pass


@attrs.frozen(kw_only=True)
class Other(Event):
    seq: int


EmittedEvent = Base | Other
SUBSCRIBABLE: list[type[Event]] = [Event, Base, Left, LeftChild, Right, Other]
EMITTABLE: list[type[Base] | type[Other]] = [Base, Left, LeftChild, Right, Other]


def _run_sync_coro(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine that never suspends (e.g. ``EventStream.__aenter__``) to its end."""
    try:
        coro.send(None)
    except StopIteration as done:
        result: T = done.value
        return result
    coro.close()
    raise AssertionError("the coroutine suspended; it was expected to finish at once")


def _seq(event: Event) -> int:
    assert isinstance(event, Base | Other)
    return event.seq


def _even_seq(event: Event) -> bool:
    return _seq(event) % 2 == 0


@attrs.define(eq=False)
class StreamModel:
    """What one subscription stream must hold and have counted."""

    stream: EventStream[Event]
    event_type: type[Event]
    capacity: int
    even_only: bool
    queue: collections.deque[Event] = attrs.field(factory=collections.deque)
    dropped: int = 0
    received: int = 0
    open: bool = True

    def wants(self, event: Event) -> bool:
        return isinstance(event, self.event_type) and (not self.even_only or _even_seq(event))


@attrs.define(eq=False)
class HandlerModel:
    """A recording handler (optionally failing after recording) and what it must see."""

    event_type: type[Event]
    fails: bool
    seen: list[Event] = attrs.field(factory=list)
    expected: list[Event] = attrs.field(factory=list)
    registration: HandlerRegistration | None = None

    def __call__(self, event: Event) -> None:
        self.seen.append(event)
        if self.fails:
            raise ValueError("scripted handler failure")


class EventBusMachine(RuleBasedStateMachine):
    """Drives one :class:`EventBus` and checks it against the model after every step."""

    streams = Bundle("streams")
    handlers = Bundle("handlers")

    def __init__(self) -> None:
        super().__init__()
        self.bus = EventBus()
        self.history_size = 0
        self.default_buffer = 1
        self.stream_models: list[StreamModel] = []
        self.handler_models: list[HandlerModel] = []
        self.emitted: list[Event] = []
        self.delivered = 0
        self.handler_failures = 0
        self.next_seq = 0

    @initialize(history_size=st.integers(0, 6), default_buffer=st.integers(1, 5))
    def make_bus(self, history_size: int, default_buffer: int) -> None:
        self.history_size = history_size
        self.default_buffer = default_buffer
        self.bus = EventBus(history_size=history_size, subscriber_buffer=default_buffer)

    # -- rules ---------------------------------------------------------------------------

    @rule(
        target=streams,
        event_type=st.sampled_from(SUBSCRIBABLE),
        buffer=st.none() | st.integers(1, 5),
        even_only=st.booleans(),
    )
    def subscribe(
        self, event_type: type[Event], buffer: int | None, even_only: bool
    ) -> StreamModel:
        predicate: Callable[[Event], bool] | None = _even_seq if even_only else None
        stream = self.bus.subscribe(event_type, predicate=predicate, buffer=buffer)
        assert _run_sync_coro(stream.__aenter__()) is stream
        capacity = self.default_buffer if buffer is None else buffer
        model = StreamModel(stream, event_type, capacity, even_only)
        self.stream_models.append(model)
        return model

    @rule(model=streams, via_aexit=st.booleans())
    def unsubscribe(self, model: StreamModel, via_aexit: bool) -> None:
        # Closing twice is allowed, so the same stream may be drawn again later.
        if via_aexit:
            _run_sync_coro(model.stream.__aexit__(None, None, None))
        else:
            model.stream.close()
        model.open = False

    @rule(event_type=st.sampled_from(EMITTABLE), repeat=st.integers(1, 4))
    def emit(self, event_type: type[Base] | type[Other], repeat: int) -> None:
        for _ in range(repeat):
            event = event_type(seq=self.next_seq)
            self.next_seq += 1
            self.bus.emit(event)
            self.emitted.append(event)
            for model in self.stream_models:
                if model.open and model.wants(event):
                    if len(model.queue) == model.capacity:
                        model.queue.popleft()
                        model.dropped += 1
                    model.queue.append(event)
                    self.delivered += 1
            for handler in self.handler_models:
                if handler.registration is not None and isinstance(event, handler.event_type):
                    handler.expected.append(event)
                    self.delivered += 1
                    self.handler_failures += handler.fails

    @rule(model=streams, count=st.integers(1, 6))
    def drain(self, model: StreamModel, count: int) -> None:
        for _ in range(count):
            if not model.queue:
                with pytest.raises(trio.WouldBlock if model.open else trio.EndOfChannel):
                    model.stream.receive_nowait()
                return
            assert model.stream.receive_nowait() is model.queue.popleft()
            model.received += 1

    @rule(target=handlers, event_type=st.sampled_from(SUBSCRIBABLE), fails=st.booleans())
    def add_handler(self, event_type: type[Event], fails: bool) -> HandlerModel:
        handler = HandlerModel(event_type, fails)
        handler.registration = self.bus.add_handler(event_type, handler)
        self.handler_models.append(handler)
        return handler

    @rule(handler=consumes(handlers))
    def remove_handler(self, handler: HandlerModel) -> None:
        assert handler.registration is not None
        handler.registration.remove()
        handler.registration.remove()  # idempotent
        handler.registration = None

    @precondition(lambda self: any(not m.open for m in self.stream_models))
    @rule(data=st.data())
    def reenter_closed_stream(self, data: st.DataObject) -> None:
        model = data.draw(st.sampled_from([m for m in self.stream_models if not m.open]))
        with pytest.raises(RuntimeError):
            _run_sync_coro(model.stream.__aenter__())

    # -- invariants ----------------------------------------------------------------------

    @invariant()
    def streams_match_the_model(self) -> None:
        for model in self.stream_models:
            assert model.stream.statistics() == StreamStatistics(
                queued=len(model.queue),
                capacity=model.capacity,
                dropped=model.dropped,
                received=model.received,
            )

    @invariant()
    def bus_statistics_are_consistent(self) -> None:
        expected_history = self.emitted[-self.history_size :] if self.history_size else []
        statistics = self.bus.statistics()
        # Small events: nothing is cut or evicted by bytes; their size is an estimate.
        assert (statistics.history_bytes > 0) == bool(expected_history)
        assert statistics == EventBusStatistics(
            emitted=len(self.emitted),
            delivered=self.delivered,
            dropped=sum(m.dropped for m in self.stream_models),
            handler_failures=self.handler_failures,
            subscribers=sum(m.open for m in self.stream_models),
            handlers=sum(h.registration is not None for h in self.handler_models),
            history_len=len(expected_history),
            history_bytes=statistics.history_bytes,
            history_evicted=0,
            payloads_cut=0,
        )
        assert self.bus.history() == expected_history

    @invariant()
    def handlers_saw_exactly_their_events(self) -> None:
        for handler in self.handler_models:
            assert handler.seen == handler.expected

    def teardown(self) -> None:
        # Whatever is still queued must be exactly the model's queue, oldest first.
        for model in self.stream_models:
            remaining = list(model.queue)
            model.queue.clear()
            for expected in remaining:
                assert model.stream.receive_nowait() is expected
            with pytest.raises(trio.WouldBlock if model.open else trio.EndOfChannel):
                model.stream.receive_nowait()


TestEventBus = EventBusMachine.TestCase
