"""The event bus: synchronous non-blocking ``emit``, typed bounded subscriptions."""

from __future__ import annotations

import collections
import enum
import logging
import math
import types
import typing
import uuid
from collections.abc import AsyncIterator, Callable
from types import TracebackType
from typing import Any, Final, Generic, Self, TypeVar

import attrs
import trio

from ..errors import EventTimeout
from ..types import TYPED_IDS
from ._payload import DEFAULT_PAYLOAD_LIMIT, bounded_payload, payload_size
from ._records import Event

E = TypeVar("E", bound=Event)

logger = logging.getLogger("mister_smith.events")

DEFAULT_HISTORY_SIZE = 10_000
DEFAULT_SUBSCRIBER_BUFFER = 1_000
DEFAULT_HISTORY_BYTES = 32 * 1024 * 1024
"""Estimated bytes the history may hold (32 MiB) before its oldest events go."""


@attrs.frozen
class EventBusStatistics:
    """A snapshot of an :class:`EventBus`'s counters.

    Attributes:
        emitted: Events emitted since the bus was created.
        delivered: Events queued to streams or passed to handlers.
        dropped: Events dropped because a subscriber's queue was full (oldest first).
        handler_failures: Handler calls and stream predicates that raised (logged and
            isolated; a stream whose predicate raised skips that event).
        subscribers: Open subscription streams.
        handlers: Registered handler callbacks.
        history_len: Events currently held in the history ring buffer.
        history_bytes: Their estimated size in bytes (see :func:`payload_size`).
        history_evicted: Events dropped from the history early, before ``history_size``
            was reached, to stay within the history's byte budget.
        payloads_cut: Event fields the history keeps only a preview (or the head) of.
    """

    emitted: int
    delivered: int
    dropped: int
    handler_failures: int
    subscribers: int
    handlers: int
    history_len: int
    history_bytes: int = 0
    history_evicted: int = 0
    payloads_cut: int = 0


@attrs.frozen
class StreamStatistics:
    """A snapshot of one subscription stream: queued now, capacity, dropped so far."""

    queued: int
    capacity: int
    dropped: int
    received: int


class EventStream(Generic[E]):
    """A bounded subscription to the events of one type (and its subclasses).

    Obtain one with ``async with bus.subscribe(EventType) as stream:``; iterate it with
    ``async for event in stream`` or call :meth:`receive`. When its queue is full the
    oldest queued event is dropped and counted, so a slow subscriber never slows
    :meth:`EventBus.emit` or other subscribers.
    """

    def __init__(
        self,
        bus: EventBus,
        event_type: type[E],
        capacity: int,
        predicate: Callable[[E], bool] | None,
    ) -> None:
        if capacity < 1:
            raise ValueError(f"subscriber buffer must be >= 1, got {capacity!r}")
        self._bus = bus
        self.event_type = event_type
        self._predicate = predicate
        self._capacity = capacity
        self._queue: collections.deque[E] = collections.deque()
        self._lot = trio.lowlevel.ParkingLot()
        self._dropped = 0
        self._received = 0
        self._open = False
        self._closed = False

    def _offer(self, event: Event) -> int:
        """Queue ``event`` if it matches; return 1 if queued, 0 if filtered out."""
        if self._predicate is not None:
            try:
                wanted = self._predicate(event)  # type: ignore[arg-type]
            except Exception:
                self._bus._handler_failures += 1
                logger.exception("event stream predicate failed on %s", event.event_type)
                return 0
            if not wanted:
                return 0
        if len(self._queue) >= self._capacity:
            self._queue.popleft()
            self._dropped += 1
            self._bus._dropped += 1
        self._queue.append(event)  # type: ignore[arg-type]
        if self._lot:  # only wake when someone waits: keeps emit cheap
            self._lot.unpark_all()
        return 1

    async def receive(self) -> E:
        """Wait for and return the next event.

        Raises:
            trio.EndOfChannel: the stream was closed and its queue is empty.
        """
        await trio.lowlevel.checkpoint_if_cancelled()
        while not self._queue:
            if self._closed or not self._open:
                raise trio.EndOfChannel
            await self._lot.park()
        self._received += 1
        event = self._queue.popleft()
        await trio.lowlevel.cancel_shielded_checkpoint()
        return event

    def receive_nowait(self) -> E:
        """Return the next queued event without waiting.

        Raises:
            trio.WouldBlock: nothing is queued.
            trio.EndOfChannel: the stream was closed and its queue is empty.
        """
        if not self._queue:
            if self._closed or not self._open:
                raise trio.EndOfChannel
            raise trio.WouldBlock
        self._received += 1
        return self._queue.popleft()

    def statistics(self) -> StreamStatistics:
        """Counters of this stream."""
        return StreamStatistics(len(self._queue), self._capacity, self._dropped, self._received)

    def close(self) -> None:
        """Stop receiving new events; queued ones can still be received."""
        if not self._closed:
            self._closed = True
            self._bus._remove_stream(self)
            self._lot.unpark_all()

    def __aiter__(self) -> AsyncIterator[E]:
        return self

    async def __anext__(self) -> E:
        try:
            return await self.receive()
        except trio.EndOfChannel:
            raise StopAsyncIteration from None

    async def __aenter__(self) -> Self:
        if self._closed:
            raise RuntimeError("this event stream was already closed")
        if self._open:
            raise RuntimeError("this event stream is already open")
        self._open = True
        self._bus._add_stream(self)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


