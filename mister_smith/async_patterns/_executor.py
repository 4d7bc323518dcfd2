"""``TaskExecutor``: bounded concurrency, a bounded queue, per-attempt timeouts, retries."""

from __future__ import annotations

import collections
import enum
from collections.abc import Awaitable, Callable, Iterable
from types import TracebackType
from typing import Any, Generic, Protocol, Self, TypeVar, cast, runtime_checkable

import attrs
import trio

from ..errors import TaskError, TaskQueueFull, TaskTimeout
from ..events import EventBus, TaskCompleted, TaskFailed
from ..types import TaskId
from ._histogram import HistogramSnapshot, LatencyHistogram
from ._retry import RetryPolicy, is_critical

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)


@runtime_checkable
class AsyncTask(Protocol[T_co]):
    """A unit of async work: the design doc's ``AsyncTask``.

    Anything with an ``async def execute()`` qualifies; the executor adds the timeout,
    the retries and the bookkeeping, so ``execute`` only does the work.
    """

    async def execute(self) -> T_co:
        """Do the work once and return its result (raise to fail the attempt)."""
        ...


class TaskCancelled(TaskError):
    """The task was cancelled (by :meth:`TaskHandle.cancel` or its batch) before finishing."""


class TaskStatus(enum.Enum):
    """How a task ended."""

    COMPLETED = "completed"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    CANCELLED = "cancelled"


@attrs.frozen
class TaskResult(Generic[T]):
    """The outcome of one task.

    Attributes:
        task_id: The task's id.
        name: The task's name (for logs and events).
        status: How it ended.
        value: Its result when ``status`` is ``COMPLETED``, else ``None``.
        error: The last error when it failed, timed out or was cancelled.
        attempts: Attempts made (0 if it never started).
        duration: Trio-clock seconds from the first attempt's start to the end.
    """

    task_id: TaskId
    name: str
    status: TaskStatus
    value: T | None = None
    error: BaseException | None = None
    attempts: int = 0
    duration: float = 0.0

    @property
    def ok(self) -> bool:
        """Whether the task completed."""
        return self.status is TaskStatus.COMPLETED

    def unwrap(self) -> T:
        """The value, or raise the task's error (:class:`TaskCancelled` if cancelled)."""
        if self.status is TaskStatus.COMPLETED:
            return cast(T, self.value)
        assert self.error is not None
        raise self.error


class TaskHandle(Generic[T]):
    """A submitted task: wait for it, read its result, or cancel it.

    Created by :meth:`TaskExecutor.submit` / :meth:`TaskExecutor.submit_nowait`.
    """

    def __init__(self, task_id: TaskId, name: str) -> None:
        self.task_id = task_id
        self.name = name
        self._scope = trio.CancelScope()
        self._finished = trio.Event()
        self._result: TaskResult[T] | None = None
        self._callbacks: list[Callable[[TaskHandle[T]], None]] = []
        # Set by the executor while the task waits in its queue.
        self._cancel_queued: Callable[[], None] | None = None

    def __repr__(self) -> str:
        state = self._result.status.value if self._result else "pending"
        return f"<TaskHandle {self.name} {self.task_id} {state}>"

    @property
    def done(self) -> bool:
        """Whether the task has ended (in any way)."""
        return self._result is not None

    @property
    def outcome(self) -> TaskResult[T] | None:
        """The task's result once it has ended, else ``None``."""
        return self._result

    def cancel(self) -> None:
        """Cancel the task (queued or running); it ends as ``CANCELLED``. Idempotent.

        A queued task ends at once; a running one at its next checkpoint.
        """
        self._scope.cancel()
        if self._cancel_queued is not None:
            self._cancel_queued()

    async def wait(self) -> TaskResult[T]:
        """Wait until the task ends and return its :class:`TaskResult`."""
        await self._finished.wait()
        assert self._result is not None
        return self._result

    async def result(self) -> T:
        """Wait until the task ends; return its value or raise its error."""
        return (await self.wait()).unwrap()

    def _finish(self, result: TaskResult[T]) -> None:
        if self._result is not None:
            return
        self._result = result
        self._finished.set()
        for callback in self._callbacks:
            callback(self)

    def _on_done(self, callback: Callable[[TaskHandle[T]], None]) -> None:
        if self._result is not None:
            callback(self)
        else:
            self._callbacks.append(callback)


