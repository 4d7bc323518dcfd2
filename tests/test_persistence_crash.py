"""Crash tests: a process writing to the store is killed with SIGKILL at a point
hypothesis draws; the store is then reopened and checked.

What must hold after ``kill -9``, wherever it lands (often in the middle of a commit):

* every ``append`` that returned is pending exactly once, unless its ``ack`` also
  returned (then it is not pending); nothing appears twice; an append in flight at the
  kill is there at most once;
* the same message appended again after the restart (a sender retrying) is recognised
  as a duplicate: exactly once in effect;
* the checkpoint is whole (its checksum matches) and at least as new as the last write
  that returned;
* the journal holds every entry whose append returned, in order, without gaps;
* the file passes ``PRAGMA integrity_check`` and opens again (the lock died with the
  process).

To keep each example fast, one helper process (this file run as a script) imports the
store once and forks a fresh child per example; the test kills that child. The child
reports each operation on stdout only after it returned.
"""

from __future__ import annotations

import collections
import hashlib
import itertools
import json
import os
import select
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio
from hypothesis import given, settings
from hypothesis import strategies as st

from mister_smith.config import PersistenceSettings
from mister_smith.persistence import Store, open_sqlite_store

ROOT = Path(__file__).resolve().parent.parent
LANES = 8
MAILBOXES = ("inbox", "other")
READ_TIMEOUT = 20.0


# -- the child's workload (runs in the forked process) -----------------------------------


def report(line: str) -> None:
    os.write(1, (line + "\n").encode())


def checkpoint_bytes(n: int, heavy: bool) -> bytes:
    body = json.dumps({"n": n, "pad": "x" * (1 << 18 if heavy else 100)}).encode()
    return hashlib.sha256(body).hexdigest().encode() + b"\n" + body


def checkpoint_number(data: bytes) -> int:
    digest, body = data.split(b"\n", 1)
    assert hashlib.sha256(body).hexdigest().encode() == digest, "torn checkpoint"
    number: int = json.loads(body)["n"]
    return number


async def workload(path: str, synchronous: str, heavy: bool, run: int) -> None:
    store_settings = PersistenceSettings(path=path, synchronous=synchronous, batch_max=64)
    async with open_sqlite_store(store_settings) as store:

        async def appender(lane: int) -> None:
            for i in itertools.count():
                mailbox = MAILBOXES[i % 4 == 0]
                message_id = f"{run}-{lane}-{i}"
                payload = message_id.encode() * (1000 if heavy else 1)
                appended = await store.append(mailbox, payload, message_id=message_id)
                report(f"A {mailbox} {message_id} {appended.seq}")
                if i % 3 == 0:
                    await store.ack(mailbox, appended.seq)
                    report(f"K {mailbox} {message_id}")

        async def checkpointer() -> None:
            for n in itertools.count(1):
                await store.put_checkpoint("agent", checkpoint_bytes(n, heavy))
                report(f"C {n}")

        async def journaler() -> None:
            for n in itertools.count(1):
                await store.journal_append("audit", [f"{run}:{n}".encode()])
                report(f"J {n}")

        async with trio.open_nursery() as nursery:
            for lane in range(LANES):
                nursery.start_soon(appender, lane)
            nursery.start_soon(checkpointer)
            nursery.start_soon(journaler)


def zygote() -> None:
    """Read one JSON command per line; fork a child running the workload for each and
    report ``pid N`` then, once it died, ``exit STATUS``."""
    for line in sys.stdin:
        command = json.loads(line)
        pid = os.fork()
        if pid == 0:  # the child: no Trio ran in the zygote, so forking is safe
            status = 0
            try:
                trio.run(
                    workload,
                    command["path"],
                    command["synchronous"],
                    command["heavy"],
                    command.get("run", 0),
                )
            except BaseException:
                status = 1
            finally:
                os._exit(status)
        report(f"pid {pid}")
        _, status = os.waitpid(pid, 0)
        report(f"exit {status}")


# -- the parent's side -------------------------------------------------------------------


