"""StreamProcessor: stages, batching, error policies, end-to-end backpressure."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import trio
import trio.testing

from mister_smith.async_patterns import (
    Batch,
    ErrorPolicy,
    Stage,
    StageFailure,
    StreamProcessor,
)
from mister_smith.errors import StreamError
from mister_smith.events import DeadLetter, EventBus


async def double(x: int) -> int:
    await trio.lowlevel.checkpoint()
    return 2 * x


async def add_one(x: int) -> int:
    await trio.lowlevel.checkpoint()
    return x + 1


async def test_stages_apply_in_order() -> None:
    processor = StreamProcessor([Stage(double), Stage(add_one)])
    assert await processor.collect(range(5)) == [1, 3, 5, 7, 9]
    stats = processor.statistics()
    assert (stats.pulled, stats.delivered) == (5, 5)
    assert [s.name for s in stats.stages] == ["double", "add_one"]
    assert all(s.received == s.emitted == 5 for s in stats.stages)
    assert stats.in_flight == 0


async def test_async_source_and_sink() -> None:
    async def source() -> AsyncIterator[int]:
        for i in range(3):
            await trio.lowlevel.checkpoint()
            yield i

    seen: list[int] = []

    async def sink(item: int) -> None:
        seen.append(item)

    stats = await StreamProcessor([Stage(double)]).run(source(), sink)
    assert seen == [0, 2, 4]
    assert stats.delivered == 3


async def test_stage_concurrency(autojump_clock: trio.testing.MockClock) -> None:
    async def slow(x: int) -> int:
        await trio.sleep(1)
        return x

    processor = StreamProcessor([Stage(slow, concurrency=4)])
    assert sorted(await processor.collect(range(8))) == list(range(8))
    assert trio.current_time() == 2


async def test_batch_by_size() -> None:
    processor = StreamProcessor([Batch(size=4)])
    assert await processor.collect(range(10)) == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]


async def test_batch_by_time(autojump_clock: trio.testing.MockClock) -> None:
    async def source() -> AsyncIterator[str]:
        for at, item in ((0.0, "a"), (0.3, "b"), (2.0, "c"), (2.1, "d"), (2.2, "e")):
            await trio.sleep_until(at)
            yield item

    flushed: list[tuple[float, list[str]]] = []

    async def sink(batch: list[str]) -> None:
        flushed.append((trio.current_time(), batch))

    await StreamProcessor([Batch(size=3, max_wait=1.0)]).run(source(), sink)
    # a+b wait from 0.0 to 1.0; c, d, e fill a batch at 2.2.
    assert flushed == [(1.0, ["a", "b"]), (pytest.approx(2.2), ["c", "d", "e"])]


async def test_batch_then_stage(autojump_clock: trio.testing.MockClock) -> None:
    async def total(batch: list[int]) -> int:
        await trio.sleep(0.5)
        return sum(batch)

    processor = StreamProcessor([Stage(double), Batch(size=2), Stage(total)])
    assert await processor.collect(range(5)) == [2, 10, 8]


async def flaky(x: int) -> int:
    await trio.lowlevel.checkpoint()
    if x % 3 == 0:
        raise ValueError(f"bad {x}")
    return x


async def test_skip_policy_counts() -> None:
    processor = StreamProcessor([Stage(flaky, on_error=ErrorPolicy.SKIP)])
    assert await processor.collect(range(7)) == [1, 2, 4, 5]
    stage = processor.statistics().stages[0]
    assert (stage.received, stage.emitted, stage.failed, stage.skipped) == (7, 4, 3, 3)


async def test_dead_letter_policy_callback_and_event() -> None:
    bus = EventBus()
    failures: list[StageFailure] = []

    async def record(failure: StageFailure) -> None:
        await trio.lowlevel.checkpoint()
        failures.append(failure)

    processor = StreamProcessor(
        [Stage(flaky, name="parse", on_error=ErrorPolicy.DEAD_LETTER)],
        dead_letter=record,
        events=bus,
        name="ingest",
    )
    assert await processor.collect(range(4)) == [1, 2]
    assert [(f.stage, f.item, str(f.error)) for f in failures] == [
        ("parse", 0, "bad 0"),
        ("parse", 3, "bad 3"),
    ]
    letters = bus.history(DeadLetter)
    assert [(d.source, d.actor, d.message, d.reason) for d in letters] == [
        ("ingest", "parse", 0, "ValueError: bad 0"),
        ("ingest", "parse", 3, "ValueError: bad 3"),
    ]
    assert processor.statistics().stages[0].dead_lettered == 2


async def test_dead_letter_needs_a_destination() -> None:
    with pytest.raises(ValueError, match="dead_letter"):
        StreamProcessor([Stage(flaky, on_error=ErrorPolicy.DEAD_LETTER)])


async def test_fail_policy_fails_pipeline(autojump_clock: trio.testing.MockClock) -> None:
    async def slow(x: int) -> int:
        await trio.sleep(10)
        return x

    async def explode(x: int) -> int:
        await trio.sleep(1)
        raise KeyError(x)

    processor = StreamProcessor(
        [Stage(explode, name="explode", concurrency=2), Stage(slow)], name="p"
    )
    with pytest.raises(StreamError, match=r"stage 'explode' failed on item [01]") as caught:
        await processor.collect(range(100))
    assert isinstance(caught.value.__cause__, KeyError)
    assert trio.current_time() == 1  # everything else was cancelled at once


async def test_source_error_is_raised_as_is() -> None:
    def source() -> object:
        yield 1
        raise OSError("disk")

    with pytest.raises(OSError, match="disk"):
        await StreamProcessor([Stage(double)]).collect(source())  # type: ignore[arg-type]


async def test_consumer_error_and_early_exit(autojump_clock: trio.testing.MockClock) -> None:
    processor = StreamProcessor([Stage(double)])

    async def consume_and_fail() -> None:
        async with processor.stream(range(10)) as outputs:
            async for _ in outputs:
                raise LookupError("consumer")

    with pytest.raises(LookupError):
        await consume_and_fail()
    async with processor.stream(range(1_000_000)) as outputs:
        assert await outputs.receive() == 0
    # Leaving early cancelled the pipeline: nothing runs on.
    assert processor.statistics().pulled < 10_000


async def test_backpressure_bounds_items_in_flight(autojump_clock: trio.testing.MockClock) -> None:
    """A slow last stage holds the whole pipeline to its pace: memory stays bounded."""
    pulled = 0

    async def endless() -> AsyncIterator[int]:
        nonlocal pulled
        i = 0
        while True:
            pulled += 1
            yield i
            i += 1

    async def slow(x: int) -> int:
        await trio.sleep(1)
        return x

    buffer = 4
    processor = StreamProcessor(
        [Stage(double), Stage(add_one, concurrency=3), Batch(size=5), Stage(slow)],
        buffer=buffer,
    )
    # Items held: the source's one blocked send, three item channels of `buffer`, the
    # items being processed (1 + 3), one batch in the making (5 when blocked sending),
    # a channel of `buffer` batches of 5, and the batch `slow` is processing.
    bound = 1 + 3 * buffer + (1 + 3) + 5 + buffer * 5 + 5
    # statistics() counts channel entries and items in progress (a batch counts once).
    entry_bound = 3 * buffer + (1 + 3) + 5 + buffer + 1
    delivered = 0
    worst = worst_entries = 0
    async with processor.stream(endless()) as outputs:
        async for _ in outputs:
            delivered += 5
            worst = max(worst, pulled - delivered)
            worst_entries = max(worst_entries, processor.statistics().in_flight)
            assert pulled - delivered <= bound
            if delivered >= 500:
                break
    assert trio.current_time() == pytest.approx(100)  # one batch per second
    assert bound - 5 <= worst <= bound  # the buffers really filled up: the bound is tight
    assert worst_entries <= entry_bound


async def test_stage_validation() -> None:
    with pytest.raises(ValueError, match="concurrency"):
        Stage(double, concurrency=0)
    with pytest.raises(ValueError, match="size"):
        Batch(size=0)
    with pytest.raises(ValueError, match="max_wait"):
        Batch(size=1, max_wait=0)
    with pytest.raises(ValueError, match="at least one stage"):
        StreamProcessor([])
