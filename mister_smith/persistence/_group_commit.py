"""Group commit: many tasks' operations, one writer thread, one transaction per batch.

The writer thread is started with ``trio.to_thread.run_sync`` (under a limiter of one)
when the store opens and lives until it closes, so the blocking database never runs on
the event loop and never on two threads at once. A task calling
:meth:`GroupCommit.submit` puts its operation on a thread-safe queue and sleeps; the
writer takes whatever is queued (up to ``batch_max``), runs it as one transaction and
hands each caller its own outcome back on the Trio thread. The Trio side hands the
operations over once per scheduler tick (every operation submitted in that tick in one
queue put), so the writer is woken once per tick rather than once per operation.
Operations arriving while a transaction runs form the next batch, so one commit is
shared by everyone who arrived meanwhile, and the writer never waits for the event loop
between batches.

Cancellation: a caller cancelled while its operation is still queued withdraws it
(nothing is written, ``Cancelled`` is raised); once the writer has taken it, the caller
waits for the commit (one transaction at most) and gets its result, and the cancellation
is delivered at its next checkpoint. So a returned call has committed and a cancelled
one has not. Who wins between the two is decided by one atomic ``list.pop``.
"""

from __future__ import annotations

import collections
import queue
from collections.abc import Callable, Sequence
from typing import Any, Final, Generic, TypeVar

import outcome
import trio

from ..errors import StoreClosed

R = TypeVar("R")

Outcome = outcome.Value[Any] | outcome.Error


class Waiter(Generic[R]):
    """One queued operation, the task waiting for it, and its one-use claim.

    Whoever pops ``claim`` first owns the operation: the writer (it will run it) or the
    caller's abort (it is withdrawn). The JetStream store's batcher queues the same.
    """

    __slots__ = ("claim", "request", "task")

    def __init__(self, request: R, task: trio.lowlevel.Task) -> None:
        self.request = request
        self.task = task
        self.claim: list[None] = [None]

    def take(self) -> bool:
        """Claim the operation; ``False`` if the other side already did."""
        try:
            self.claim.pop()
        except IndexError:
            return False
        return True


_STOP: Final = object()
"""Put on the queue by :meth:`GroupCommit.close`; always the last item."""


