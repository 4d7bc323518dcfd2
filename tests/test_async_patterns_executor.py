"""TaskExecutor: concurrency and queue bounds, timeouts, retries (exact virtual times)."""

from __future__ import annotations

import random

import attrs
import pytest
import stamina
import trio
import trio.testing

from mister_smith.async_patterns import (
    AsyncTask,
    RetryPolicy,
    TaskCancelled,
    TaskExecutor,
    TaskStatus,
    is_critical,
    is_transient,
)
from mister_smith.errors import (
    NetworkError,
    RuntimeFault,
    TaskError,
    TaskQueueFull,
    TaskTimeout,
)
from mister_smith.events import EventBus, TaskCompleted, TaskFailed

NO_RETRY = RetryPolicy.none()


class Flaky:
    """Fails ``failures`` times with ``error`` then returns ``value``; records attempt times."""

    def __init__(self, failures: int, error: Exception, value: object = "ok") -> None:
        self.failures = failures
        self.error = error
        self.value = value
        self.times: list[float] = []

    async def __call__(self) -> object:
        self.times.append(trio.current_time())
        await trio.lowlevel.checkpoint()
        if len(self.times) <= self.failures:
            raise self.error
        return self.value


async def sleep_then(seconds: float, value: object) -> object:
    await trio.sleep(seconds)
    return value


async def test_run_returns_value(autojump_clock: trio.testing.MockClock) -> None:
    async with TaskExecutor() as executor:
        assert await executor.run(sleep_then, 1, "done") == "done"
        assert trio.current_time() == 1


async def test_batch_results_in_submission_order(autojump_clock: trio.testing.MockClock) -> None:
    async with TaskExecutor(retry=NO_RETRY) as executor:
        results = await executor.run_batch(
            [lambda d=d: sleep_then(d, d) for d in (3, 1, 2)]  # type: ignore[misc]
        )
    assert [r.value for r in results] == [3, 1, 2]
    assert all(r.ok and r.attempts == 1 for r in results)
    assert trio.current_time() == 3


async def test_concurrency_is_bounded(autojump_clock: trio.testing.MockClock) -> None:
    running = peak = 0

    async def job() -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await trio.sleep(1)
        running -= 1

    async with TaskExecutor(max_concurrency=3, retry=NO_RETRY) as executor:
        await executor.run_batch([job] * 10)
        assert executor.statistics().completed == 10
    assert peak == 3
    assert trio.current_time() == 4  # ceil(10 / 3) rounds of 1 s


async def test_queue_full_refuses(autojump_clock: trio.testing.MockClock) -> None:
    async with TaskExecutor(max_concurrency=1, queue_size=2, retry=NO_RETRY) as executor:
        handles = [executor.submit_nowait(sleep_then, 1, i) for i in range(3)]
        with pytest.raises(TaskQueueFull):
            executor.submit_nowait(sleep_then, 1, 3)
        assert executor.statistics().rejected == 1
        assert [await h.result() for h in handles] == [0, 1, 2]
        # Room again once the queue drained.
        assert await executor.submit_nowait(sleep_then, 1, 4).result() == 4


async def test_submit_waits_for_room(autojump_clock: trio.testing.MockClock) -> None:
    async with TaskExecutor(max_concurrency=1, queue_size=0, retry=NO_RETRY) as executor:
        first = executor.submit_nowait(sleep_then, 5, "first")
        second = await executor.submit(sleep_then, 1, "second")
        assert trio.current_time() == 5  # waited until the first freed its slot
        assert await first.result() == "first"
        assert await second.result() == "second"
        assert trio.current_time() == 6


async def test_timeout_per_attempt(autojump_clock: trio.testing.MockClock) -> None:
    async with TaskExecutor(timeout=2, retry=NO_RETRY) as executor:
        handle = executor.submit_nowait(sleep_then, 10, "never")
        result = await handle.wait()
    assert result.status is TaskStatus.TIMED_OUT
    assert isinstance(result.error, TaskTimeout)
    assert trio.current_time() == 2
    with pytest.raises(TaskTimeout):
        result.unwrap()


async def test_exponential_backoff_exact_schedule(autojump_clock: trio.testing.MockClock) -> None:
    flaky = Flaky(3, TaskError("transient"))
    policy = RetryPolicy.exponential(0.1, factor=2.0, jitter=0.0, max_attempts=4)
    async with TaskExecutor(retry=policy) as executor:
        assert await executor.run(flaky) == "ok"
        assert executor.statistics().retries == 3
    assert flaky.times == pytest.approx([0.0, 0.1, 0.3, 0.7])


