"""Where an MCP server is: a command run over stdio, a streamable-HTTP URL, or any
transport the SDK's ``ClientSession`` can run on (a factory, opened anew per connection).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

import attrs
import httpx2
from mcp.client._transport import ReadStream, TransportStreams, WriteStream
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.message import SessionMessage

from ._options import McpServerOptions
from ._stdio import StdioServer, open_stdio_server

TransportFactory = Callable[[], AbstractAsyncContextManager[TransportStreams]]
"""Opens a fresh connection to a server each time it is called (e.g. an in-process
server over memory streams, in tests)."""


def _argv(value: object) -> tuple[str, ...]:
    if isinstance(value, str | bytes) or not isinstance(value, Sequence):
        raise TypeError(f"stdio must be a list of program and arguments, got {value!r}")
    argv = tuple(value)
    if not argv or not all(isinstance(part, str) and part for part in argv):
        raise ValueError(f"stdio must be a non-empty list of non-empty strings, got {value!r}")
    return argv


def _env(value: object) -> dict[str, str] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise TypeError(f"env must map names to strings, got {value!r}")
    return dict(value)


@attrs.frozen
class StdioCommand:
    """A server run as a child process, spoken to over its stdin and stdout.

    Attributes:
        argv: The program and its arguments (no shell).
        env: Variables added to the SDK's safe default environment.
        cwd: Its working directory.
    """

    argv: tuple[str, ...] = attrs.field(converter=_argv)
    env: dict[str, str] | None = attrs.field(default=None, converter=_env)
    cwd: str | None = attrs.field(default=None, converter=attrs.converters.optional(os.fspath))

    @property
    def kind(self) -> str:
        """``"stdio"``."""
        return "stdio"


def _url(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"url must be a string, got {value!r}")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"url must be an http:// or https:// URL with a host, got {value!r}")
    return value


@attrs.frozen
class HttpEndpoint:
    """A server reached over streamable HTTP.

    Attributes:
        url: Its MCP endpoint (e.g. ``http://127.0.0.1:8000/mcp``).
        headers: Sent with every request (e.g. an ``Authorization`` header).
    """

    url: str = attrs.field(converter=_url)
    headers: dict[str, str] | None = attrs.field(default=None, converter=_env)

    @property
    def kind(self) -> str:
        """``"http"``."""
        return "http"


@attrs.frozen
class CustomTransport:
    """Any transport, opened by calling ``factory`` (once per connection)."""

    factory: TransportFactory

    @property
    def kind(self) -> str:
        """``"custom"``."""
        return "custom"


ServerLocation = StdioCommand | HttpEndpoint | CustomTransport
"""Where a server is."""


@attrs.frozen
class Link:
    """An open connection's streams, and the process behind them for a stdio server."""

    read_stream: ReadStream[SessionMessage | Exception]
    write_stream: WriteStream[SessionMessage]
    process: StdioServer | None = None


@asynccontextmanager
async def open_link(location: ServerLocation, options: McpServerOptions) -> AsyncIterator[Link]:
    """Open a connection to the server at ``location`` for as long as the block runs.

    Raises:
        OSError: a stdio command could not be started.
    """
    if isinstance(location, StdioCommand):
        async with open_stdio_server(
            location.argv,
            env=location.env,
            cwd=location.cwd,
            max_message_bytes=options.max_message_bytes,
            stderr_lines=options.stderr_lines,
        ) as server:
            yield Link(server.read_stream, server.write_stream, server)
    elif isinstance(location, HttpEndpoint):
        async with contextlib.AsyncExitStack() as stack:
            client: Any = None
            if location.headers:
                client = await stack.enter_async_context(
                    httpx2.AsyncClient(
                        headers=location.headers, timeout=httpx2.Timeout(30.0, read=300.0)
                    )
                )
            read, write = await stack.enter_async_context(
                streamable_http_client(location.url, http_client=client)
            )
            yield Link(read, write)
    else:
        async with location.factory() as (read, write):
            yield Link(read, write)
