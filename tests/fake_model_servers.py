"""Fake model servers for the HTTP adapter tests: an ASGI app on 127.0.0.1 only.

:class:`FakeModelServer` speaks just enough of OpenAI's chat-completions and Anthropic's
messages APIs: each request is recorded and answered with the next scripted
:class:`Reply` (a JSON body, an error status, a malformed body, a hang, or a body
streamed in chunks that may never end). Serve it (or any ASGI app) with
:func:`serve_fake` (hypercorn on port 0) or use :meth:`FakeModelServer.transport` for an
``httpx.MockTransport`` when no socket is needed.
"""

from __future__ import annotations

import collections
import itertools
import json
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    MutableMapping,
)
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import attrs
import httpx
import trio
from hypercorn.config import Config
from hypercorn.trio import serve

from mister_smith.agents import (
    Message,
    MessageRole,
    ModelRequest,
    ModelResponse,
    ToolCall,
    ToolDefinition,
)

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


@attrs.frozen
class Reply:
    """One scripted answer.

    Attributes:
        status: HTTP status.
        body: A JSON-able value, or raw ``bytes`` (e.g. malformed JSON).
        headers: Extra headers (e.g. ``retry-after``).
        hang: Never answer (the client's deadline must end the wait).
        stream: Makes the chunks to send instead of ``body`` (they may never end);
            sent chunked unless ``headers`` give a ``content-length``.
    """

    status: int = 200
    body: Any = None
    headers: tuple[tuple[str, str], ...] = ()
    hang: bool = False
    stream: Callable[[], Iterable[bytes]] | None = None

    def encoded(self) -> bytes:
        """The body as bytes."""
        if isinstance(self.body, bytes):
            return self.body
        return json.dumps(self.body).encode()