async def test_backoff_capped_by_max_delay(autojump_clock: trio.testing.MockClock) -> None:
    flaky = Flaky(4, NetworkError("down"))
    policy = RetryPolicy(max_attempts=5, base_delay=1.0, factor=3.0, max_delay=4.0)
    async with TaskExecutor(retry=policy) as executor:
        await executor.run(flaky)
    assert flaky.times == pytest.approx([0, 1, 4, 8, 12])
    assert [policy.delay_before(n) for n in (1, 2, 3, 4)] == [1, 3, 4, 4]


async def test_fixed_delay_and_attempts_exhausted(autojump_clock: trio.testing.MockClock) -> None:
    flaky = Flaky(10, TaskError("still down"))
    async with TaskExecutor(retry=RetryPolicy.fixed(0.5, max_attempts=3)) as executor:
        result = await executor.submit_nowait(flaky).wait()
    assert result.status is TaskStatus.FAILED
    assert result.attempts == 3
    assert str(result.error) == "still down"
    assert flaky.times == pytest.approx([0, 0.5, 1.0])


async def test_timeouts_are_retried(autojump_clock: trio.testing.MockClock) -> None:
    starts: list[float] = []

    async def slow() -> None:
        starts.append(trio.current_time())
        await trio.sleep(10)

    async with TaskExecutor(timeout=1, retry=RetryPolicy.fixed(0.5, max_attempts=3)) as ex:
        result = await ex.submit_nowait(slow).wait()
    assert result.status is TaskStatus.TIMED_OUT
    assert starts == pytest.approx([0, 1.5, 3.0])
    assert trio.current_time() == pytest.approx(4.0)
    assert result.duration == pytest.approx(4.0)


async def test_jitter_stays_within_bounds(autojump_clock: trio.testing.MockClock) -> None:
    random.seed(1234)
    flaky = Flaky(5, TaskError("x"))
    policy = RetryPolicy.exponential(1.0, factor=2.0, jitter=0.5, max_attempts=6)
    async with TaskExecutor(retry=policy) as executor:
        await executor.run(flaky)
    delays = [b - a for a, b in zip(flaky.times, flaky.times[1:], strict=False)]
    for retry, delay in enumerate(delays, start=1):
        base = policy.delay_before(retry)
        assert base <= delay <= base + 0.5
    assert len({round(d - policy.delay_before(i + 1), 9) for i, d in enumerate(delays)}) > 1


async def test_retry_on_predicate_by_error_kind(autojump_clock: trio.testing.MockClock) -> None:
    # Plain exceptions are critical runtime faults: not retried by default.
    bug = Flaky(1, ValueError("bug"))
    async with TaskExecutor(retry=RetryPolicy.fixed(1)) as executor:
        result = await executor.submit_nowait(bug).wait()
    assert result.status is TaskStatus.FAILED
    assert result.attempts == 1
    # An explicit kind list retries them.
    bug = Flaky(1, ValueError("bug"))
    async with TaskExecutor(retry=RetryPolicy.fixed(1, retry_on=(ValueError,))) as executor:
        assert await executor.run(bug) == "ok"
    assert bug.times == [0, 1]
    # A predicate.
    only_network = RetryPolicy.fixed(1, retry_on=lambda e: isinstance(e, NetworkError))
    assert only_network.should_retry(NetworkError("x"))
    assert not only_network.should_retry(TaskError("x"))
    assert is_transient(TaskTimeout())
    assert not is_transient(ValueError())
    assert is_critical(ValueError())
    assert not is_critical(TaskError())


async def test_stamina_testing_mode_removes_delays(autojump_clock: trio.testing.MockClock) -> None:
    flaky = Flaky(2, TaskError("x"))
    with stamina.set_testing(True, attempts=3):
        async with TaskExecutor(retry=RetryPolicy.fixed(10)) as executor:
            assert await executor.run(flaky) == "ok"
    assert flaky.times == [0, 0, 0]


async def test_critical_error_cancels_the_batch(autojump_clock: trio.testing.MockClock) -> None:
    async def crash() -> None:
        await trio.sleep(1)
        raise RuntimeFault("boom")

    async with TaskExecutor(retry=NO_RETRY) as executor:
        with pytest.raises(RuntimeFault, match="boom"):
            await executor.run_batch([lambda: sleep_then(5, 1), crash, lambda: sleep_then(5, 3)])
        assert trio.current_time() == 1
        stats = executor.statistics()
    assert (stats.failed, stats.cancelled, stats.completed) == (1, 2, 0)


