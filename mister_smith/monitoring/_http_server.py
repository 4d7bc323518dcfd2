"""A small HTTP/1.1 server for the monitoring endpoints, with every wait bounded.

Why not hypercorn (used before): hypercorn 0.18 writes each response inside a
*shielded* cancel scope with no deadline (``TCPServer.protocol_send``), so a client
that sends ``GET /metrics`` and never reads the body keeps ``send_all`` blocked for
ever — and cancelling the server cannot interrupt it: shutdown hung (reproduced in
``tests/security/test_bounds_http.py``). Its ``read_timeout``, ``keep_alive_timeout``
and ``graceful_timeout`` do not reach that write, and it has no write timeout.

This server (``h11`` for the protocol, Trio for the sockets) answers an ASGI
application's ``http`` scope, which is all ``/health/*`` and ``/metrics`` need, and
bounds every step with :class:`HttpLimits`:

* a request (head and body) must arrive within ``read_timeout`` of the connection
  opening or of the previous response (slow or idle clients are dropped), and be at
  most ``max_request_bytes`` (431/413 otherwise);
* a response must be written within ``write_timeout`` (a client that stops reading
  is dropped);
* at most ``max_connections`` connections are served at once (more are closed at
  once) and ``max_requests_per_connection`` requests per connection;
* cancelling the server stops reading at once and gives a response being written at
  most ``graceful_timeout`` more, so shutdown is bounded whatever clients do.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Final, NoReturn
from urllib.parse import unquote

import attrs
import trio

try:
    import h11
except ImportError:  # pragma: no cover - the optional 'http' extra is not installed
    _H11_MISSING = True
else:
    _H11_MISSING = False

logger = logging.getLogger("mister_smith.monitoring.http")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
AsgiApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_RECEIVE_CHUNK: Final = 64 * 1024


@attrs.frozen
class HttpLimits:
    """The bounds of the monitoring HTTP server (seconds and bytes).

    Attributes:
        read_timeout: Seconds a client has to send a whole request, from the moment
            the connection opens or the previous response was sent (this is also the
            keep-alive idle time). > 0.
        write_timeout: Seconds a whole response may take to write; a client that
            reads slower, or not at all, is disconnected. > 0.
        graceful_timeout: Seconds a response being written gets to finish once the
            server is cancelled. >= 0.
        max_request_bytes: Largest request head, and largest request body. >= 1024.
        max_connections: Connections served at once; more are closed unanswered.
            >= 1.
        max_requests_per_connection: Requests on one keep-alive connection. >= 1.
    """

    read_timeout: float = attrs.field(default=5.0, validator=attrs.validators.gt(0))
    write_timeout: float = attrs.field(default=10.0, validator=attrs.validators.gt(0))
    graceful_timeout: float = attrs.field(default=1.0, validator=attrs.validators.ge(0))
    max_request_bytes: int = attrs.field(default=16 * 1024, validator=attrs.validators.ge(1024))
    max_connections: int = attrs.field(default=64, validator=attrs.validators.ge(1))
    max_requests_per_connection: int = attrs.field(default=100, validator=attrs.validators.ge(1))


class _WriteTimedOut(Exception):
    """A response could not be written within its deadline."""


class _Answered(Exception):
    """The request was bad and has been answered; close the connection."""


@attrs.define(eq=False)
class HttpServer:
    """Serves one ASGI app on Trio socket streams within :class:`HttpLimits`.

    Use :meth:`serve` with listeners (as :func:`serve_monitoring` does). Its counters
    are for tests and introspection.

    Attributes:
        app: The ASGI application (``http`` scopes only; no lifespan).
        limits: The bounds.
        open_connections: Connections being served now.
        refused_connections: Connections closed unanswered (``max_connections``).
        dropped_writes: Responses abandoned at their write deadline.
        timed_out_reads: Connections closed waiting for a request.
    """

    app: AsgiApp
    limits: HttpLimits = attrs.field(factory=HttpLimits)
    open_connections: int = 0
    refused_connections: int = 0
    dropped_writes: int = 0
    timed_out_reads: int = 0
    _writes: set[trio.CancelScope] = attrs.field(factory=set, init=False)
    _closing_at: float = attrs.field(default=math.inf, init=False)

    @property
    def writing(self) -> int:
        """Responses being written now."""
        return len(self._writes)

    async def serve(
        self,
        listeners: list[trio.SocketListener],
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Accept and serve connections on ``listeners`` until cancelled.

        On cancellation, reads stop at once and responses being written get at most
        ``graceful_timeout`` more, so this returns within that bound.

        Raises:
            ImportError: h11 is not installed (``pip install 'mister-smith[http]'``).
        """
        if _H11_MISSING:  # pragma: no cover
            raise ImportError(
                "the monitoring HTTP server needs h11: pip install 'mister-smith[http]'"
            )
        async with trio.open_nursery() as handlers:
            try:
                task_status.started()
                await trio.serve_listeners(self.handle, listeners, handler_nursery=handlers)
            finally:
                self._closing_at = trio.current_time() + self.limits.graceful_timeout
                for scope in self._writes:
                    scope.deadline = min(scope.deadline, self._closing_at)

    async def handle(self, stream: trio.SocketStream) -> None:
        """Serve one connection: requests in turn, each within the limits."""
        if self.open_connections >= self.limits.max_connections:
            self.refused_connections += 1
            await trio.aclose_forcefully(stream)
            return
        self.open_connections += 1
        try:
            await self._serve_connection(stream)
        except (trio.BrokenResourceError, trio.ClosedResourceError, _WriteTimedOut, _Answered):
            pass
        except Exception:  # one bad connection must never stop the server
            logger.exception("monitoring http: a connection failed")
        finally:
            self.open_connections -= 1
            await trio.aclose_forcefully(stream)

    async def _serve_connection(self, stream: trio.SocketStream) -> None:
        limits = self.limits
        connection = h11.Connection(h11.SERVER, max_incomplete_event_size=limits.max_request_bytes)
        for number in range(1, limits.max_requests_per_connection + 1):
            received = await self._receive(stream, connection)
            if received is None:
                return
            request, body = received
            last = number == limits.max_requests_per_connection
            await self._respond(stream, connection, request, body, last=last)
            if connection.our_state is not h11.DONE or connection.their_state is not h11.DONE:
                return
            connection.start_next_cycle()

    # -- reading ------------------------------------------------------------------------

    async def _receive(
        self, stream: trio.SocketStream, connection: h11.Connection
    ) -> tuple[h11.Request, bytes] | None:
        """The next request and its body, or ``None`` if the client is gone or too slow."""
        request: h11.Request | None = None
        body = bytearray()
        with trio.move_on_after(self.limits.read_timeout) as waiting:
            while True:
                try:
                    event = connection.next_event()
                except h11.RemoteProtocolError as exc:
                    await self._refuse(stream, connection, exc.error_status_hint, str(exc))
                if event is h11.NEED_DATA:
                    connection.receive_data(await stream.receive_some(_RECEIVE_CHUNK))
                elif isinstance(event, h11.Request):
                    request = event
                elif isinstance(event, h11.Data):
                    body += event.data
                    if len(body) > self.limits.max_request_bytes:
                        await self._refuse(stream, connection, 413, "request body too large")
                elif isinstance(event, h11.EndOfMessage) and request is not None:
                    return request, bytes(body)
                else:  # ConnectionClosed, or PAUSED after a protocol switch: done
                    return None
        if waiting.cancelled_caught:
            self.timed_out_reads += 1
        return None

    async def _refuse(
        self, stream: trio.SocketStream, connection: h11.Connection, status: int, reason: str
    ) -> NoReturn:
        """Answer a bad request with ``status`` (if still possible) and give up on it."""
        logger.debug("monitoring http: refusing a request (%s): %s", status, reason)
        if connection.our_state in (h11.IDLE, h11.SEND_RESPONSE):
            body = f"{reason}\n".encode(errors="replace")
            headers = [
                ("content-type", "text/plain; charset=utf-8"),
                ("content-length", str(len(body))),
                ("connection", "close"),
            ]
            try:
                data = connection.send(h11.Response(status_code=status, headers=headers))
                data = (data or b"") + (connection.send(h11.Data(data=body)) or b"")
                data += connection.send(h11.EndOfMessage()) or b""
            except h11.LocalProtocolError:
                data = b""
            await self._write(stream, data, trio.current_time() + self.limits.write_timeout)
        raise _Answered

    # -- responding ---------------------------------------------------------------------

    async def _respond(
        self,
        stream: trio.SocketStream,
        connection: h11.Connection,
        request: h11.Request,
        body: bytes,
        *,
        last: bool,
    ) -> None:
        """Run the app for ``request`` and write what it sends, by the write deadline."""
        response = _Response(self, stream, connection, last=last)
        try:
            await self.app(_scope(stream, request), _receiver(body), response.send)
        except (_WriteTimedOut, trio.BrokenResourceError, trio.ClosedResourceError):
            raise
        except Exception:
            logger.exception("monitoring http: the application failed")
            if not response.started:
                await self._refuse(stream, connection, 500, "internal error")
            raise _Answered from None
        if not response.finished:
            if not response.started:
                await self._refuse(stream, connection, 500, "no response")
            raise _Answered

    async def _write(self, stream: trio.SocketStream, data: bytes, deadline: float) -> None:
        """``send_all`` by ``deadline`` (or the shutdown grace), even when cancelled."""
        if not data:
            return
        scope = trio.CancelScope(shield=True, deadline=min(deadline, self._closing_at))
        self._writes.add(scope)
        try:
            with scope:
                await stream.send_all(data)
        finally:
            self._writes.discard(scope)
        if scope.cancelled_caught:
            self.dropped_writes += 1
            raise _WriteTimedOut


