"""The monitoring HTTP endpoint: ``/health/live``, ``/health/ready``, ``/metrics`` and,
when given an observer, the ``/observer`` page and its ``/observer.json``.

A small ASGI application (no web framework) served inside the runtime's own Trio loop,
so answering a probe proves the loop responds, by :class:`HttpServer` (h11), whose
reads, writes, connection count and shutdown are all bounded (see
:mod:`._http_server` for why it replaced hypercorn). ``/metrics`` is rendered in a
worker thread, so a large registry does not block the loop.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any, Final, Protocol

import trio
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

from ._http_server import HttpLimits, HttpServer
from ._observer import (
    OBSERVER_HTML,
    OBSERVER_JSON_PATH,
    OBSERVER_PATH,
    OBSERVER_SCRIPT,
    OBSERVER_SCRIPT_PATH,
    ObserverSource,
)
from ._sources import HealthSource, HealthView

logger = logging.getLogger("mister_smith.monitoring.http")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

LIVE_PATH: Final = "/health/live"
READY_PATH: Final = "/health/ready"
METRICS_PATH: Final = "/metrics"

APPROVALS_PATH: Final = "/approvals"
"""Pending tool-call approvals: ``GET`` lists them, ``POST /approvals/<id>/approve``
or ``/deny`` decides one (with ``Authorization: Bearer <runtime.approvals.token>``)."""

JSON_CONTENT_TYPE: Final = "application/json"


class ApprovalSource(Protocol):
    """What the approvals endpoint needs (``mister_smith.tools.Approvals`` is one)."""

    token: str

    def pending(self) -> Sequence[Any]:
        """The pending requests (each with ``to_dict()``)."""
        ...

    def approve(self, request_id: str, *, by: str = "", reason: str = "") -> Any:
        """Approve one (``LookupError`` when unknown)."""
        ...

    def deny(self, request_id: str, *, by: str = "", reason: str = "") -> Any:
        """Deny one (``LookupError`` when unknown)."""
        ...


OBSERVER_CSP: Final = (
    "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; connect-src 'self'; "
    "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
"""Content-Security-Policy of the observer page: its own script and data only."""

DEFAULT_GRACEFUL_TIMEOUT: Final = 1.0
"""Seconds open connections get to finish when the server stops."""

DEFAULT_MAX_METRICS_BYTES: Final = 32 * 1024 * 1024
"""Largest ``/metrics`` body served (32 MiB); a larger one is answered 503."""


class MonitoringApp:
    """The ASGI application behind :func:`serve_monitoring`.

    * ``GET /health/live`` and ``GET /health/ready``: the verdict as JSON, HTTP 200
      when it passes and 503 when it does not (readiness is 503 while starting).
    * ``GET /metrics``: the registry in the Prometheus text format (or OpenMetrics
      when the scraper asks for it in ``Accept``).
    * ``GET /observer`` (with ``observer``): a live, read-only page of the system
      (HTML and ``/observer.js``, no external assets) polling ``GET /observer.json``,
      the :class:`~mister_smith.monitoring.Observer` view as JSON. Without an
      observer these paths are 404.
    * ``HEAD`` works like ``GET`` without a body; other methods get 405, other paths
      404. Responses are never cached.

    ``/metrics`` is rendered off the loop (``trio.to_thread.run_sync``, one render at
    a time): rendering 30,000 series took the loop 724 ms when done on it. The
    framework's own scrape-time statistics are still read on the loop (see
    :class:`~mister_smith.monitoring.FrameworkMetrics`); collectors you add to the
    registry yourself must be thread-safe, as prometheus-client expects anyway.

    Args:
        health: Where the verdicts come from (a ``HealthMonitor``).
        registry: The metrics registry (``FrameworkMetrics.registry``).
        max_metrics_bytes: Largest ``/metrics`` body served; past it the answer is
            503 with the size (and an error is logged), never a truncated exposition.
        observer: The source of the observer view (an ``Observer``); ``None`` serves
            no observer paths.
    """

    def __init__(
        self,
        *,
        health: HealthSource,
        registry: CollectorRegistry,
        max_metrics_bytes: int = DEFAULT_MAX_METRICS_BYTES,
        approvals: ApprovalSource | None = None,
        observer: ObserverSource | None = None,
    ) -> None:
        self.health = health
        self.registry = registry
        self.approvals = approvals
        self.max_metrics_bytes = max_metrics_bytes
        self.observer = observer
        self._paths = {LIVE_PATH, READY_PATH, METRICS_PATH}
        if observer is not None:
            self._paths |= {OBSERVER_PATH, OBSERVER_JSON_PATH, OBSERVER_SCRIPT_PATH}
        self._rendering = trio.Lock()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one ASGI connection (``http`` or ``lifespan``)."""
        kind = scope["type"]
        if kind == "lifespan":
            await self._lifespan(receive, send)
        elif kind == "http":
            await self._http(scope, send)
        else:  # websocket: not served
            raise ValueError(f"unsupported ASGI scope type {kind!r}")

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: Scope, send: Send) -> None:
        method = scope["method"]
        path = scope["path"]
        if self.approvals is not None and (
            path == APPROVALS_PATH or path.startswith(APPROVALS_PATH + "/")
        ):
            await self._approvals(self.approvals, scope, send)
            return
        if path not in self._paths:
            await _respond(send, method, 404, b"not found\n", "text/plain; charset=utf-8")
            return
        if method not in ("GET", "HEAD"):
            await _respond(
                send,
                method,
                405,
                b"method not allowed\n",
                "text/plain; charset=utf-8",
                extra=[(b"allow", b"GET, HEAD")],
            )
            return
        if self.observer is not None and path in (
            OBSERVER_PATH,
            OBSERVER_JSON_PATH,
            OBSERVER_SCRIPT_PATH,
        ):
            await self._observer(send, method, path, self.observer)
            return
        if path == METRICS_PATH:
            encoder, content_type = choose_encoder(_header(scope, b"accept"))
            async with self._rendering:  # one render at a time, however many scrapers
                body: bytes = await trio.to_thread.run_sync(encoder, self.registry)
            if len(body) > self.max_metrics_bytes:
                logger.error(
                    "metrics: the exposition is %d bytes, over max_metrics_bytes=%d",
                    len(body),
                    self.max_metrics_bytes,
                )
                text = f"metrics exposition of {len(body)} bytes exceeds the limit\n"
                await _respond(send, method, 503, text.encode(), "text/plain; charset=utf-8")
                return
            await _respond(send, method, 200, body, content_type)
            return
        if path == LIVE_PATH:
            view = self.health.liveness()
        else:  # never a verdict from a round long past: re-checked when stale
            view = await self.health.fresh_readiness()
        await _respond_json(send, method, view)

    async def _approvals(self, approvals: ApprovalSource, scope: Scope, send: Send) -> None:
        """``GET /approvals`` and ``POST /approvals/<id>/approve|deny``, bearer token
        required (anyone who can reach the port must not decide for the operator)."""
        method = scope["method"]
        given = _header(scope, b"authorization").removeprefix("Bearer ").strip()
        if not secrets.compare_digest(given.encode(), approvals.token.encode()):
            body = b'{"error": "a bearer token (runtime.approvals.token) is required"}\n'
            await _respond(send, method, 401, body, JSON_CONTENT_TYPE)
            return
        parts = scope["path"].strip("/").split("/")
        if parts == ["approvals"] and method in ("GET", "HEAD"):
            pending = [request.to_dict() for request in approvals.pending()]
            body = json.dumps({"pending": pending}, sort_keys=True).encode() + b"\n"
            await _respond(send, method, 200, body, JSON_CONTENT_TYPE)
            return
        if len(parts) == 3 and parts[2] in ("approve", "deny") and method == "POST":
            decide = approvals.approve if parts[2] == "approve" else approvals.deny
            try:
                request = decide(parts[1], by="http")
            except LookupError as exc:
                body = json.dumps({"error": str(exc)}).encode() + b"\n"
                await _respond(send, method, 404, body, JSON_CONTENT_TYPE)
                return
            body = json.dumps({"decided": request.to_dict(), "verdict": parts[2]}).encode()
            await _respond(send, method, 200, body + b"\n", JSON_CONTENT_TYPE)
            return
        await _respond(
            send, method, 404, b'{"error": "no such approvals route"}\n', JSON_CONTENT_TYPE
        )

    async def _observer(self, send: Send, method: str, path: str, observer: ObserverSource) -> None:
        """The observer page, its script, or its JSON view (built on the loop)."""
        security = [(b"x-content-type-options", b"nosniff")]
        if path == OBSERVER_JSON_PATH:
            await trio.lowlevel.checkpoint()
            body = json.dumps(observer.observe(), separators=(",", ":")).encode()
            await _respond(send, method, 200, body, JSON_CONTENT_TYPE, extra=security)
        elif path == OBSERVER_SCRIPT_PATH:
            await _respond(
                send, method, 200, OBSERVER_SCRIPT, "text/javascript; charset=utf-8", extra=security
            )
        else:
            security.append((b"content-security-policy", OBSERVER_CSP.encode()))
            await _respond(
                send, method, 200, OBSERVER_HTML, "text/html; charset=utf-8", extra=security
            )


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return ""


