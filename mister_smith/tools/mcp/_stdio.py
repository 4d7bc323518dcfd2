"""A stdio MCP server as a child process, bridged to the SDK's session streams.

The official SDK's own ``stdio_client`` works on Trio, but for a supervised server we
need three things it does not give: a bound on one message (it buffers a line without
end for as long as the server writes it), the process at hand (its pid, its exit, its
stderr) so that a crash is seen at once and explained, and an immediate kill when the
server has hung (it grants a hung server 2 s after closing stdin and 2 more after
``SIGTERM``). So the process is ours; the protocol (JSON-RPC framing, parsing, the
session) stays the SDK's.

The server leads a new session, so its whole process group is killed when the
connection ends: nothing it started outlives it.
"""

from __future__ import annotations

import collections
import os
import signal
import subprocess
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager

import anyio
import attrs
import mcp_types
import trio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from mcp.client.stdio import get_default_environment
from mcp.shared.message import SessionMessage
from pydantic import ValidationError

from .._process_group import signal_group, stop_group
from ._errors import McpResultTooLarge

SHUTDOWN_GRACE = 1.0
"""Seconds a server gets to exit by itself once its stdin is closed (a clean stop)."""

KILL_GRACE = 1.0
"""Seconds after each signal before giving up waiting for the process to go."""

_STDERR_LINE = 1_000
"""Characters kept of one stderr line."""


@attrs.define(eq=False)
class StdioServer:
    """A running stdio server (see :func:`open_stdio_server`).

    Attributes:
        pid: Its process id (and process group id).
        read_stream: Messages from the server (or parse errors), for ``ClientSession``.
        write_stream: Messages to the server.
        eof: Set once its stdout has ended (before the session sees the end): from then
            on no answer can come, whether or not the process has exited yet.
        exited: Set once the process has exited.
        failure: Why the connection is unusable, when we decided it is (e.g. a message
            past ``max_message_bytes``).
    """

    process: trio.Process
    read_stream: MemoryObjectReceiveStream[SessionMessage | Exception]
    write_stream: MemoryObjectSendStream[SessionMessage]
    stderr: collections.deque[str]
    eof: trio.Event = attrs.field(factory=trio.Event)
    exited: trio.Event = attrs.field(factory=trio.Event)
    failure: BaseException | None = None
    killed: bool = False

    @property
    def pid(self) -> int:
        """The server's process id."""
        return self.process.pid

    @property
    def returncode(self) -> int | None:
        """Its exit status once it has exited (negative: the signal that killed it)."""
        return self.process.returncode

    def stderr_tail(self) -> str:
        """The last lines it wrote to stderr, one per line."""
        return "\n".join(self.stderr)

    def kill(self) -> None:
        """``SIGKILL`` its whole process group now (a hung or misbehaving server)."""
        self.killed = True
        signal_group(self.process.pid, signal.SIGKILL)


async def _read_messages(
    server: StdioServer,
    stdout: trio.abc.ReceiveStream,
    sink: MemoryObjectSendStream[SessionMessage | Exception],
    max_message_bytes: int,
) -> None:
    """Split stdout into lines, parse each as JSON-RPC, hand them to the session.

    A line longer than ``max_message_bytes`` (finished or not) is not buffered further:
    the server is killed and :attr:`StdioServer.failure` says why. :attr:`StdioServer.eof`
    is set before the session sees the end.
    """
    buffer = bytearray()
    try:
        async with sink:
            async for chunk in stdout:
                buffer += chunk
                while (end := buffer.find(b"\n")) >= 0 and end <= max_message_bytes:
                    line = bytes(buffer[:end])
                    del buffer[: end + 1]
                    if line.strip():
                        await sink.send(_parse(line))
                if len(buffer) > max_message_bytes:
                    server.failure = McpResultTooLarge(
                        f"the server sent a message longer than {max_message_bytes} bytes "
                        "(max_message_bytes); it was killed"
                    )
                    server.eof.set()
                    server.kill()
                    return
    finally:
        server.eof.set()