async def test_non_critical_failures_are_returned(autojump_clock: trio.testing.MockClock) -> None:
    async def fail() -> None:
        raise TaskError("meh")

    async with TaskExecutor(retry=NO_RETRY) as executor:
        results = await executor.run_batch([lambda: sleep_then(1, "a"), fail])
    assert [r.status for r in results] == [TaskStatus.COMPLETED, TaskStatus.FAILED]
    assert isinstance(results[1].error, TaskError)


async def test_cancel_handle(autojump_clock: trio.testing.MockClock) -> None:
    async with TaskExecutor(max_concurrency=1, retry=NO_RETRY) as executor:
        running = executor.submit_nowait(sleep_then, 10, "a")
        queued = executor.submit_nowait(sleep_then, 10, "b")
        await trio.sleep(1)
        running.cancel()
        queued.cancel()
        first, second = await running.wait(), await queued.wait()
        assert trio.current_time() == 1
    assert first.status is second.status is TaskStatus.CANCELLED
    assert second.attempts == 0
    with pytest.raises(TaskCancelled):
        await running.result()
    assert executor.statistics().queued == 0


async def test_caller_cancellation_cancels_run(autojump_clock: trio.testing.MockClock) -> None:
    async with TaskExecutor(retry=NO_RETRY) as executor:
        with trio.move_on_after(1):
            await executor.run(sleep_then, 10, "x")
        await trio.testing.wait_all_tasks_blocked()
        assert trio.current_time() == 1
        assert executor.statistics().cancelled == 1


@attrs.define
class Square:
    value: int

    async def execute(self) -> int:
        await trio.sleep(self.value)
        return self.value**2


async def test_async_task_protocol(autojump_clock: trio.testing.MockClock) -> None:
    tasks = [Square(2), Square(1)]
    assert all(isinstance(t, AsyncTask) for t in tasks)
    async with TaskExecutor() as executor:
        results = await executor.run_batch(tasks)
    assert [r.unwrap() for r in results] == [4, 1]


async def test_events_and_statistics(autojump_clock: trio.testing.MockClock) -> None:
    bus = EventBus()

    async def fail() -> None:
        raise TaskError("nope")

    async with TaskExecutor(events=bus, retry=NO_RETRY, name="exec") as executor:
        await executor.run_batch([lambda: sleep_then(2, "v"), fail])
        stats = executor.statistics()
    completed = bus.history(TaskCompleted)
    failed = bus.history(TaskFailed)
    assert [e.result for e in completed] == ["v"]
    assert completed[0].duration == 2
    assert completed[0].source == "exec"
    assert [(e.error_type, e.error) for e in failed] == [("TaskError", "nope")]
    assert (stats.submitted, stats.completed, stats.failed, stats.running) == (2, 1, 1, 0)
    assert stats.latency.count == 2
    assert stats.latency.max == 2


async def test_lifecycle_errors() -> None:
    executor = TaskExecutor()
    with pytest.raises(RuntimeError, match="not running"):
        executor.submit_nowait(sleep_then, 0, 0)
    async with executor:
        pass
    with pytest.raises(trio.ClosedResourceError):
        executor.submit_nowait(sleep_then, 0, 0)
    with pytest.raises(ValueError, match="max_concurrency"):
        TaskExecutor(max_concurrency=0)
    with pytest.raises(ValueError, match="max_attempts"):
        RetryPolicy(max_attempts=0)


async def test_exit_waits_for_submitted_tasks(autojump_clock: trio.testing.MockClock) -> None:
    async with TaskExecutor() as executor:
        handle = executor.submit_nowait(sleep_then, 3, "late")
    assert trio.current_time() == 3
    assert handle.outcome is not None
    assert handle.outcome.value == "late"


async def test_queue_is_fifo(autojump_clock: trio.testing.MockClock) -> None:
    started: dict[int, float] = {}

    async def job(i: int) -> None:
        started[i] = trio.current_time()
        await trio.sleep(1)

    async with TaskExecutor(max_concurrency=2, retry=NO_RETRY) as executor:
        for i in range(8):
            executor.submit_nowait(job, i)
        assert executor.statistics().queued == 6
    # Slots go to the oldest queued tasks: two per second, in submission order.
    assert started == {i: i // 2 for i in range(8)}
    assert trio.current_time() == 4
