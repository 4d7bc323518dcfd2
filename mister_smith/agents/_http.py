"""What the HTTP model adapters share: deadlines, retries with backoff, a circuit breaker
per endpoint, API keys from the environment (never logged), typed errors."""

from __future__ import annotations

import contextlib
import logging
import math
import os
import random
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, TypedDict

import attrs
import trio

from ..config import AgentSettings
from ..errors import ResponseBodyRejected
from ..events import EventBus
from ..supervision import Backoff, CircuitBreaker
from ..tools import DECODABLE_ENCODINGS, BodyLimits, read_decoded_body
from ._errors import (
    MalformedModelResponse,
    MissingApiKey,
    ModelAuthError,
    ModelError,
    ModelHTTPError,
    ModelRateLimited,
    ModelResponseTooLarge,
    ModelTimeout,
)
from ._messages import ToolCall
from ._model import ModelRequest, ModelResponse
from ._parsing import loads_strict
from ._sse import ServerSentEvent, SSEDecoder
from ._streaming import ModelStreamEvent, ResponseCompleted, StreamAssembler, collect, events_of

if TYPE_CHECKING:
    import httpx

logger = logging.getLogger("mister_smith.agents.http")

RETRY_STATUSES = frozenset({408, 409, 425, 429, 500, 502, 503, 504, 529})
"""Statuses worth retrying: timeouts, rate limits, overload and server errors."""


@attrs.frozen
class HttpRetryPolicy:
    """How an HTTP model retries a failed attempt.

    Attributes:
        max_attempts: Attempts in all, the first included (>= 1).
        backoff: Delay before each retry (exponential with jitter).
        retry_statuses: HTTP statuses that are retried (others fail at once).
        max_retry_after: Cap on a server's ``Retry-After`` (seconds).
    """

    max_attempts: int = attrs.field(default=3, validator=attrs.validators.ge(1))
    backoff: Backoff = attrs.field(
        factory=lambda: Backoff(initial=0.5, maximum=8.0, factor=2.0, jitter=0.1)
    )
    retry_statuses: frozenset[int] = RETRY_STATUSES
    max_retry_after: float = attrs.field(default=30.0, validator=attrs.validators.ge(0.0))


REDACTED = "***"
"""What an API key echoed back by a server is replaced with in error texts."""

MIN_REDACTED_LENGTH = 8
"""Shortest credential that is redacted from answers and errors (see :meth:`Secret.redact`)."""

ERROR_BODY_BYTES = 64 * 1024
"""Most bytes read of an error (non-2xx) answer: only an excerpt is ever shown."""