async def _respond_json(send: Send, method: str, view: HealthView) -> None:
    body = json.dumps(view.to_dict(), default=str, sort_keys=True).encode() + b"\n"
    await _respond(send, method, 200 if view.ok else 503, body, JSON_CONTENT_TYPE)


async def _respond(
    send: Send,
    method: str,
    status: int,
    body: bytes,
    content_type: str,
    *,
    extra: list[tuple[bytes, bytes]] | None = None,
) -> None:
    headers = [
        (b"content-type", content_type.encode()),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"),
        *(extra or []),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send(
        {
            "type": "http.response.body",
            "body": b"" if method == "HEAD" else body,
            "more_body": False,
        }
    )


def _bind_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


async def serve_monitoring(
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    health: HealthSource,
    registry: CollectorRegistry,
    graceful_timeout: float = DEFAULT_GRACEFUL_TIMEOUT,
    limits: HttpLimits | None = None,
    approvals: ApprovalSource | None = None,
    observer: ObserverSource | None = None,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``/health/live``, ``/health/ready`` and ``/metrics`` until cancelled (and
    ``/observer`` with ``/observer.json`` when given an ``observer``).

    Runs :class:`HttpServer` on ``host``:``port`` (``port=0`` picks a free port) in
    the current Trio loop; start it with ``await nursery.start(serve_monitoring,
    ...)`` to get the bound port back. Cancelling it stops the server within
    ``graceful_timeout`` seconds, whatever the clients do (a client that stops
    reading is cut off then, and anyway after ``limits.write_timeout``).

    Args:
        host: Address to listen on; the default keeps it on this machine (in a
            container, listen on ``0.0.0.0`` so the orchestrator's probes reach it).
        port: TCP port; 0 for any free one.
        health: Liveness and readiness source (a ``HealthMonitor``).
        registry: Metrics registry (``FrameworkMetrics.registry``).
        graceful_timeout: Seconds a response being written gets on shutdown (used
            when ``limits`` is not given).
        limits: Timeouts and sizes of the server (default :class:`HttpLimits` with
            ``graceful_timeout``).
        approvals: Pending tool-call approvals to serve on ``/approvals`` (bearer
            token required).
        observer: The source of the ``/observer`` page's view (an ``Observer``);
            ``None`` serves no observer paths.
        task_status: Receives the bound port once the server listens.
    """
    if limits is None:
        limits = HttpLimits(graceful_timeout=graceful_timeout)
    app = MonitoringApp(health=health, registry=registry, approvals=approvals, observer=observer)
    listeners = await trio.open_tcp_listeners(port, host=host)
    bound = int(listeners[0].socket.getsockname()[1])
    server = HttpServer(app, limits)
    async with trio.open_nursery() as nursery:
        await nursery.start(server.serve, listeners)
        logger.info("monitoring endpoints on http://%s", _bind_address(host, bound))
        task_status.started(bound)