@attrs.define(eq=False)
class HandlerRegistration:
    """Returned by :meth:`EventBus.add_handler`; call :meth:`remove` to unregister."""

    _bus: EventBus
    event_type: type[Event]
    handler: Callable[[Event], object]

    def remove(self) -> None:
        """Unregister the handler (idempotent)."""
        self._bus._remove_handler(self)


class EventBus:
    """Routes events to typed subscribers and keeps a bounded history.

    :meth:`emit` is synchronous and never blocks: it records the event in the history
    ring buffer, queues it to every matching :class:`EventStream` (dropping that
    stream's oldest event if its buffer is full) and calls every matching handler
    callback. Subscribing to a base class receives its subclasses; ``Event`` receives
    everything.

    The history is bounded by count *and* by bytes, because it outlives the moment: a
    field over ``payload_limit`` bytes is kept as a
    :class:`~mister_smith.events.PayloadPreview` (a string is cut instead), and the
    oldest events go once the estimated total passes ``history_bytes``. Streams and
    handlers receive the event as emitted: a stream's queue is bounded by its capacity
    and belongs to a subscriber that asked for it.

    Args:
        history_size: Events kept for :meth:`history` (``0`` keeps none).
        subscriber_buffer: Default queue capacity of each subscription stream.
        history_bytes: Estimated bytes the history may hold; >= 1.
        payload_limit: Bytes one field of a kept event may take before only its
            preview is kept; >= 1.
    """

    def __init__(
        self,
        *,
        history_size: int = DEFAULT_HISTORY_SIZE,
        subscriber_buffer: int = DEFAULT_SUBSCRIBER_BUFFER,
        history_bytes: int = DEFAULT_HISTORY_BYTES,
        payload_limit: int = DEFAULT_PAYLOAD_LIMIT,
    ) -> None:
        if history_size < 0:
            raise ValueError(f"history_size must be >= 0, got {history_size!r}")
        if subscriber_buffer < 1:
            raise ValueError(f"subscriber_buffer must be >= 1, got {subscriber_buffer!r}")
        if history_bytes < 1:
            raise ValueError(f"history_bytes must be >= 1, got {history_bytes!r}")
        if payload_limit < 1:
            raise ValueError(f"payload_limit must be >= 1, got {payload_limit!r}")
        self._history: collections.deque[tuple[Event, int]] = collections.deque()
        self._history_size = history_size
        self._history_budget = history_bytes
        self._payload_limit = payload_limit
        self._history_bytes = 0
        self._history_evicted = 0
        self._payloads_cut = 0
        self._subscriber_buffer = subscriber_buffer
        self._streams: list[EventStream[Event]] = []
        self._handlers: list[HandlerRegistration] = []
        # Per concrete event type: the streams and handlers it goes to.
        self._routes: dict[
            type[Event], tuple[tuple[EventStream[Event], ...], tuple[HandlerRegistration, ...]]
        ] = {}
        self._emitted = 0
        self._delivered = 0
        self._dropped = 0
        self._handler_failures = 0

    # -- emitting -----------------------------------------------------------------------

    def emit(self, event: Event) -> None:
        """Announce ``event`` to history, streams and handlers. Never blocks or raises
        because of a subscriber: a failing handler is logged and counted."""
        self._emitted += 1
        if self._history_size:
            self._remember(event)
        cls = type(event)
        route = self._routes.get(cls)
        if route is None:
            route = self._route_for(cls)
        streams, handlers = route
        for stream in streams:
            self._delivered += stream._offer(event)
        for registration in handlers:
            self._delivered += 1
            try:
                registration.handler(event)
            except Exception:
                self._handler_failures += 1
                logger.exception(
                    "event handler %r failed on %s", registration.handler, event.event_type
                )

    def _remember(self, event: Event) -> None:
        """Append ``event`` (its large fields cut) to the history; evict to the bounds."""
        kept, size = self._kept(event)
        history = self._history
        history.append((kept, size))
        self._history_bytes += size
        while len(history) > self._history_size:
            self._history_bytes -= history.popleft()[1]
        while self._history_bytes > self._history_budget and history:
            self._history_bytes -= history.popleft()[1]
            self._history_evicted += 1

    def _kept(self, event: Event) -> tuple[Event, int]:
        """The event as the history keeps it, and its estimated size in bytes."""
        limit = self._payload_limit
        fields, scalars = _field_plan(type(event))
        size = _EVENT_OVERHEAD + scalars * _SMALL_SIZE
        changes: dict[str, Any] = {}
        for name, alias in fields:
            value = getattr(event, name)
            kind = type(value)
            if kind is str:
                if len(value) <= limit:
                    size += _SMALL_SIZE + len(value)
                    continue
            elif kind in _SMALL_TYPES:
                size += _SMALL_SIZE
                continue
            measured = payload_size(value, limit)
            if measured > limit:
                value = bounded_payload(value, limit)
                changes[alias] = value
                measured = payload_size(value, limit)
            size += measured
        if changes:
            self._payloads_cut += len(changes)
            event = attrs.evolve(event, **changes)
        return event, size

    def _route_for(
        self, cls: type[Event]
    ) -> tuple[tuple[EventStream[Event], ...], tuple[HandlerRegistration, ...]]:
        route = (
            tuple(s for s in self._streams if issubclass(cls, s.event_type)),
            tuple(h for h in self._handlers if issubclass(cls, h.event_type)),
        )
        self._routes[cls] = route
        return route

    # -- subscribing --------------------------------------------------------------------

    def subscribe(
        self,
        event_type: type[E],
        *,
        predicate: Callable[[E], bool] | None = None,
        buffer: int | None = None,
    ) -> EventStream[E]:
        """A stream of ``event_type`` events, to use as ``async with ... as stream``.

        Args:
            event_type: The event class; subclasses are received too.
            predicate: Only events for which it returns true are queued.
            buffer: Queue capacity (default: the bus's ``subscriber_buffer``).
        """
        capacity = self._subscriber_buffer if buffer is None else buffer
        return EventStream(self, event_type, capacity, predicate)

    def add_handler(
        self, event_type: type[E], handler: Callable[[E], object]
    ) -> HandlerRegistration:
        """Call ``handler(event)`` synchronously inside :meth:`emit` for each matching event.

        Handlers must be quick and must not block; an exception from one is logged and
        counted and the others still run.
        """
        registration = HandlerRegistration(self, event_type, handler)  # type: ignore[arg-type]
        self._handlers.append(registration)
        self._routes.clear()
        return registration

    def _remove_handler(self, registration: HandlerRegistration) -> None:
        if registration in self._handlers:
            self._handlers.remove(registration)
            self._routes.clear()

    def _add_stream(self, stream: EventStream[E]) -> None:
        self._streams.append(stream)  # type: ignore[arg-type]
        self._routes.clear()

    def _remove_stream(self, stream: EventStream[E]) -> None:
        if stream in self._streams:
            self._streams.remove(stream)  # type: ignore[arg-type]
            self._routes.clear()

    # -- querying -----------------------------------------------------------------------

    def history(
        self,
        event_type: type[E] = Event,  # type: ignore[assignment]
        predicate: Callable[[E], bool] | None = None,
    ) -> list[E]:
        """Events of ``event_type`` still in the history ring buffer, oldest first."""
        return [
            event
            for event, _ in self._history
            if isinstance(event, event_type) and (predicate is None or predicate(event))
        ]

    async def wait_for_event(
        self,
        event_type: type[E],
        predicate: Callable[[E], bool] | None = None,
        *,
        timeout: float | None = None,
        include_history: bool = False,
    ) -> E:
        """Return the first ``event_type`` event matching ``predicate``.

        Args:
            event_type: The event class (subclasses match).
            predicate: Extra condition on the event.
            timeout: Seconds to wait (Trio clock); ``None`` waits forever.
            include_history: Look first in the history (oldest match wins).

        Raises:
            EventTimeout: no matching event arrived in time (a ``TimeoutError``).
        """
        if include_history:
            for event in self.history(event_type, predicate):
                await trio.lowlevel.checkpoint()
                return event
        deadline = math.inf if timeout is None else trio.current_time() + timeout
        async with self.subscribe(event_type, predicate=predicate) as stream:
            with trio.move_on_at(deadline):
                return await stream.receive()
        raise EventTimeout(f"no {event_type.__name__} event matched within {timeout} s")

    def statistics(self) -> EventBusStatistics:
        """Counters of the bus (see :class:`EventBusStatistics`)."""
        return EventBusStatistics(
            emitted=self._emitted,
            delivered=self._delivered,
            dropped=self._dropped,
            handler_failures=self._handler_failures,
            subscribers=len(self._streams),
            handlers=len(self._handlers),
            history_len=len(self._history),
            history_bytes=self._history_bytes,
            history_evicted=self._history_evicted,
            payloads_cut=self._payloads_cut,
        )