@attrs.frozen
class ExecutorStatistics:
    """A snapshot of a :class:`TaskExecutor`.

    Attributes:
        submitted: Tasks accepted since creation.
        queued: Tasks waiting for a concurrency slot now.
        running: Tasks running now.
        completed: Tasks that returned a value.
        failed: Tasks that ended with an error (timeouts excluded).
        timed_out: Tasks whose last attempt timed out.
        cancelled: Tasks cancelled before they ended.
        rejected: Submissions refused with :class:`~mister_smith.TaskQueueFull`.
        retries: Attempts beyond the first, over all tasks.
        max_concurrency: The concurrency limit.
        queue_size: The queue limit.
        latency: Durations of ended tasks (retries and their delays included).
    """

    submitted: int
    queued: int
    running: int
    completed: int
    failed: int
    timed_out: int
    cancelled: int
    rejected: int
    retries: int
    max_concurrency: int
    queue_size: int
    latency: HistogramSnapshot


@attrs.frozen
class _Job(Generic[T]):
    handle: TaskHandle[T]
    fn: Callable[..., Awaitable[T]]
    args: tuple[object, ...]
    timeout: float
    retry: RetryPolicy


TaskLike = AsyncTask[T] | Callable[[], Awaitable[T]]
"""What :meth:`TaskExecutor.run_batch` accepts: an :class:`AsyncTask` or a zero-argument
async callable."""


