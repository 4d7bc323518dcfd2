"""Running a command in its own process group, killed whole at its deadline.

``trio.run_process`` alone signals only the process it started, then waits 5 s before
``SIGKILL``: grandchildren survive a timeout, hold the output pipes open, and a child
that ignores ``SIGTERM`` turns a 1 s timeout into 6 s. Here the command leads a new
session (``start_new_session=True``, so its group id is its pid), and at the deadline the
*group* gets ``SIGTERM`` and, after ``kill_grace``, ``SIGKILL``. When the command exits
by itself, whatever it left running in its group is killed too: nothing a command
started outlives the call, as no task outlives its nursery. The call returns within
``timeout + kill_grace`` (plus up to another ``kill_grace`` in the rare case a process
that left the group holds the pipes, or one stuck in the kernel ignores ``SIGKILL``).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Mapping, Sequence

import attrs
import trio


@attrs.frozen
class CommandRun:
    """How a command run ended.

    Attributes:
        exit_code: Its exit status (negative: killed by that signal).
        stdout: Its standard output, at most ``max_output`` bytes.
        stderr: Its standard error, at most ``max_output`` bytes.
        stdout_truncated: Whether more output was dropped.
        stderr_truncated: Whether more error output was dropped.
        timed_out: Whether it ran past its deadline and its group was killed.
    """

    exit_code: int | None
    stdout: bytes
    stderr: bytes
    stdout_truncated: bool
    stderr_truncated: bool
    timed_out: bool


@attrs.define
class _Capture:
    """Keeps the first ``limit`` bytes of a stream and reads (dropping) the rest, so the
    command never blocks on a full pipe."""

    limit: int
    kept: bytearray = attrs.field(factory=bytearray)
    truncated: bool = False

    async def drain(self, stream: trio.abc.ReceiveStream) -> None:
        async for chunk in stream:
            room = self.limit - len(self.kept)
            if len(chunk) > room:
                self.kept += chunk[:room]
                self.truncated = True
            else:
                self.kept += chunk


def signal_group(group: int, signum: signal.Signals) -> None:
    """Send ``signum`` to process group ``group``; a group already gone is fine."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(group, signum)


async def stop_group(process: trio.Process, kill_grace: float) -> None:
    """``SIGTERM`` the process's group, ``SIGKILL`` it after ``kill_grace`` (shielded).

    ``SIGKILL`` goes to the group even when the leader exits on ``SIGTERM``: members that
    ignore it must not survive. Waits at most ``kill_grace`` after each signal.
    """
    with trio.CancelScope(shield=True):
        signal_group(process.pid, signal.SIGTERM)
        with trio.move_on_after(kill_grace):
            await process.wait()
        signal_group(process.pid, signal.SIGKILL)
        with trio.move_on_after(kill_grace):
            await process.wait()


async def run_in_process_group(
    argv: Sequence[str],
    *,
    cwd: str | os.PathLike[str] | None,
    env: Mapping[str, str],
    timeout: float,
    kill_grace: float,
    max_output: int,
) -> CommandRun:
    """Run ``argv`` (no shell, stdin closed) in a new process group under a deadline.

    Cancelled from outside (e.g. by the tool bus's deadline), the group is stopped the
    same way (shielded, at most ``2 * kill_grace``) before the cancellation goes on.
    """
    started = trio.current_time()
    process = await trio.lowlevel.open_process(
        list(argv),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=cwd,
        env=dict(env),
        start_new_session=True,
    )
    assert process.stdout is not None
    assert process.stderr is not None
    out, err = _Capture(max_output), _Capture(max_output)
    timed_out = False
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(out.drain, process.stdout)
            nursery.start_soon(err.drain, process.stderr)
            with trio.move_on_at(started + timeout) as deadline:
                await process.wait()
            if deadline.cancelled_caught:
                timed_out = True
                await stop_group(process, kill_grace)
            else:
                signal_group(process.pid, signal.SIGKILL)  # what it left running
            # The group is gone, so the pipes are at EOF unless a process that left the
            # group holds them: read what is left for at most the grace.
            nursery.cancel_scope.deadline = min(
                trio.current_time() + kill_grace, started + timeout + kill_grace
            )
    finally:
        with trio.CancelScope(shield=True):
            if process.returncode is None:
                await stop_group(process, kill_grace)
            await process.stdout.aclose()
            await process.stderr.aclose()
    return CommandRun(
        exit_code=process.returncode,
        stdout=bytes(out.kept),
        stderr=bytes(err.kept),
        stdout_truncated=out.truncated,
        stderr_truncated=err.truncated,
        timed_out=timed_out,
    )