def _parse(line: bytes) -> SessionMessage | Exception:
    try:
        message = mcp_types.jsonrpc_message_adapter.validate_json(line, by_name=False)
    except (ValidationError, ValueError) as error:
        return error
    return SessionMessage(message)


async def _write_messages(
    stdin: trio.abc.SendStream, source: MemoryObjectReceiveStream[SessionMessage]
) -> None:
    async with source:
        async for session_message in source:
            data = session_message.message.model_dump_json(by_alias=True, exclude_unset=True)
            try:
                await stdin.send_all(data.encode("utf-8") + b"\n")
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                return  # the server is gone; the reader's end of file says so


async def _keep_stderr(stderr: trio.abc.ReceiveStream, tail: collections.deque[str]) -> None:
    pending = b""
    async for chunk in stderr:
        lines = (pending + chunk).split(b"\n")
        pending = lines.pop()[-_STDERR_LINE:]
        tail.extend(line.decode("utf-8", "replace")[:_STDERR_LINE] for line in lines)
    if pending:
        tail.append(pending.decode("utf-8", "replace"))


async def _watch_exit(server: StdioServer) -> None:
    await server.process.wait()
    server.exited.set()


@asynccontextmanager
async def open_stdio_server(
    command: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    max_message_bytes: int,
    stderr_lines: int,
) -> AsyncIterator[StdioServer]:
    """Start ``command`` as a stdio MCP server; stop its process group on exit.

    The environment is the SDK's safe default (``PATH``, ``HOME``, ...) plus ``env``.
    Leaving the block normally or by cancellation (a stop) closes the server's stdin
    and grants it :data:`SHUTDOWN_GRACE` to exit; leaving it with an error (a hang, a
    crash, a message past its bound) kills the group at once. Either way the process has been waited
    for when this returns (each wait bounded, shielded from cancellation).

    Raises:
        OSError: the command could not be started.
    """
    process = await trio.lowlevel.open_process(
        list(command),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=get_default_environment() | dict(env or {}),
        cwd=cwd,
        start_new_session=True,
    )
    assert process.stdin is not None
    assert process.stdout is not None
    assert process.stderr is not None
    to_session, read_stream = anyio.create_memory_object_stream[SessionMessage | Exception](0)
    write_stream, from_session = anyio.create_memory_object_stream[SessionMessage](0)
    server = StdioServer(process, read_stream, write_stream, collections.deque(maxlen=stderr_lines))
    clean = False
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(
                _read_messages, server, process.stdout, to_session, max_message_bytes
            )
            nursery.start_soon(_write_messages, process.stdin, from_session)
            nursery.start_soon(_keep_stderr, process.stderr, server.stderr)
            nursery.start_soon(_watch_exit, server)
            try:
                yield server
            except BaseException as error:
                # Stopped (only cancellations): let it exit by itself first. Failed (a
                # hang, a crash, a message past its bound): kill it at once.
                clean = _only_cancelled(error)
                raise
            else:
                clean = True
            finally:
                with trio.CancelScope(shield=True):
                    await _stop(server, graceful=clean)
                nursery.cancel_scope.cancel()
    finally:
        with trio.CancelScope(shield=True):
            if process.returncode is None:
                await stop_group(process, KILL_GRACE)
            for stream in (read_stream, write_stream, to_session, from_session):
                await stream.aclose()
            for pipe in (process.stdin, process.stdout, process.stderr):
                await pipe.aclose()


def _only_cancelled(error: BaseException) -> bool:
    if isinstance(error, BaseExceptionGroup):
        return error.split(trio.Cancelled)[1] is None
    return isinstance(error, trio.Cancelled)


async def _stop(server: StdioServer, *, graceful: bool) -> None:
    process = server.process
    if graceful and process.returncode is None:
        assert process.stdin is not None
        await process.stdin.aclose()
        with trio.move_on_after(SHUTDOWN_GRACE):
            await process.wait()
    # What it left running in its group goes too (SIGKILL also stops a stopped process).
    signal_group(process.pid, signal.SIGKILL)
    with trio.move_on_after(KILL_GRACE):
        await process.wait()