@attrs.frozen
class RecordedRequest:
    """A request the fake server received."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any


Responder = Callable[[str, Any], Reply]
"""Computes the reply to a request from its path and JSON body."""


@attrs.define
class FakeModelServer:
    """Answers each request with the next queued :class:`Reply`, else with ``responder``
    (else 500)."""

    replies: collections.deque[Reply] = attrs.field(factory=collections.deque)
    requests: list[RecordedRequest] = attrs.field(factory=list)
    responder: Responder | None = None

    def push(self, *replies: Reply) -> None:
        """Queue replies, answered in order."""
        self.replies.extend(replies)

    def _next(self, method: str, path: str, headers: dict[str, str], raw: bytes) -> Reply:
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw
        self.requests.append(RecordedRequest(method, path, headers, body))
        if self.replies:
            return self.replies.popleft()
        if self.responder is not None:
            return self.responder(path, body)
        return Reply(500, {"error": {"message": "the fake server has no reply queued"}})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The ASGI application."""
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        raw = b""
        while True:
            message = await receive()
            raw += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        reply = self._next(scope["method"], scope["path"], headers, raw)
        if reply.hang:
            await trio.sleep_forever()
        if reply.stream is not None:
            await send_stream(send, reply.status, reply.headers, reply.stream())
            return
        body = reply.encoded()
        await send(
            {
                "type": "http.response.start",
                "status": reply.status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    *((k.encode(), v.encode()) for k, v in reply.headers),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    def transport(self) -> httpx.MockTransport:
        """The same behaviour as an in-process ``httpx.MockTransport`` (no socket)."""

        async def handle(request: httpx.Request) -> httpx.Response:
            raw = await request.aread()
            headers = {k.lower(): v for k, v in request.headers.items()}
            reply = self._next(request.method, request.url.path, headers, raw)
            if reply.hang:
                await trio.sleep_forever()
            if reply.stream is not None:
                return httpx.Response(
                    reply.status, headers=list(reply.headers), stream=Chunks(reply.stream())
                )
            return httpx.Response(
                reply.status, content=reply.encoded(), headers=list(reply.headers)
            )

        return httpx.MockTransport(handle)


class Chunks(httpx.AsyncByteStream):
    """An httpx response stream of ``chunks`` (possibly endless), a checkpoint each;
    closing the response closes it even when it was not read to the end."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = chunks
        self._iterator: AsyncGenerator[bytes, None] | None = None

    def __aiter__(self) -> AsyncIterator[bytes]:
        self._iterator = self._generate()
        return self._iterator

    async def _generate(self) -> AsyncGenerator[bytes, None]:
        for chunk in self._chunks:
            await trio.lowlevel.checkpoint()
            yield chunk

    async def aclose(self) -> None:
        if self._iterator is not None:
            await self._iterator.aclose()


async def send_stream(
    send: Send, status: int, headers: Iterable[tuple[str, str]], chunks: Iterable[bytes]
) -> None:
    """Send a response whose body is ``chunks`` (possibly endless) over ASGI; stop
    quietly once the client has gone."""
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                *((k.encode(), v.encode()) for k, v in headers),
            ],
        }
    )
    try:
        for chunk in chunks:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await trio.lowlevel.checkpoint()
        await send({"type": "http.response.body", "body": b""})
    except Exception:  # the client hung up: hypercorn refuses further sends
        return


@asynccontextmanager
async def serve_fake(app: ASGIApp) -> AsyncIterator[str]:
    """Serve ``app`` (a :class:`FakeModelServer` or any ASGI app) with hypercorn on
    127.0.0.1, a free port; yield its base URL."""
    config = Config()
    config.bind = ["127.0.0.1:0"]
    config.accesslog = None
    config.errorlog = None
    config.graceful_timeout = 0.1
    async with trio.open_nursery() as nursery:
        asgi_app: Any = app
        binds = await nursery.start(partial(serve, asgi_app, config, mode="asgi"))
        try:
            yield str(binds[0])
        finally:
            nursery.cancel_scope.cancel()


# --- reply builders -------------------------------------------------------------------


def openai_reply(
    text: str | None = None,
    tool_calls: list[tuple[str, str, dict[str, Any]]] = (),  # type: ignore[assignment]
    *,
    prompt_tokens: int = 11,
    completion_tokens: int = 7,
) -> Reply:
    """A chat-completions answer: text and/or ``(id, name, arguments)`` tool calls."""
    message: dict[str, Any] = {"role": "assistant", "content": text}
    if tool_calls:
        message["tool_calls"] = [
            {
                "id": id_,
                "type": "function",
                "function": {"name": name, "arguments": json.dumps(args)},
            }
            for id_, name, args in tool_calls
        ]
    return Reply(
        200,
        {
            "id": "chatcmpl-fake",
            "object": "chat.completion",
            "model": "fake-gpt",
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "finish_reason": "tool_calls" if tool_calls else "stop",
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        },
    )


def anthropic_reply(
    text: str | None = None,
    tool_uses: list[tuple[str, str, dict[str, Any]]] = (),  # type: ignore[assignment]
    *,
    input_tokens: int = 13,
    output_tokens: int = 5,
) -> Reply:
    """A messages-API answer: text and/or ``(id, name, input)`` tool-use blocks."""
    content: list[dict[str, Any]] = []
    if text is not None:
        content.append({"type": "text", "text": text})
    content.extend({"type": "tool_use", "id": i, "name": n, "input": a} for i, n, a in tool_uses)
    return Reply(
        200,
        {
            "id": "msg_fake",
            "type": "message",
            "role": "assistant",
            "model": "fake-claude",
            "content": content,
            "stop_reason": "tool_use" if tool_uses else "end_turn",
            "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens},
        },
    )


def error_reply(status: int, message: str = "boom", **headers: str) -> Reply:
    """An API error answer."""
    return Reply(
        status,
        {"error": {"type": "error", "message": message}},
        tuple((k.replace("_", "-"), v) for k, v in headers.items()),
    )


def parse_openai_request(body: Any) -> ModelRequest:
    """Read a chat-completions request body back into a :class:`ModelRequest` (what a
    model behind the endpoint would see)."""
    messages: list[Message] = []
    names: dict[str, str] = {}
    for entry in body["messages"]:
        role = entry["role"]
        if role == "assistant":
            calls = tuple(
                ToolCall(c["id"], c["function"]["name"], json.loads(c["function"]["arguments"]))
                for c in entry.get("tool_calls") or ()
            )
            names.update((call.id, call.name) for call in calls)
            messages.append(Message.assistant(entry.get("content") or "", calls))
        elif role == "tool":
            content = entry["content"]
            messages.append(
                Message(
                    MessageRole.TOOL,
                    content,
                    (),
                    entry["tool_call_id"],
                    names.get(entry["tool_call_id"]),
                    content.startswith("ERROR"),
                )
            )
        else:
            messages.append(Message(MessageRole(role), entry["content"]))
    tools = [
        ToolDefinition(
            t["function"]["name"], t["function"]["description"], t["function"]["parameters"]
        )
        for t in body.get("tools", ())
    ]
    return ModelRequest(messages, tools)


def openai_responder(think: Callable[[ModelRequest], ModelResponse]) -> Responder:
    """A responder that reads each request back and answers with ``think(request)``."""
    numbers = itertools.count(1)

    def respond(path: str, body: Any) -> Reply:
        response = think(parse_openai_request(body))
        calls = [(f"call_{next(numbers)}", c.name, dict(c.arguments)) for c in response.tool_calls]
        return openai_reply(response.text or None, calls)

    return respond
