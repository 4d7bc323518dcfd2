"""GroupCommit: batching, cancellation and closing, with a writer we hold at will.

The fake ``run_batch`` runs on the real writer thread and blocks on a gate until the
test opens it, so each test knows exactly which operations are committing, which are
queued and which arrived later.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import outcome
import pytest
import trio

from mister_smith.errors import StoreClosed
from mister_smith.persistence._group_commit import GroupCommit, Outcome


class FakeWriter:
    """Records batches; each batch waits for the gate to be opened once for it."""

    def __init__(self, *, fail: bool = False) -> None:
        self.batches: list[list[str]] = []
        self.entered = threading.Semaphore(0)
        self.gates: list[threading.Event] = []
        self.hold = True
        self.fail = fail

    def run_batch(self, requests: Sequence[str]) -> list[Outcome]:
        gate = threading.Event()
        self.gates.append(gate)
        self.entered.release()
        if self.hold:
            gate.wait(10)
        if self.fail:
            raise RuntimeError("writer bug")
        self.batches.append(list(requests))
        return [outcome.Value(f"done {request}") for request in requests]

    async def wait_entered(self) -> None:
        """Wait until the writer is inside a batch (its thread, not ours, blocks)."""
        acquired = await trio.to_thread.run_sync(self.entered.acquire, True, 10)
        assert acquired

    def release_all(self) -> None:
        self.hold = False
        for gate in self.gates:
            gate.set()


@asynccontextmanager
async def running(writer: FakeWriter, *, batch_max: int = 100) -> AsyncIterator[GroupCommit[str]]:
    commits: GroupCommit[str] = GroupCommit(
        writer.run_batch, batch_max=batch_max, limiter=trio.CapacityLimiter(1), name="test store"
    )
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(commits.run)
            yield commits
            writer.release_all()
            commits.close()
    finally:
        writer.release_all()


async def wait_queued(commits: GroupCommit[str], count: int) -> None:
    while commits.queued < count:
        await trio.sleep(0.001)


async def test_operations_arriving_during_a_commit_form_the_next_batches() -> None:
    writer = FakeWriter()
    results: dict[str, str] = {}

    async def submit(commits: GroupCommit[str], request: str) -> None:
        results[request] = await commits.submit(request)

    async with running(writer, batch_max=4) as commits, trio.open_nursery() as nursery:
        nursery.start_soon(submit, commits, "first")
        await writer.wait_entered()  # "first" is committing alone
        for n in range(10):
            nursery.start_soon(submit, commits, f"later {n}")
        await wait_queued(commits, 10)
        writer.release_all()
    assert [len(batch) for batch in writer.batches] == [1, 4, 4, 2]
    later = [request for batch in writer.batches[1:] for request in batch]
    assert sorted(later) == sorted(f"later {n}" for n in range(10))
    assert results == {request: f"done {request}" for request in results}
    assert len(results) == 11


async def test_a_caller_cancelled_while_queued_withdraws_its_operation() -> None:
    writer = FakeWriter()
    async with running(writer) as commits, trio.open_nursery() as nursery:
        nursery.start_soon(commits.submit, "committing")
        await writer.wait_entered()
        outcome_of_queued: list[str] = []

        async def queued() -> None:
            with trio.CancelScope() as scope:
                scope_holder.append(scope)
                await commits.submit("withdrawn")
                outcome_of_queued.append("returned")
            outcome_of_queued.append("cancelled" if scope.cancelled_caught else "?")

        scope_holder: list[trio.CancelScope] = []
        nursery.start_soon(queued)
        await wait_queued(commits, 1)
        scope_holder[0].cancel()
        await trio.sleep(0.01)
        assert outcome_of_queued == ["cancelled"]
        nursery.start_soon(commits.submit, "after")
        await wait_queued(commits, 2)
        writer.release_all()
    assert writer.batches == [["committing"], ["after"]]  # never saw "withdrawn"


async def test_a_caller_cancelled_while_committing_gets_its_result_then_the_cancel() -> None:
    writer = FakeWriter()
    seen: list[object] = []
    scope = trio.CancelScope()

    async def cancel_when_committing() -> None:
        await writer.wait_entered()
        scope.cancel()
        await trio.sleep(0.01)  # the cancel is pending while it commits
        writer.release_all()

    async with running(writer) as commits, trio.open_nursery() as nursery:
        nursery.start_soon(cancel_when_committing)
        with scope:
            seen.append(await commits.submit("in flight"))
            await trio.lowlevel.checkpoint()  # the cancellation lands here
            seen.append("not reached")
        assert scope.cancelled_caught
    assert seen == ["done in flight"]
    assert writer.batches == [["in flight"]]


async def test_close_commits_what_is_queued_then_refuses() -> None:
    writer = FakeWriter()
    results: list[str] = []
    async with running(writer) as commits, trio.open_nursery() as nursery:

        async def submit(request: str) -> None:
            results.append(await commits.submit(request))

        nursery.start_soon(submit, "a")
        await writer.wait_entered()
        nursery.start_soon(submit, "b")
        nursery.start_soon(submit, "c")
        await wait_queued(commits, 2)
        commits.close()
        with pytest.raises(StoreClosed, match="test store is closed"):
            await commits.submit("too late")
        writer.release_all()
        await commits.wait_finished()
    assert sorted(results) == ["done a", "done b", "done c"]


async def test_cancelling_the_owner_still_commits_what_was_queued() -> None:
    writer = FakeWriter()
    results: list[str] = []

    async def submit(commits: GroupCommit[str], request: str) -> None:
        results.append(await commits.submit(request))

    async with trio.open_nursery() as outer:
        commits: GroupCommit[str] = GroupCommit(
            writer.run_batch, batch_max=10, limiter=trio.CapacityLimiter(1), name="s"
        )
        with trio.CancelScope() as owner:
            async with trio.open_nursery() as store_nursery:
                store_nursery.start_soon(commits.run)
                outer.start_soon(submit, commits, "a")  # callers outside the owner
                await writer.wait_entered()
                outer.start_soon(submit, commits, "b")
                await wait_queued(commits, 1)
                owner.cancel()
                writer.release_all()
        assert commits.queued == 0
    assert sorted(results) == ["done a", "done b"]
    with pytest.raises(StoreClosed):
        await commits.submit("c")


async def test_a_writer_bug_fails_its_batch_and_surfaces() -> None:
    writer = FakeWriter(fail=True)
    writer.hold = False
    errors: list[BaseException] = []

    async def submit(commits: GroupCommit[str]) -> None:
        try:
            await commits.submit("x")
        except StoreClosed as exc:
            errors.append(exc)

    with pytest.RaisesGroup(
        pytest.RaisesExc(RuntimeError, match="writer bug"), flatten_subgroups=True
    ):
        async with trio.open_nursery() as nursery:
            commits: GroupCommit[str] = GroupCommit(
                writer.run_batch, batch_max=10, limiter=trio.CapacityLimiter(1), name="s"
            )
            nursery.start_soon(commits.run)
            nursery.start_soon(submit, commits)
    assert len(errors) == 1
    assert isinstance(errors[0].__cause__, RuntimeError)