class Secret:
    """A credential that never shows itself in ``repr``, ``str``, logs or tracebacks."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The credential itself (only for the request header)."""
        return self._value

    def redact(self, text: str) -> str:
        """``text`` with every occurrence of the credential replaced by ``***``.

        Credentials shorter than :data:`MIN_REDACTED_LENGTH` are left alone: they would
        match ordinary words (real API keys are dozens of characters).
        """
        if len(self._value) < MIN_REDACTED_LENGTH:
            return text
        return text.replace(self._value, REDACTED)

    def redact_value(self, value: Any) -> Any:
        """``value`` (decoded JSON, a :class:`ModelResponse`'s parts) with the credential
        replaced in every string, mapping keys included.

        The raw body is redacted too, but a server can escape the key in its JSON
        (``"\\u0073k-..."``, ``"\\/"``): only the decoded strings show it, so they are
        redacted again once parsed. Lists come back as lists, mappings as dicts.
        """
        if len(self._value) < MIN_REDACTED_LENGTH:
            return value
        if isinstance(value, str):
            return self.redact(value)
        if isinstance(value, Mapping):
            return {self.redact_value(key): self.redact_value(item) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return [self.redact_value(item) for item in value]
        return value

    def redact_bytes(self, data: bytes) -> bytes:
        """``data`` with every occurrence of the credential (UTF-8) replaced."""
        secret = self._value.encode()
        if len(self._value) < MIN_REDACTED_LENGTH or secret not in data:
            return data
        return data.replace(secret, REDACTED.encode())

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__


def _resolve_api_key(api_key: str | None, env: str | None, required: bool) -> Secret | None:
    if api_key:
        return Secret(api_key)
    value = os.environ.get(env, "") if env else ""
    if value:
        return Secret(value)
    if required:
        raise MissingApiKey(
            f"set the {env} environment variable to the model's API key"
            if env
            else "this model needs an API key"
        )
    return None


def _transport_error() -> type[Exception]:
    import httpx

    return httpx.TransportError


def _retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


@contextlib.asynccontextmanager
async def _closing_chunks(response: httpx.Response) -> AsyncIterator[AsyncIterator[bytes]]:
    """The raw body chunks of a streamed ``response``, its iterator closed on the way
    out (``aiter_raw`` leaves an inner async generator of httpx's unclosed when the
    reader stops before the end)."""
    import httpx

    stream = response.stream
    assert isinstance(stream, httpx.AsyncByteStream)
    chunks = aiter(stream)
    try:
        yield chunks
    finally:
        close = getattr(chunks, "aclose", None)
        if close is not None:
            with trio.CancelScope(shield=True):
                await close()


def _is_event_stream(content_type: str) -> bool:
    return content_type.split(";", 1)[0].strip().lower() == "text/event-stream"


def _error_excerpt(content: bytes) -> str:
    """The API's error message (JSON ``error.message``), else the start of the body."""
    try:
        data = loads_strict("", content)
    except MalformedModelResponse:
        return content[:200].decode("utf-8", errors="replace").strip()
    if isinstance(data, Mapping):
        error = data.get("error")
        if isinstance(error, Mapping) and isinstance(error.get("message"), str):
            return str(error["message"])[:200]
        if isinstance(error, str):
            return error[:200]
    return content[:200].decode("utf-8", errors="replace").strip()


class HttpModelOptions(TypedDict, total=False):
    """The keyword arguments of :class:`HttpModel` (for the adapters' signatures)."""

    base_url: str | None
    api_key: str | None
    api_key_env: str | None
    require_api_key: bool
    timeout: float
    attempt_timeout: float | None
    retry: HttpRetryPolicy | None
    breaker: CircuitBreaker | None
    events: EventBus | None
    client: httpx.AsyncClient | None
    transport: httpx.AsyncBaseTransport | None
    rng: random.Random | None
    max_response_bytes: int
    streaming: bool


@attrs.frozen
class _Answer:
    """What one attempt read: the status, the (bounded, decoded, redacted) body and the
    ``Retry-After`` header."""

    status: int
    content: bytes
    retry_after: str | None


class HttpModel:
    """Base of the HTTP model adapters: one endpoint, one breaker, bounded retries.

    Subclasses build the request body and headers and parse the response. Every
    :meth:`complete` runs under ``timeout`` seconds in total (→
    :class:`~mister_smith.agents.ModelTimeout`); each attempt under ``attempt_timeout``.
    Connection errors, attempt timeouts and 5xx answers count as failures of the
    endpoint's :class:`~mister_smith.supervision.CircuitBreaker`; once it is open calls
    fail fast with :class:`~mister_smith.errors.CircuitOpenError`. 429 and 5xx answers
    are retried after the backoff (or the server's ``Retry-After``).

    The HTTP client is created on first use and closed by :meth:`aclose` (or use the
    model as an async context manager); pass ``client`` to share one, or ``transport``
    (e.g. ``httpx.MockTransport``) to test without a socket.

    Answers are not trusted. The body is streamed and cut off at
    ``max_response_bytes`` decoded bytes (→ :class:`ModelResponseTooLarge`, a
    :class:`MalformedModelResponse`; also for stacked content-encodings and compression
    bombs), so a huge or never-ending answer costs at most that much memory. Every way
    the JSON can be wrong (see :mod:`~mister_smith.agents._parsing`) is a
    :class:`MalformedModelResponse`. The API key is removed from the body as soon as it
    is read and from every error's text and ``args``, so a server echoing it back
    cannot leak it into logs, events or the model's context.
    """

    default_base_url = ""
    path = ""
    default_api_key_env: str | None = None

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        api_key_env: str | None = None,
        require_api_key: bool = True,
        timeout: float = 120.0,
        attempt_timeout: float | None = 60.0,
        retry: HttpRetryPolicy | None = None,
        breaker: CircuitBreaker | None = None,
        events: EventBus | None = None,
        client: httpx.AsyncClient | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        rng: random.Random | None = None,
        max_response_bytes: int = AgentSettings().max_response_bytes,
        streaming: bool = False,
    ) -> None:
        if not timeout > 0:
            raise ValueError(f"timeout must be > 0, got {timeout!r}")
        if isinstance(max_response_bytes, bool) or not (
            isinstance(max_response_bytes, int) and max_response_bytes >= 1
        ):
            raise ValueError(f"max_response_bytes must be an int >= 1, got {max_response_bytes!r}")
        if attempt_timeout is not None and not attempt_timeout > 0:
            raise ValueError(f"attempt_timeout must be > 0, got {attempt_timeout!r}")
        self.model = model
        self.base_url = (base_url or self.default_base_url).rstrip("/")
        self.endpoint = f"{self.base_url}{self.path}"
        env = api_key_env if api_key_env is not None else self.default_api_key_env
        self._secret = _resolve_api_key(api_key, env, require_api_key)
        self.timeout = timeout
        self.attempt_timeout = attempt_timeout
        self.retry = retry or HttpRetryPolicy()
        self.breaker = breaker or CircuitBreaker(f"model:{self.endpoint}", events=events)
        self._client = client
        self._owns_client = client is None
        self._transport = transport
        self._rng = rng or random.Random()
        self.max_response_bytes = max_response_bytes
        self._attempts = 0
        self._retries = 0
        self.streaming = streaming

    @property
    def name(self) -> str:
        """``<model>@<endpoint>``."""
        return f"{self.model}@{self.endpoint}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model={self.model!r}, endpoint={self.endpoint!r})"

    @property
    def _api_key(self) -> str | None:
        return None if self._secret is None else self._secret.reveal()

    # -- to implement -----------------------------------------------------------------

    def build_body(self, request: ModelRequest) -> dict[str, Any]:
        """The JSON body for ``request``."""
        raise NotImplementedError

    def build_headers(self) -> dict[str, str]:
        """Headers for every request (credentials included)."""
        raise NotImplementedError

    def parse_response(self, data: Any, request: ModelRequest | None = None) -> ModelResponse:
        """The :class:`ModelResponse` in a 2xx JSON body (already parsed strictly) that
        answers ``request`` (its tools name the calls).

        Raises:
            MalformedModelResponse: the body is not what the API promises.
        """
        raise NotImplementedError

    def redact(self, text: str) -> str:
        """``text`` without this model's API key."""
        return text if self._secret is None else self._secret.redact(text)

    # -- the call ---------------------------------------------------------------------

    def _get_client(self) -> httpx.AsyncClient:
        if self._client is None:
            import httpx  # the optional "http" extra: only HTTP models need it

            self._client = httpx.AsyncClient(transport=self._transport, timeout=None)
        return self._client

    async def aclose(self) -> None:
        """Close the HTTP client if this model created it."""
        client, self._client = self._client, None
        if client is not None and self._owns_client:
            await client.aclose()
        else:
            await trio.lowlevel.checkpoint()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def complete(self, request: ModelRequest) -> ModelResponse:
        """Send ``request``; retry, back off and trip the breaker as configured.

        Raises:
            ModelTimeout: no answer within ``timeout`` (attempts and waits included).
            ModelRateLimited: still rate limited after the last attempt.
            ModelHTTPError: an error status that is not retried, or the last attempt's.
            ModelAuthError: the credentials were refused.
            MalformedModelResponse: a 2xx answer that is not the API's JSON.
            CircuitOpenError: the endpoint's breaker is open.
            ModelError: the endpoint could not be reached.
        """
        if self.streaming:
            async with contextlib.aclosing(self.stream(request)) as events:
                return await collect(events)
        body = self.build_body(request)
        try:
            with trio.move_on_after(self.timeout) as scope:
                return await self._send(body, request)
        except ModelError as error:
            self._scrub(error)
            raise
        assert scope.cancelled_caught
        raise ModelTimeout(
            f"model {self.model!r} did not answer within {self.timeout} s", endpoint=self.endpoint
        )

    def _scrub(self, error: BaseException) -> None:
        """Redact the API key from the ``args`` of ``error`` and of its causes."""
        seen: set[int] = set()
        current: BaseException | None = error
        while current is not None and id(current) not in seen:
            seen.add(id(current))
            current.args = tuple(
                self.redact(arg) if isinstance(arg, str) else arg for arg in current.args
            )
            current = current.__cause__ or current.__context__

    async def _send(self, body: dict[str, Any], request: ModelRequest) -> ModelResponse:
        policy = self.retry
        last_error: ModelError | None = None
        for attempt in range(policy.max_attempts):
            if attempt:
                self._retries += 1
            self._attempts += 1
            answer, error = await self._attempt(body)
            if answer is not None:
                return self.parse_body(answer.content, answer.status, request)
            assert error is not None
            last_error = error
            if attempt + 1 >= policy.max_attempts:
                break
            delay = policy.backoff.delay(attempt, self._rng.random())
            if isinstance(error, ModelRateLimited) and error.retry_after is not None:
                delay = min(error.retry_after, policy.max_retry_after)
            logger.info(
                "model %s attempt %d failed (%s); retrying in %.2f s",
                self.endpoint,
                attempt + 1,
                type(error).__name__,
                delay,
            )
            await trio.sleep(delay)
        assert last_error is not None
        raise last_error

    async def _attempt(self, body: dict[str, Any]) -> tuple[_Answer | None, ModelError | None]:
        """One attempt: the 2xx answer, or the retryable error. Raises what is final."""
        breaker = self.breaker
        breaker.acquire_nowait()
        endpoint = self.endpoint
        try:
            attempt_timeout = math.inf if self.attempt_timeout is None else self.attempt_timeout
            with trio.move_on_after(attempt_timeout) as scope:
                answer = await self._post(body)
            if scope.cancelled_caught:
                breaker.record_failure()
                return None, ModelTimeout(
                    f"model endpoint {endpoint} did not answer within {self.attempt_timeout} s",
                    endpoint=endpoint,
                )
        except _transport_error() as exc:
            breaker.record_failure()
            return None, ModelError(
                f"cannot reach model endpoint {endpoint}: {type(exc).__name__}", endpoint=endpoint
            )
        except MalformedModelResponse:
            breaker.record_failure()
            raise
        except BaseException:
            breaker.release()
            raise
        return self._judge(answer)

    def _judge(self, answer: _Answer) -> tuple[_Answer | None, ModelError | None]:
        """Tell the breaker how an attempt that got an answer went: the 2xx answer, or
        the retryable error. Raises what is final."""
        breaker = self.breaker
        endpoint = self.endpoint
        status = answer.status
        logger.debug("model %s answered %d", endpoint, status)
        if 200 <= status < 300:
            breaker.record_success()
            return answer, None
        excerpt = _error_excerpt(answer.content)
        if status == 429:
            breaker.release()
            limited = ModelRateLimited(
                f"model endpoint {endpoint} is rate limiting (429): {excerpt}",
                endpoint=endpoint,
                status=status,
            )
            limited.retry_after = _retry_after(answer.retry_after)
            return None, limited
        if status >= 500:
            breaker.record_failure()
        else:
            breaker.record_success()
        if status in (401, 403):
            raise ModelAuthError(
                f"model endpoint {endpoint} refused the credentials ({status}): {excerpt}",
                endpoint=endpoint,
                status=status,
            )
        error = ModelHTTPError(
            f"model endpoint {endpoint} answered {status}: {excerpt}",
            endpoint=endpoint,
            status=status,
        )
        if status in self.retry.retry_statuses:
            return None, error
        raise error

    async def _post(self, body: dict[str, Any]) -> _Answer:
        """POST ``body`` and read the answer under the size cap (redacted at once).

        Raises:
            ModelResponseTooLarge: a 2xx answer past ``max_response_bytes``, stacked
                content-encodings or a compression bomb.
        """
        endpoint = self.endpoint
        headers = self.build_headers()
        headers["accept-encoding"] = DECODABLE_ENCODINGS
        async with self._get_client().stream(
            "POST", endpoint, json=body, headers=headers
        ) as response:
            status = response.status_code
            ok = 200 <= status < 300
            limit = (
                self.max_response_bytes if ok else min(ERROR_BODY_BYTES, self.max_response_bytes)
            )
            try:
                read = await read_decoded_body(response, BodyLimits(limit))
            except ResponseBodyRejected as exc:
                raise self._too_large(f"a body that was refused: {exc}", status) from None
            if read.truncated and ok:
                raise self._too_large(
                    f"more than max_response_bytes={self.max_response_bytes} bytes; "
                    "the answer was cut off there",
                    status,
                )
            content = read.content
            if self._secret is not None:
                content = self._secret.redact_bytes(content)
            return _Answer(status, content, response.headers.get("retry-after"))

    def _too_large(self, what: str, status: int) -> ModelResponseTooLarge:
        error = ModelResponseTooLarge(
            f"model endpoint {self.endpoint} answered {what}", endpoint=self.endpoint, status=status
        )
        error.limit = self.max_response_bytes
        return error

    def parse_body(
        self, content: bytes, status: int = 200, request: ModelRequest | None = None
    ) -> ModelResponse:
        """The :class:`ModelResponse` in a 2xx answer's body: strict JSON, then
        :meth:`parse_response`.

        Raises:
            MalformedModelResponse: whatever is wrong with it (never another error).
        """
        data = loads_strict(self.endpoint, content, f"{status} with a body")
        secret = self._secret
        if secret is not None:
            data = secret.redact_value(data)  # a key escaped in the JSON shows only now
        try:
            response = self.parse_response(data, request)
            if secret is not None:  # and arguments sent as a JSON string, only now
                response = attrs.evolve(
                    response,
                    text=secret.redact(response.text),
                    tool_calls=tuple(
                        ToolCall(
                            secret.redact(call.id),
                            secret.redact(call.name),
                            secret.redact_value(call.arguments),
                        )
                        for call in response.tool_calls
                    ),
                )
            return response
        except MalformedModelResponse:
            raise
        except (
            KeyError,
            IndexError,
            TypeError,
            ValueError,
            AttributeError,
            OverflowError,
            RecursionError,
        ) as exc:
            raise MalformedModelResponse(
                f"model endpoint {self.endpoint} answered JSON of the wrong shape: "
                f"{type(exc).__name__}: {str(exc)[:200]}",
                endpoint=self.endpoint,
                status=status,
            ) from None

    # -- streaming --------------------------------------------------------------------

    def build_stream_body(self, request: ModelRequest) -> dict[str, Any]:
        """The JSON body asking for ``request``'s answer as server-sent events."""
        raise NotImplementedError

    def new_stream(self, request: ModelRequest) -> StreamAssembler:
        """A fresh assembler of the events answering ``request``."""
        raise NotImplementedError

    async def stream(self, request: ModelRequest) -> AsyncGenerator[ModelStreamEvent, None]:
        """Send ``request`` asking for a streamed answer; yield text and tool-call
        fragments as they arrive, then :class:`ResponseCompleted`.

        Retries, backoff and the breaker work as for :meth:`complete` until the answer
        starts; once events flow a failure is raised, never retried (the answer is
        being paid for). ``timeout`` bounds the whole stream; ``attempt_timeout`` bounds
        the wait for the answer to start and every silence between chunks, so a long
        answer that keeps coming never times out on it. The body is cut at
        ``max_response_bytes`` (→ :class:`ModelResponseTooLarge`); a compressed stream
        is refused. A server that ignores the request for a stream and answers JSON is
        read as :meth:`complete` would. Close the generator to cancel the request.

        Raises:
            As :meth:`complete`.
        """
        body = self.build_stream_body(request)
        deadline = trio.current_time() + self.timeout
        try:
            response = await self._open_stream(body, deadline)
            try:
                if not _is_event_stream(response.headers.get("content-type", "")):
                    answer = await self._read_whole(response, deadline)
                    whole = self.parse_body(answer.content, answer.status, request)
                    for event in events_of(whole):
                        yield event
                    return
                assembler = self.new_stream(request)
                decoder = SSEDecoder(self.endpoint, self.max_response_bytes)
                received = 0
                idle = math.inf if self.attempt_timeout is None else self.attempt_timeout
                async with _closing_chunks(response) as chunks:
                    while not assembler.done:
                        with trio.move_on_at(min(deadline, trio.current_time() + idle)) as scope:
                            chunk = await anext(chunks, None)
                        if scope.cancelled_caught:
                            raise self._stalled(deadline)
                        if chunk is None:
                            break
                        received += len(chunk)
                        if received > self.max_response_bytes:
                            raise self._too_large(
                                f"a stream longer than max_response_bytes="
                                f"{self.max_response_bytes}; it was cut off there",
                                response.status_code,
                            )
                        for sse in decoder.feed(chunk):
                            for event in assembler.feed(self._redacted(sse)):
                                yield event
                for sse in decoder.flush():
                    for event in assembler.feed(self._redacted(sse)):
                        yield event
                yield ResponseCompleted(assembler.finish())
            finally:
                with trio.CancelScope(shield=True):
                    await response.aclose()
        except ModelError as error:
            self._scrub(error)
            raise

    def _redacted(self, event: ServerSentEvent) -> ServerSentEvent:
        if self._secret is None:
            return event
        return ServerSentEvent(event.event, self._secret.redact(event.data))

    def _stalled(self, deadline: float) -> ModelTimeout:
        if trio.current_time() >= deadline:
            what = f"did not finish its answer within {self.timeout} s"
        else:
            what = f"sent nothing for {self.attempt_timeout} s in the middle of its answer"
        return ModelTimeout(f"model endpoint {self.endpoint} {what}", endpoint=self.endpoint)

    async def _read_whole(self, response: httpx.Response, deadline: float) -> _Answer:
        """A 2xx answer that is not a stream, read under the size cap."""
        with trio.move_on_at(deadline) as scope:
            try:
                read = await read_decoded_body(response, BodyLimits(self.max_response_bytes))
            except ResponseBodyRejected as exc:
                raise self._too_large(
                    f"a body that was refused: {exc}", response.status_code
                ) from None
        if scope.cancelled_caught:
            raise self._stalled(deadline)
        if read.truncated:
            raise self._too_large(
                f"more than max_response_bytes={self.max_response_bytes} bytes; "
                "the answer was cut off there",
                response.status_code,
            )
        content = read.content
        if self._secret is not None:
            content = self._secret.redact_bytes(content)
        return _Answer(response.status_code, content, None)

    async def _open_stream(self, body: dict[str, Any], deadline: float) -> httpx.Response:
        """The 2xx response whose body is the stream, after retries as needed."""
        policy = self.retry
        last_error: ModelError | None = None
        for attempt in range(policy.max_attempts):
            if attempt:
                self._retries += 1
            self._attempts += 1
            response, error = await self._stream_attempt(body, deadline)
            if response is not None:
                return response
            assert error is not None
            last_error = error
            if attempt + 1 >= policy.max_attempts:
                break
            delay = policy.backoff.delay(attempt, self._rng.random())
            if isinstance(error, ModelRateLimited) and error.retry_after is not None:
                delay = min(error.retry_after, policy.max_retry_after)
            if trio.current_time() + delay >= deadline:
                break
            await trio.sleep(delay)
        if trio.current_time() >= deadline or last_error is None:
            raise self._stalled(deadline)
        raise last_error

    async def _stream_attempt(
        self, body: dict[str, Any], deadline: float
    ) -> tuple[httpx.Response | None, ModelError | None]:
        """One attempt at starting a stream: the 2xx response, or the retryable error."""
        breaker = self.breaker
        breaker.acquire_nowait()
        endpoint = self.endpoint
        client = self._get_client()
        headers = self.build_headers()
        headers["accept"] = "text/event-stream"
        headers["accept-encoding"] = "identity"  # a compressed stream could be a bomb
        request = client.build_request("POST", endpoint, json=body, headers=headers)
        attempt_timeout = math.inf if self.attempt_timeout is None else self.attempt_timeout
        response: httpx.Response | None = None
        refused: _Answer | None = None
        try:
            with trio.move_on_at(min(deadline, trio.current_time() + attempt_timeout)) as scope:
                response = await client.send(request, stream=True)
                if not 200 <= response.status_code < 300:
                    limit = min(ERROR_BODY_BYTES, self.max_response_bytes)
                    read = await read_decoded_body(response, BodyLimits(limit))
                    await response.aclose()
                    content = read.content
                    if self._secret is not None:
                        content = self._secret.redact_bytes(content)
                    refused = _Answer(
                        response.status_code, content, response.headers.get("retry-after")
                    )
            if scope.cancelled_caught:
                breaker.record_failure()
                if response is not None:
                    with trio.CancelScope(shield=True):
                        await response.aclose()
                return None, ModelTimeout(
                    f"model endpoint {endpoint} did not start answering within "
                    f"{self.attempt_timeout} s",
                    endpoint=endpoint,
                )
        except _transport_error() as exc:
            breaker.record_failure()
            return None, ModelError(
                f"cannot reach model endpoint {endpoint}: {type(exc).__name__}", endpoint=endpoint
            )
        except ResponseBodyRejected as exc:
            breaker.record_failure()
            raise self._too_large(f"an error body that was refused: {exc}", 0) from None
        except BaseException:
            breaker.release()
            if response is not None:
                with trio.CancelScope(shield=True):
                    await response.aclose()
            raise
        if refused is not None:
            return None, self._judge(refused)[1]  # not 2xx: an error or a raise
        assert response is not None
        encoding = response.headers.get("content-encoding", "identity").strip().lower()
        if encoding not in ("", "identity") and _is_event_stream(
            response.headers.get("content-type", "")
        ):
            breaker.record_failure()
            with trio.CancelScope(shield=True):
                await response.aclose()
            raise MalformedModelResponse(
                f"model endpoint {endpoint} sent a {encoding}-compressed stream although "
                "it was asked for none",
                endpoint=endpoint,
            )
        breaker.record_success()
        return response, None

    def statistics(self) -> HttpModelStatistics:
        """Attempts, retries and the breaker's state."""
        return HttpModelStatistics(self._attempts, self._retries, self.breaker.state.value)


@attrs.frozen
class HttpModelStatistics:
    """Counters of an :class:`HttpModel`."""

    attempts: int
    retries: int
    breaker_state: str