_SMALL_TYPES: Final = frozenset({int, float, bool, type(None), uuid.UUID, *TYPED_IDS})
"""Field value types counted at a flat :data:`_SMALL_SIZE` without measuring (fast path).

Enum members count the same; strings count by length; anything else is measured.
"""

_SMALL_SIZE: Final = 64
_EVENT_OVERHEAD: Final = 256
"""Estimated bytes of an event object itself and its fixed fields' containers."""


_FIELD_PLANS: dict[type, tuple[tuple[tuple[str, str], ...], int]] = {}
_SCALAR_ANNOTATIONS: Final = frozenset({int, float, bool, uuid.UUID, *TYPED_IDS})


def _field_plan(cls: type[Event]) -> tuple[tuple[tuple[str, str], ...], int]:
    """The fields of an event class worth measuring, and how many are plain scalars.

    ``(attribute name, __init__ name)`` of each field that may hold text or a payload;
    fields annotated as numbers, booleans, UUIDs, typed ids or enums (optionally
    ``| None``) are only counted. Cached per class.
    """
    plan = _FIELD_PLANS.get(cls)
    if plan is None:
        try:
            hints = typing.get_type_hints(cls)
        except Exception:  # an annotation that cannot be resolved: measure everything
            hints = {}
        measured = []
        scalars = 0
        for field in attrs.fields(cls):
            if _is_scalar(hints.get(field.name)):
                scalars += 1
            else:
                measured.append((field.name, field.alias or field.name))
        plan = _FIELD_PLANS[cls] = (tuple(measured), scalars)
    return plan


def _is_scalar(annotation: object) -> bool:
    options = typing.get_args(annotation) if isinstance(annotation, types.UnionType) else ()
    for option in options or (annotation,):
        if option is type(None) or option in _SCALAR_ANNOTATIONS:
            continue
        if not (isinstance(option, type) and issubclass(option, enum.Enum)):
            return False
    return True
