"""``StreamProcessor``: async stages joined by bounded channels, so backpressure is end to end."""

from __future__ import annotations

import enum
import inspect
import math
import reprlib
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from typing import Any

import attrs
import trio

from ..errors import StreamError, unwrap_single
from ..events import DeadLetter, EventBus


class ErrorPolicy(enum.Enum):
    """What a stage does with an item its function failed on."""

    FAIL = "fail"
    """Fail the whole pipeline with a :class:`~mister_smith.StreamError` (the default)."""
    SKIP = "skip"
    """Drop the item, count it as skipped, carry on."""
    DEAD_LETTER = "dead_letter"
    """Hand the item and error to the dead-letter callback and/or a ``DeadLetter`` event."""


def _positive(instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{attribute.name} must be an int >= 1, got {value!r}")


def _buffer(instance: object, attribute: attrs.Attribute[int | None], value: int | None) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
        raise ValueError(f"{attribute.name} must be None or an int >= 0, got {value!r}")


@attrs.frozen
class Stage:
    """A stage applying ``fn`` to every item.

    With ``concurrency > 1`` several items are processed at once and outputs leave in
    completion order (not input order).

    Attributes:
        fn: ``async def fn(item) -> output``.
        name: Stage name for statistics, errors and dead letters (default: ``fn``'s).
        concurrency: Items processed at once (>= 1).
        on_error: What to do with an item ``fn`` raised on.
        buffer: Capacity of the stage's input channel (default: the processor's).
    """

    fn: Callable[[Any], Awaitable[Any]]
    name: str = ""
    concurrency: int = attrs.field(default=1, validator=_positive)
    on_error: ErrorPolicy = ErrorPolicy.FAIL
    buffer: int | None = attrs.field(default=None, validator=_buffer)

    @property
    def label(self) -> str:
        """The stage's name, or its function's when it has none."""
        return self.name or getattr(self.fn, "__qualname__", None) or repr(self.fn)


@attrs.frozen
class Batch:
    """A stage grouping items into lists of ``size``, or fewer after ``max_wait`` seconds.

    The wait starts with the first item of a batch; a partial batch is also flushed when
    the input ends.

    Attributes:
        size: Items per batch at most (>= 1).
        max_wait: Seconds a partial batch may wait for more items (``inf``: no limit).
        name: Stage name for statistics.
        buffer: Capacity of the stage's input channel (default: the processor's).
    """

    size: int = attrs.field(validator=_positive)
    max_wait: float = attrs.field(default=math.inf)
    name: str = "batch"
    buffer: int | None = attrs.field(default=None, validator=_buffer)

    @max_wait.validator
    def _check_wait(self, attribute: attrs.Attribute[float], value: float) -> None:
        if not value > 0:
            raise ValueError(f"max_wait must be > 0 seconds, got {value!r}")

    @property
    def label(self) -> str:
        """The stage's name."""
        return self.name


@attrs.frozen
class StageFailure:
    """An item a stage failed on, as given to the dead-letter callback."""

    stage: str
    item: Any
    error: Exception


@attrs.frozen
class StageStatistics:
    """A snapshot of one stage.

    Attributes:
        name: The stage's name.
        received: Items taken from its input channel.
        emitted: Items (or batches) sent on.
        failed: Items its function raised on (whatever the policy then did).
        skipped: Failed items dropped under ``SKIP``.
        dead_lettered: Failed items handed on under ``DEAD_LETTER``.
        in_progress: Items being processed now (a :class:`Batch` stage: the items of
            its partial batch; a stage after it: the batches it is processing).
        buffered: Entries waiting in its input channel now (a batch counts once).
    """

    name: str
    received: int
    emitted: int
    failed: int
    skipped: int
    dead_lettered: int
    in_progress: int
    buffered: int


@attrs.frozen
class PipelineStatistics:
    """A snapshot of a :class:`StreamProcessor` (counters add up over its runs).

    Attributes:
        pulled: Items taken from sources.
        delivered: Items that came out of the last stage.
        stages: One :class:`StageStatistics` per stage, in order.
    """

    pulled: int
    delivered: int
    stages: tuple[StageStatistics, ...]

    @property
    def in_flight(self) -> int:
        """Entries inside the pipeline now: in channels or being processed.

        A batch counts once, whether waiting in a channel or being processed; a
        :class:`Batch` stage's partial batch counts its items.
        """
        return sum(stage.buffered + stage.in_progress for stage in self.stages)


@attrs.define
class _Counters:
    name: str
    received: int = 0
    emitted: int = 0
    failed: int = 0
    skipped: int = 0
    dead_lettered: int = 0
    in_progress: int = 0
    input: trio.MemoryReceiveChannel[Any] | None = None

    def snapshot(self) -> StageStatistics:
        buffered = 0
        if self.input is not None:
            buffered = self.input.statistics().current_buffer_used
        return StageStatistics(
            self.name,
            self.received,
            self.emitted,
            self.failed,
            self.skipped,
            self.dead_lettered,
            self.in_progress,
            buffered,
        )


DeadLetterCallback = Callable[[StageFailure], Awaitable[object] | object]
"""Called with each dead-lettered item; may be sync or async."""


class StreamProcessor:
    """A pipeline of async stages joined by bounded memory channels.

    Items flow source -> stage 1 -> ... -> stage n -> consumer. Every channel is bounded,
    so a slow stage (or consumer) makes the ones before it wait, all the way back to the
    source: the items inside the pipeline never exceed the sum of the channel buffers,
    the stages' concurrency and one batch per :class:`Batch` stage.

    Run it with :meth:`run` (each output to an async ``sink``), :meth:`collect` (outputs
    as a list) or ``async with processor.stream(source) as outputs:``. A stage failing
    under ``ErrorPolicy.FAIL`` cancels the whole pipeline and raises a
    :class:`~mister_smith.StreamError` from the item's error; an exception from the
    source or sink is raised as is.

    Args:
        stages: :class:`Stage` and :class:`Batch` stages, in order (at least one).
        buffer: Default capacity of each stage's input channel (the reference
            backpressure buffer, 1,000).
        dead_letter: Called for each item dead-lettered by a ``DEAD_LETTER`` stage.
        events: Where ``DeadLetter`` events go for dead-lettered items.
        name: Source name of events.

    Raises:
        ValueError: no stages, or a ``DEAD_LETTER`` stage with neither ``dead_letter``
            nor ``events`` to hand its items to.
    """

    def __init__(
        self,
        stages: Sequence[Stage | Batch],
        *,
        buffer: int = 1_000,
        dead_letter: DeadLetterCallback | None = None,
        events: EventBus | None = None,
        name: str = "stream",
    ) -> None:
        if not stages:
            raise ValueError("a StreamProcessor needs at least one stage")
        if buffer < 0:
            raise ValueError(f"buffer must be >= 0, got {buffer!r}")
        for stage in stages:
            if (
                isinstance(stage, Stage)
                and stage.on_error is ErrorPolicy.DEAD_LETTER
                and dead_letter is None
                and events is None
            ):
                raise ValueError(
                    f"stage {stage.label!r} dead-letters failed items, but the processor "
                    "has neither a dead_letter callback nor an events bus"
                )
        self._stages = tuple(stages)
        self._buffer = buffer
        self._dead_letter = dead_letter
        self._events = events
        self.name = name
        self._counters = [_Counters(stage.label) for stage in self._stages]
        self._pulled = 0

    @property
    def stages(self) -> tuple[Stage | Batch, ...]:
        """The stages, in order."""
        return self._stages

    def statistics(self) -> PipelineStatistics:
        """Counters of every stage (see :class:`PipelineStatistics`)."""
        # The output channel is unbuffered: what the last stage emitted was delivered.
        return PipelineStatistics(
            self._pulled, self._counters[-1].emitted, tuple(c.snapshot() for c in self._counters)
        )

    # -- running ------------------------------------------------------------------------

    async def run(
        self,
        source: Iterable[Any] | AsyncIterable[Any],
        sink: Callable[[Any], Awaitable[object]] | None = None,
    ) -> PipelineStatistics:
        """Push every item of ``source`` through the stages, awaiting ``sink(output)``
        for each output (outputs are dropped without a sink); return the statistics."""
        async with self.stream(source) as outputs:
            async for output in outputs:
                if sink is not None:
                    await sink(output)
        return self.statistics()

    async def collect(self, source: Iterable[Any] | AsyncIterable[Any]) -> list[Any]:
        """Run the pipeline over ``source`` and return every output as a list."""
        collected: list[Any] = []
        async with self.stream(source) as outputs:
            async for output in outputs:
                collected.append(output)
        return collected

    @asynccontextmanager
    async def stream(
        self, source: Iterable[Any] | AsyncIterable[Any]
    ) -> AsyncIterator[trio.MemoryReceiveChannel[Any]]:
        """Run the pipeline in the background; yield the channel its outputs arrive on.

        The output channel has a buffer of ``0``: the pipeline only moves as fast as the
        consumer reads. Leaving the block early cancels the pipeline. If a stage failed,
        the channel ends early and leaving the block raises the
        :class:`~mister_smith.StreamError`.
        """
        failures: list[BaseException] = []
        try:
            async with trio.open_nursery() as nursery:
                outputs = self._start(nursery, source, failures)
                try:
                    yield outputs
                finally:
                    outputs.close()
                    nursery.cancel_scope.cancel()
        except BaseExceptionGroup as group:
            leaf = unwrap_single(group)
            if leaf is group:
                raise
            raise leaf from leaf.__cause__
        finally:
            for counters in self._counters:
                counters.input = None
        if failures:
            failure = failures[0]
            raise failure from failure.__cause__

    def _start(
        self,
        nursery: trio.Nursery,
        source: Iterable[Any] | AsyncIterable[Any],
        failures: list[BaseException],
    ) -> trio.MemoryReceiveChannel[Any]:
        def fail(error: BaseException) -> None:
            failures.append(error)
            nursery.cancel_scope.cancel()

        stage = self._stages[0]
        send, receive = trio.open_memory_channel[Any](
            self._buffer if stage.buffer is None else stage.buffer
        )
        nursery.start_soon(self._feed, source, send, fail, name=f"{self.name}:source")
        for index, stage in enumerate(self._stages):
            counters = self._counters[index]
            counters.input = receive
            if index + 1 < len(self._stages):
                following = self._stages[index + 1]
                capacity = self._buffer if following.buffer is None else following.buffer
            else:
                capacity = 0
            next_send, next_receive = trio.open_memory_channel[Any](capacity)
            if isinstance(stage, Batch):
                nursery.start_soon(
                    self._batch,
                    stage,
                    counters,
                    receive,
                    next_send,
                    name=f"{self.name}:{stage.label}",
                )
            else:
                for _ in range(stage.concurrency):
                    nursery.start_soon(
                        self._map,
                        stage,
                        counters,
                        receive.clone(),
                        next_send.clone(),
                        fail,
                        name=f"{self.name}:{stage.label}",
                    )
                receive.close()
                next_send.close()
            receive = next_receive
        return receive

    async def _feed(
        self,
        source: Iterable[Any] | AsyncIterable[Any],
        send: trio.MemorySendChannel[Any],
        fail: Callable[[BaseException], None],
    ) -> None:
        async with send:
            try:
                if isinstance(source, AsyncIterable):
                    # Close what we opened (e.g. an async generator) even when cancelled.
                    iterator = aiter(source)
                    try:
                        async for item in iterator:
                            await send.send(item)
                            self._pulled += 1
                    finally:
                        aclose = getattr(iterator, "aclose", None)
                        if aclose is not None:
                            await aclose()
                else:
                    for item in source:
                        await send.send(item)
                        self._pulled += 1
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                return  # the consumer went away; the pipeline is being torn down
            except Exception as error:
                fail(error)

    async def _map(
        self,
        stage: Stage,
        counters: _Counters,
        receive: trio.MemoryReceiveChannel[Any],
        send: trio.MemorySendChannel[Any],
        fail: Callable[[BaseException], None],
    ) -> None:
        async with receive, send:
            async for item in receive:
                counters.received += 1
                counters.in_progress += 1
                try:
                    output = await stage.fn(item)
                except Exception as error:
                    counters.failed += 1
                    if stage.on_error is ErrorPolicy.FAIL:
                        failure = StreamError(
                            f"{self.name}: stage {stage.label!r} failed on item "
                            f"{reprlib.repr(item)}: {type(error).__name__}: {error}"
                        )
                        failure.__cause__ = error
                        fail(failure)
                        return
                    if stage.on_error is ErrorPolicy.SKIP:
                        counters.skipped += 1
                    else:
                        counters.dead_lettered += 1
                        await self._send_dead_letter(StageFailure(stage.label, item, error))
                    continue
                finally:
                    counters.in_progress -= 1
                try:
                    await send.send(output)
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    return
                counters.emitted += 1

    async def _send_dead_letter(self, failure: StageFailure) -> None:
        if self._events is not None:
            self._events.emit(
                DeadLetter(
                    source=self.name,
                    actor=failure.stage,
                    message=failure.item,
                    reason=f"{type(failure.error).__name__}: {failure.error}",
                )
            )
        if self._dead_letter is not None:
            outcome = self._dead_letter(failure)
            if inspect.isawaitable(outcome):
                await outcome

    async def _batch(
        self,
        stage: Batch,
        counters: _Counters,
        receive: trio.MemoryReceiveChannel[Any],
        send: trio.MemorySendChannel[Any],
    ) -> None:
        async with receive, send:
            batch: list[Any] = []
            deadline = math.inf
            ended = False
            while not ended:
                flush = False
                with trio.move_on_at(deadline):
                    try:
                        item = await receive.receive()
                    except trio.EndOfChannel:
                        ended = True
                    else:
                        counters.received += 1
                        counters.in_progress += 1
                        batch.append(item)
                        if len(batch) == 1:
                            deadline = trio.current_time() + stage.max_wait
                        flush = len(batch) >= stage.size
                if not ended and not flush and batch and trio.current_time() >= deadline:
                    flush = True
                if (flush or ended) and batch:
                    full, batch, deadline = batch, [], math.inf
                    try:
                        await send.send(full)
                    except (trio.BrokenResourceError, trio.ClosedResourceError):
                        return
                    finally:
                        counters.in_progress -= len(full)
                    counters.emitted += 1