class Lines:
    """Line reader over a pipe with a deadline (a test must fail, not hang)."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._buffer = b""

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        deadline = time.monotonic() + READ_TIMEOUT
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            ready, _, _ = select.select([self._fd], [], [], max(remaining, 0))
            if not ready:
                raise AssertionError("the crash-test helper went silent")
            chunk = os.read(self._fd, 65536)
            if not chunk:
                raise AssertionError("the crash-test helper exited")
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return line.decode()


class Zygote:
    def __init__(self) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.process = subprocess.Popen(
            [sys.executable, __file__, "zygote"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=ROOT,
            env=env,
            bufsize=0,
        )
        assert self.process.stdout is not None
        self.lines = Lines(self.process.stdout.fileno())

    def run_and_kill(
        self, path: Path, *, kill_after: int, delay: float, **command: object
    ) -> list[str]:
        """Start the workload on ``path``; SIGKILL it after ``kill_after`` reports and
        ``delay`` seconds; the reports it made."""
        assert self.process.stdin is not None
        self.process.stdin.write((json.dumps({"path": str(path), **command}) + "\n").encode())
        first = next(self.lines)
        assert first.startswith("pid "), first
        pid = int(first.split()[1])
        reports: list[str] = []
        try:
            for line in self.lines:
                if line.startswith("exit "):
                    raise AssertionError(f"the workload ended on its own ({line}): {reports[-3:]}")
                reports.append(line)
                if len(reports) >= kill_after:
                    break
            time.sleep(delay)
        finally:
            os.kill(pid, signal.SIGKILL)
        for line in self.lines:  # what it reported before it died counts too
            if line.startswith("exit "):
                assert os.WIFSIGNALED(int(line.split()[1]))
                return reports
            reports.append(line)
        raise AssertionError("unreachable")

    def close(self) -> None:
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self.process.stdin.close()
        self.process.wait(timeout=10)
        self.process.stdout.close()


@pytest.fixture(scope="module")
def zygote_process() -> Iterator[Zygote]:
    helper = Zygote()
    try:
        yield helper
    finally:
        helper.close()


async def read_all_pending(store: Store, mailbox: str) -> list[tuple[str | None, int]]:
    found: list[tuple[str | None, int]] = []
    after = 0
    while batch := await store.pending(mailbox, after=after, limit=5000):
        found += [(message.message_id, message.seq) for message in batch]
        after = batch[-1].seq
    return found


async def verify(path: Path, reports: list[str], run: int = 0) -> dict[str, int]:
    appended: dict[tuple[str, str], int] = {}
    acked: set[tuple[str, str]] = set()
    last_of_lane: dict[str, tuple[str, str]] = {}
    last_checkpoint = last_journal = 0
    for line in reports:
        kind, *fields = line.split()
        if kind == "A":
            key = (fields[0], fields[1])
            appended[key] = int(fields[2])
            last_of_lane[fields[1].rsplit("-", 1)[0]] = key
        elif kind == "K":
            acked.add((fields[0], fields[1]))
        elif kind == "C":
            last_checkpoint = int(fields[0])
        else:
            last_journal = int(fields[0])
    # A lane's last append may have had its ack in flight at the kill: either is right.
    ack_in_flight = {
        key
        for key in last_of_lane.values()
        if int(key[1].rsplit("-", 1)[1]) % 3 == 0 and key not in acked
    }

    async with open_sqlite_store(PersistenceSettings(path=str(path))) as store:
        listed = [
            ((mailbox, message_id), seq)
            for mailbox in MAILBOXES
            for message_id, seq in await read_all_pending(store, mailbox)
        ]
        pending = dict(listed)
        counts = collections.Counter(key for key, _ in listed)
        assert all(count == 1 for count in counts.values()), "a message is there twice"
        for key, seq in appended.items():
            if key in acked:
                assert key not in pending, f"{key} was acked but is pending again"
            elif key in ack_in_flight:
                assert pending.get(key, seq) == seq
            else:
                assert pending.get(key) == seq, f"{key} returned from append but is lost"
        for _mailbox, message_id in pending:
            _, lane, index = map(int, str(message_id).split("-"))
            assert 0 <= lane < LANES
            assert index >= 0

        checkpoint = await store.get_checkpoint("agent")
        if checkpoint is not None:
            assert checkpoint_number(checkpoint.data) >= last_checkpoint
        else:
            assert last_checkpoint == 0

        entries = [
            entry.data.decode() for entry in await store.journal_replay("audit", limit=10_000)
        ]
        journal = [int(text.split(":")[1]) for text in entries if text.startswith(f"{run}:")]
        assert journal == list(range(1, len(journal) + 1))
        assert len(journal) >= last_journal

        for mailbox, message_id in list(appended)[:10]:  # a sender retrying after restart
            again = await store.append(mailbox, b"retry", message_id=message_id)
            assert again.duplicate
    return {"appended": len(appended), "acked": len(acked), "pending": len(pending)}


def integrity(path: Path) -> str:
    connection = sqlite3.connect(path)
    try:
        result: str = connection.execute("PRAGMA integrity_check").fetchone()[0]
        return result
    finally:
        connection.close()


@settings(max_examples=10, deadline=None)
@given(
    kill_after=st.integers(1, 300),
    delay=st.sampled_from([0.0, 0.0005, 0.002]),
    synchronous=st.sampled_from(["normal", "full"]),
    heavy=st.booleans(),
)
def test_sigkill_anywhere_loses_nothing_that_returned(
    zygote_process: Zygote,
    tmp_path_factory: pytest.TempPathFactory,
    kill_after: int,
    delay: float,
    synchronous: str,
    heavy: bool,
) -> None:
    path = tmp_path_factory.mktemp("crash") / "store.db"
    reports = zygote_process.run_and_kill(
        path, kill_after=kill_after, delay=delay, synchronous=synchronous, heavy=heavy
    )
    assert len(reports) >= kill_after
    assert integrity(path) == "ok"
    summary = trio.run(verify, path, reports)
    assert summary["appended"] > 0 or kill_after < LANES * 2


def test_repeated_kills_during_heavy_commits_leave_a_sound_file(
    zygote_process: Zygote, tmp_path: Path
) -> None:
    """The same file killed five times in a row mid-commit (256 KiB checkpoints, 8 KiB
    messages, batches of 64) and reopened each time."""
    path = tmp_path / "store.db"
    seen_seqs: list[int] = []
    for round_number in range(5):
        reports = zygote_process.run_and_kill(
            path,
            kill_after=60 + 37 * round_number,
            delay=0.001,
            synchronous="normal",
            heavy=True,
            run=round_number,
        )
        assert integrity(path) == "ok"
        trio.run(verify, path, reports, round_number)
        seqs = [int(line.split()[3]) for line in reports if line.startswith("A ")]
        if seen_seqs and seqs:
            assert min(seqs) > max(seen_seqs)  # sequence numbers never go back
        seen_seqs += seqs


if __name__ == "__main__" and sys.argv[1:] == ["zygote"]:
    zygote()