class TaskExecutor:
    """Runs async tasks with bounded concurrency, a bounded queue, timeouts and retries.

    Use it as ``async with TaskExecutor(...) as executor:``; it owns a nursery, and
    leaving the block waits for every submitted task (or cancels them all if the block
    raised). Tasks beyond ``max_concurrency`` wait in a FIFO queue of at most
    ``queue_size`` tasks: :meth:`submit_nowait` refuses with
    :class:`~mister_smith.TaskQueueFull` when it is full, :meth:`submit` waits for room.

    Each attempt runs under its own deadline of ``timeout`` seconds (expiry raises
    :class:`~mister_smith.TaskTimeout`, which is transient, hence retried by the default
    policy). Retries follow the task's :class:`RetryPolicy`. Ended tasks are announced
    as ``TaskCompleted`` / ``TaskFailed`` on ``events`` when given.

    Defaults follow the reference task settings: 100 at once, a queue of 1,000, 30 s
    per attempt, and the default :class:`RetryPolicy` (3 attempts, 100 ms x2.0).

    Args:
        max_concurrency: Tasks running at once (>= 1).
        queue_size: Tasks waiting for a slot at most (>= 0).
        timeout: Seconds per attempt (``math.inf`` for none).
        retry: Default retry policy of submitted tasks.
        cancel_batch_on: In :meth:`run_batch`, an error for which this returns true
            cancels the rest of the batch (default: ``CRITICAL`` severity).
        events: Where task events go (optional).
        name: Source name of the events.
    """

    def __init__(
        self,
        *,
        max_concurrency: int = 100,
        queue_size: int = 1_000,
        timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        cancel_batch_on: Callable[[BaseException], bool] = is_critical,
        events: EventBus | None = None,
        name: str = "task_executor",
    ) -> None:
        if max_concurrency < 1:
            raise ValueError(f"max_concurrency must be >= 1, got {max_concurrency!r}")
        if queue_size < 0:
            raise ValueError(f"queue_size must be >= 0, got {queue_size!r}")
        if not timeout > 0:
            raise ValueError(f"timeout must be > 0 seconds, got {timeout!r}")
        self._max_concurrency = max_concurrency
        self._queue_size = queue_size
        self._timeout = timeout
        self._retry = RetryPolicy() if retry is None else retry
        self._cancel_batch_on = cancel_batch_on
        self._events = events
        self.name = name
        self._limiter = trio.CapacityLimiter(max_concurrency)
        self._nursery: trio.Nursery | None = None
        self._nursery_manager: trio.Nursery | None = None
        self._closed = False
        self._space = trio.lowlevel.ParkingLot()
        self._pending: collections.deque[_Job[Any]] = collections.deque()
        self._latency = LatencyHistogram()
        self._submitted = 0
        self._queued = 0
        self._running = 0
        self._completed = 0
        self._failed = 0
        self._timed_out = 0
        self._cancelled = 0
        self._rejected = 0
        self._retries = 0
        self._cm: Any = None

    # -- lifecycle ----------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        if self._cm is not None:
            raise RuntimeError("a TaskExecutor can be entered only once")
        self._cm = trio.open_nursery()
        self._nursery = await self._cm.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        self._closed = True
        self._space.unpark_all()
        try:
            return cast(bool | None, await self._cm.__aexit__(exc_type, exc, tb))
        finally:
            self._nursery = None
            while self._pending:
                job = self._pending.popleft()
                if not job.handle.done:
                    self._queued -= 1
                    self._end_unstarted(job.handle, "with its executor")

    # -- submitting ---------------------------------------------------------------------

    def submit_nowait(
        self,
        fn: Callable[..., Awaitable[T]],
        *args: object,
        timeout: float | None = None,
        retry: RetryPolicy | None = None,
        name: str | None = None,
        task_id: TaskId | None = None,
    ) -> TaskHandle[T]:
        """Queue ``fn(*args)`` and return its handle at once.

        Args:
            fn: The async function to run (an :class:`AsyncTask`'s ``execute`` works).
            args: Its positional arguments.
            timeout: Seconds per attempt (default: the executor's).
            retry: Retry policy (default: the executor's).
            name: A name for events and reprs (default: the function's name).
            task_id: The task's id (default: a fresh one).

        Raises:
            TaskQueueFull: ``queue_size`` tasks are already waiting.
            trio.ClosedResourceError: the executor is shutting down.
            RuntimeError: the executor is not running (``async with`` it first).
        """
        self._open_nursery()
        has_slot = self._limiter.available_tokens >= 1 and not self._pending
        if not has_slot and self._queued >= self._queue_size:
            self._rejected += 1
            raise TaskQueueFull(
                f"{self.name}: queue full ({self._queue_size} tasks waiting, "
                f"{self._max_concurrency} running)"
            )
        handle: TaskHandle[T] = TaskHandle(
            TaskId.new() if task_id is None else task_id,
            name or getattr(fn, "__qualname__", None) or repr(fn),
        )
        job = _Job(
            handle,
            fn,
            args,
            self._timeout if timeout is None else timeout,
            self._retry if retry is None else retry,
        )
        self._submitted += 1
        if has_slot:
            self._start(job)
        else:
            self._queued += 1
            self._pending.append(job)
            handle._cancel_queued = lambda: self._cancel_queued(job)
        return handle

    async def submit(
        self,
        fn: Callable[..., Awaitable[T]],
        *args: object,
        timeout: float | None = None,
        retry: RetryPolicy | None = None,
        name: str | None = None,
        task_id: TaskId | None = None,
    ) -> TaskHandle[T]:
        """Like :meth:`submit_nowait`, but wait for room in the queue instead of refusing."""
        await trio.lowlevel.checkpoint()
        while self._queue_full():
            self._open_nursery()
            await self._space.park()
        return self.submit_nowait(
            fn, *args, timeout=timeout, retry=retry, name=name, task_id=task_id
        )

    async def run(
        self,
        fn: Callable[..., Awaitable[T]],
        *args: object,
        timeout: float | None = None,
        retry: RetryPolicy | None = None,
        name: str | None = None,
    ) -> T:
        """Submit ``fn(*args)``, wait for it and return its value (or raise its error).

        If the caller is cancelled while waiting, the task is cancelled too.
        """
        handle = await self.submit(fn, *args, timeout=timeout, retry=retry, name=name)
        try:
            return await handle.result()
        except BaseException:
            handle.cancel()
            raise

    async def run_batch(
        self,
        tasks: Iterable[TaskLike[T]],
        *,
        timeout: float | None = None,
        retry: RetryPolicy | None = None,
    ) -> list[TaskResult[T]]:
        """Run ``tasks`` concurrently (within the limits) and return results in order.

        Failures are returned as results. An error for which ``cancel_batch_on`` is true
        (a ``CRITICAL`` one by default) cancels the rest of the batch and is then
        raised; cancelling the caller cancels the whole batch.
        """
        handles: list[TaskHandle[T]] = []
        fatal: list[BaseException] = []
        pending = 0
        all_done = trio.Event()
        submitting = True

        def on_done(handle: TaskHandle[T]) -> None:
            nonlocal pending
            pending -= 1
            if pending == 0 and not submitting:
                all_done.set()
            result = handle.outcome
            if (
                result is not None
                and result.status in (TaskStatus.FAILED, TaskStatus.TIMED_OUT)
                and result.error is not None
                and self._cancel_batch_on(result.error)
            ):
                if not fatal:
                    for other in handles:
                        other.cancel()
                fatal.append(result.error)

        try:
            for task in tasks:
                if fatal:
                    break
                # Not isinstance(task, AsyncTask): protocol checks are slow per task.
                execute = getattr(task, "execute", None)
                fn: Callable[[], Awaitable[T]] = (
                    execute if callable(execute) else cast(Callable[[], Awaitable[T]], task)
                )
                if self._queue_full():
                    handle = await self.submit(fn, timeout=timeout, retry=retry)
                else:
                    handle = self.submit_nowait(fn, timeout=timeout, retry=retry)
                handles.append(handle)
                pending += 1
                handle._on_done(on_done)
                if fatal:
                    handle.cancel()
            submitting = False
            if pending == 0:
                all_done.set()
            # One wait for the whole batch (this is also the call's checkpoint).
            await all_done.wait()
        except BaseException:
            for handle in handles:
                handle.cancel()
            raise
        if fatal:
            raise fatal[0]
        return [result for handle in handles if (result := handle.outcome) is not None]

    # -- running ------------------------------------------------------------------------

    def _open_nursery(self) -> trio.Nursery:
        if self._closed:
            raise trio.ClosedResourceError(f"{self.name} is shutting down")
        if self._nursery is None:
            raise RuntimeError(f"{self.name} is not running: use `async with` on it first")
        return self._nursery

    def _queue_full(self) -> bool:
        has_slot = self._limiter.available_tokens >= 1 and not self._pending
        return not has_slot and self._queued >= self._queue_size

    def _start(self, job: _Job[Any]) -> None:
        assert self._nursery is not None
        self._limiter.acquire_on_behalf_of_nowait(job.handle)
        job.handle._cancel_queued = None
        self._nursery.start_soon(self._run_task, job, name=f"{self.name}:{job.handle.name}")

    def _start_next(self) -> None:
        """Hand free slots to the oldest queued tasks (strict FIFO)."""
        while self._pending and self._limiter.available_tokens >= 1:
            job = self._pending.popleft()
            if job.handle.done:
                continue  # cancelled while queued
            self._queued -= 1
            self._start(job)
            self._space.unpark()

    def _cancel_queued(self, job: _Job[Any]) -> None:
        if job.handle.done or job.handle._cancel_queued is None:
            return
        job.handle._cancel_queued = None
        self._queued -= 1
        self._space.unpark()
        self._end_unstarted(job.handle, "while queued")

    def _end_unstarted(self, handle: TaskHandle[Any], when: str) -> None:
        self._end(
            handle,
            TaskStatus.CANCELLED,
            trio.current_time(),
            0,
            error=TaskCancelled(f"task {handle.name} was cancelled {when}"),
        )

    async def _run_task(self, job: _Job[T]) -> None:
        handle = job.handle
        attempts = 0
        started_at = trio.current_time()
        self._running += 1
        try:
            with handle._scope:
                if job.retry.max_attempts == 1:
                    # Nothing to retry: skip the retry machinery.
                    attempts = 1
                    value = await self._attempt(job, attempts)
                else:
                    async for attempt in job.retry.attempts():
                        with attempt:
                            attempts = attempt.num
                            if attempts > 1:
                                self._retries += 1
                            value = await self._attempt(job, attempts)
                self._end(handle, TaskStatus.COMPLETED, started_at, attempts, value=value)
            if handle._scope.cancelled_caught:
                self._end(
                    handle,
                    TaskStatus.CANCELLED,
                    started_at,
                    attempts,
                    error=TaskCancelled(f"task {handle.name} was cancelled"),
                )
        except TaskTimeout as error:
            self._end(handle, TaskStatus.TIMED_OUT, started_at, attempts, error=error)
        except Exception as error:
            self._end(handle, TaskStatus.FAILED, started_at, attempts, error=error)
        finally:
            self._running -= 1
            self._limiter.release_on_behalf_of(handle)
            if not handle.done:
                # The executor itself is being cancelled.
                self._end(
                    handle,
                    TaskStatus.CANCELLED,
                    started_at,
                    attempts,
                    error=TaskCancelled(f"task {handle.name} was cancelled with its executor"),
                )
            self._start_next()
            self._space.unpark()

    @staticmethod
    async def _attempt(job: _Job[T], attempt: int) -> T:
        # Reaching the raise means our own deadline (not an outer one) cancelled it.
        with trio.move_on_after(job.timeout):
            return await job.fn(*job.args)
        raise TaskTimeout(
            f"task {job.handle.name} timed out after {job.timeout} s (attempt {attempt})"
        )

    def _end(
        self,
        handle: TaskHandle[T],
        status: TaskStatus,
        started_at: float,
        attempts: int,
        *,
        value: T | None = None,
        error: BaseException | None = None,
    ) -> None:
        duration = trio.current_time() - started_at
        if status is TaskStatus.COMPLETED:
            self._completed += 1
        elif status is TaskStatus.TIMED_OUT:
            self._timed_out += 1
        elif status is TaskStatus.FAILED:
            self._failed += 1
        else:
            self._cancelled += 1
        if status is not TaskStatus.CANCELLED or attempts:
            self._latency.record(duration)
        handle._finish(
            TaskResult(handle.task_id, handle.name, status, value, error, attempts, duration)
        )
        if self._events is not None:
            if status is TaskStatus.COMPLETED:
                self._events.emit(
                    TaskCompleted(
                        source=self.name, task_id=handle.task_id, result=value, duration=duration
                    )
                )
            else:
                assert error is not None
                self._events.emit(
                    TaskFailed(
                        source=self.name,
                        task_id=handle.task_id,
                        error_type=type(error).__name__,
                        error=str(error),
                    )
                )

    def statistics(self) -> ExecutorStatistics:
        """Counters and the latency histogram (see :class:`ExecutorStatistics`)."""
        return ExecutorStatistics(
            submitted=self._submitted,
            queued=self._queued,
            running=self._running,
            completed=self._completed,
            failed=self._failed,
            timed_out=self._timed_out,
            cancelled=self._cancelled,
            rejected=self._rejected,
            retries=self._retries,
            max_concurrency=self._max_concurrency,
            queue_size=self._queue_size,
            latency=self._latency.snapshot(),
        )