@attrs.define(eq=False)
class _Response:
    """The ASGI ``send`` of one request: start, then body chunks, written by h11."""

    server: HttpServer
    stream: trio.SocketStream
    connection: h11.Connection
    last: bool
    started: bool = False
    finished: bool = False
    _status: int = 500
    _headers: list[tuple[bytes, bytes]] = attrs.field(factory=list)
    _deadline: float = math.inf

    async def send(self, message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            if self.started:
                raise RuntimeError("http.response.start sent twice")
            self._status = int(message["status"])
            self._headers = [(bytes(k), bytes(v)) for k, v in message.get("headers", ())]
            if self.last:
                self._headers.append((b"connection", b"close"))
            self._deadline = trio.current_time() + self.server.limits.write_timeout
            self.started = True
            return
        if kind != "http.response.body" or not self.started or self.finished:
            raise RuntimeError(f"unexpected ASGI message {kind!r}")
        data = b""
        if not self._status_sent():
            head = h11.Response(status_code=self._status, headers=self._headers)
            data += self.connection.send(head) or b""
        chunk = bytes(message.get("body", b""))
        if chunk:
            data += self.connection.send(h11.Data(data=chunk)) or b""
        if not message.get("more_body", False):
            data += self.connection.send(h11.EndOfMessage()) or b""
            self.finished = True
        await self.server._write(self.stream, data, self._deadline)

    def _status_sent(self) -> bool:
        return self.connection.our_state is not h11.SEND_RESPONSE


def _receiver(body: bytes) -> Receive:
    """The ASGI ``receive``: the whole request body once, then ``http.disconnect``."""
    delivered = False

    async def receive() -> Message:
        nonlocal delivered
        await trio.lowlevel.checkpoint()
        if delivered:
            return {"type": "http.disconnect"}
        delivered = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


def _scope(stream: trio.SocketStream, request: h11.Request) -> Scope:
    target = bytes(request.target)
    raw_path, _, query = target.partition(b"?")
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": request.http_version.decode("ascii"),
        "method": request.method.decode("ascii"),
        "scheme": "http",
        "path": unquote(raw_path.decode("latin-1")),
        "raw_path": raw_path,
        "query_string": query,
        "root_path": "",
        "headers": [(bytes(name).lower(), bytes(value)) for name, value in request.headers],
        "client": _address(stream.socket.getpeername),
        "server": _address(stream.socket.getsockname),
    }


def _address(read: Callable[[], Any]) -> tuple[str, int] | None:
    try:
        address = read()
    except OSError:
        return None
    if isinstance(address, tuple) and len(address) >= 2:
        return str(address[0]), int(address[1])
    return None
