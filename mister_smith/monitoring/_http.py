"""The monitoring HTTP endpoint: ``/health/live``, ``/health/ready`` and ``/metrics``.

A small ASGI application (no web framework) served by hypercorn's Trio server inside
the runtime's own Trio loop, so answering a probe proves the loop responds.
"""

from __future__ import annotations

import importlib
import json
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Final

import trio
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

from ._sources import HealthSource, HealthView

logger = logging.getLogger("mister_smith.monitoring.http")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

LIVE_PATH: Final = "/health/live"
READY_PATH: Final = "/health/ready"
METRICS_PATH: Final = "/metrics"

JSON_CONTENT_TYPE: Final = "application/json"

DEFAULT_GRACEFUL_TIMEOUT: Final = 1.0
"""Seconds open connections get to finish when the server stops."""


class MonitoringApp:
    """The ASGI application behind :func:`serve_monitoring`.

    * ``GET /health/live`` and ``GET /health/ready``: the verdict as JSON, HTTP 200
      when it passes and 503 when it does not (readiness is 503 while starting).
    * ``GET /metrics``: the registry in the Prometheus text format (or OpenMetrics
      when the scraper asks for it in ``Accept``).
    * ``HEAD`` works like ``GET`` without a body; other methods get 405, other paths
      404. Responses are never cached.

    Args:
        health: Where the verdicts come from (a ``HealthMonitor``).
        registry: The metrics registry (``FrameworkMetrics.registry``).
    """

    def __init__(self, *, health: HealthSource, registry: CollectorRegistry) -> None:
        self.health = health
        self.registry = registry

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
        if path not in (LIVE_PATH, READY_PATH, METRICS_PATH):
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
        if path == METRICS_PATH:
            accept = _header(scope, b"accept")
            encoder, content_type = choose_encoder(accept)
            body = encoder(self.registry)
            await _respond(send, method, 200, body, content_type)
            return
        view = self.health.liveness() if path == LIVE_PATH else self.health.readiness()
        await _respond_json(send, method, view)


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


def _bound_port(binds: list[str]) -> int:
    """The port of hypercorn's first bind, e.g. ``"http://127.0.0.1:45123"``."""
    return int(binds[0].rsplit(":", 1)[1])


async def serve_monitoring(
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    health: HealthSource,
    registry: CollectorRegistry,
    graceful_timeout: float = DEFAULT_GRACEFUL_TIMEOUT,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``/health/live``, ``/health/ready`` and ``/metrics`` until cancelled.

    Runs hypercorn's Trio server on ``host``:``port`` (``port=0`` picks a free port)
    in the current Trio loop; start it with ``await nursery.start(serve_monitoring,
    ...)`` to get the bound port back. Cancelling it stops the server.

    Args:
        host: Address to listen on; the default keeps it on this machine (in a
            container, listen on ``0.0.0.0`` so the orchestrator's probes reach it).
        port: TCP port; 0 for any free one.
        health: Liveness and readiness source (a ``HealthMonitor``).
        registry: Metrics registry (``FrameworkMetrics.registry``).
        graceful_timeout: Seconds open connections get to finish on shutdown.
        task_status: Receives the bound port once the server listens.

    Raises:
        ImportError: hypercorn is not installed (``pip install mister-smith[http]``).
    """
    try:
        hypercorn_config = importlib.import_module("hypercorn.config")
        hypercorn_trio = importlib.import_module("hypercorn.trio")
    except ImportError as exc:
        raise ImportError(
            "serve_monitoring needs hypercorn: pip install 'mister-smith[http]'"
        ) from exc
    config = hypercorn_config.Config()
    config.bind = [_bind_address(host, port)]
    config.accesslog = None
    config.errorlog = logger
    config.graceful_timeout = graceful_timeout
    app = MonitoringApp(health=health, registry=registry)

    async def serve(*, task_status: trio.TaskStatus[list[str]]) -> None:
        await hypercorn_trio.serve(app, config, mode="asgi", task_status=task_status)

    async with trio.open_nursery() as nursery:
        binds: list[str] = await nursery.start(serve)
        bound = _bound_port(binds)
        logger.info("monitoring endpoints on http://%s", _bind_address(host, bound))
        task_status.started(bound)