class GroupCommit(Generic[R]):
    """Batches operations of type ``R`` for a blocking ``run_batch`` on one thread.

    Args:
        run_batch: Runs a batch in one transaction and returns one outcome per
            operation, in order. Blocking; called on the writer thread only.
        batch_max: Most operations per batch (>= 1).
        limiter: The limiter the writer thread holds for its whole life; share it
            with anything else that touches the same connection (opening, closing).
        name: Names the store in errors.
    """

    def __init__(
        self,
        run_batch: Callable[[Sequence[R]], list[Outcome]],
        *,
        batch_max: int,
        limiter: trio.CapacityLimiter,
        name: str,
    ) -> None:
        if batch_max < 1:
            raise ValueError(f"batch_max must be >= 1, got {batch_max!r}")
        self._run_batch = run_batch
        self._batch_max = batch_max
        self._limiter = limiter
        self._name = name
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._outbox: list[Waiter[R]] = []
        # Each written by one thread only: handed over (Trio), taken (writer).
        self._handed = 0
        self._taken = 0
        self._token: trio.lowlevel.TrioToken | None = None
        self._closing = False
        self._finished = trio.Event()

    @property
    def queued(self) -> int:
        """Operations waiting for the writer (withdrawn ones included until the writer
        skips them)."""
        return self._handed - self._taken + len(self._outbox)

    async def submit(self, request: R) -> Any:
        """Queue ``request`` and return its result once its batch has committed.

        Raises:
            StoreClosed: the store is closing or closed (nothing was written).
            Exception: the operation's own error (from its outcome).
        """
        if self._closing:
            await trio.lowlevel.checkpoint()
            raise StoreClosed(f"{self._name} is closed")
        waiter = Waiter(request, trio.lowlevel.current_task())
        outbox = self._outbox
        outbox.append(waiter)
        if len(outbox) == 1:
            # Hand the whole tick's operations over at once, after every task that runs
            # in this tick has queued its own: one queue put (and one wake-up of the
            # writer thread) per tick instead of per operation.
            token = self._token
            if token is None:
                token = self._token = trio.lowlevel.current_trio_token()
            token.run_sync_soon(self._flush)

        def abort(_: Any) -> trio.lowlevel.Abort:
            return trio.lowlevel.Abort.SUCCEEDED if waiter.take() else trio.lowlevel.Abort.FAILED

        return await trio.lowlevel.wait_task_rescheduled(abort)

    def close(self) -> None:
        """Refuse new operations; the writer commits what is queued, then stops."""
        if not self._closing:
            self._closing = True
            self._flush()
            self._queue.put(_STOP)

    def _flush(self) -> None:
        """Hand the queued operations to the writer thread (on the Trio thread)."""
        if self._outbox:
            handed, self._outbox = self._outbox, []
            self._handed += len(handed)
            self._queue.put(handed)

    async def wait_finished(self) -> None:
        """Wait until the writer thread has stopped (after :meth:`close`)."""
        await self._finished.wait()

    async def run(self) -> None:
        """Run the writer thread until :meth:`close` (or cancellation, which closes)."""
        token = trio.lowlevel.current_trio_token()
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._close_when_cancelled)
                try:
                    await trio.to_thread.run_sync(self._write, token, limiter=self._limiter)
                finally:
                    nursery.cancel_scope.cancel()
        finally:
            # Left over only if the thread never ran (cancelled first) or broke.
            self._closing = True
            self._refuse_queued()
            self._finished.set()

    async def _close_when_cancelled(self) -> None:
        try:
            await trio.sleep_forever()
        finally:
            self.close()

    # -- the writer thread ------------------------------------------------------------

    def _write(self, token: trio.lowlevel.TrioToken) -> None:
        get, get_nowait = self._queue.get, self._queue.get_nowait
        batch_max = self._batch_max
        carried: collections.deque[Waiter[R]] = collections.deque()
        stopping = False
        while True:
            if not carried and not stopping:
                item = get()
                if item is _STOP:
                    break
                carried.extend(item)
            while not stopping and len(carried) < batch_max:
                try:
                    item = get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    stopping = True
                else:
                    carried.extend(item)
            batch: list[Waiter[R]] = []
            while carried and len(batch) < batch_max:
                waiter = carried.popleft()
                self._taken += 1
                if waiter.take():
                    batch.append(waiter)
            if not batch:
                if stopping and not carried:
                    break
                continue
            try:
                outcomes = self._run_batch([waiter.request for waiter in batch])
            except BaseException as exc:  # run_batch reports errors as outcomes: a bug
                batch.extend(waiter for waiter in carried if waiter.take())
                token.run_sync_soon(self._fail, batch, exc)
                raise
            token.run_sync_soon(self._deliver, batch, outcomes)
            if stopping and not carried:
                break

    # -- back on the Trio thread ------------------------------------------------------

    @staticmethod
    def _deliver(batch: list[Waiter[R]], outcomes: list[Outcome]) -> None:
        for waiter, result in zip(batch, outcomes, strict=True):
            trio.lowlevel.reschedule(waiter.task, result)

    def _fail(self, batch: list[Waiter[R]], exc: BaseException) -> None:
        for waiter in batch:
            error = StoreClosed(f"{self._name} stopped before this operation was written")
            error.__cause__ = exc
            trio.lowlevel.reschedule(waiter.task, outcome.Error(error))

    def _refuse_queued(self) -> None:
        self._flush()
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if item is _STOP:
                continue
            for waiter in item:
                if waiter.take():
                    error = StoreClosed(f"{self._name} closed before this operation was written")
                    trio.lowlevel.reschedule(waiter.task, outcome.Error(error))
