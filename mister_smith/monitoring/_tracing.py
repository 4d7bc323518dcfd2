"""Tracing through the OpenTelemetry API: optional, sampled, and a no-op when absent.

:func:`tracer` returns a :class:`Tracer` whose :meth:`~Tracer.span` context manager
opens an OpenTelemetry span when ``opentelemetry-api`` is installed, and yields a
do-nothing span otherwise, so instrumented code never checks. Exporting (OTLP,
console...) is the application's business: configure an OpenTelemetry SDK
``TracerProvider`` globally or pass one to :func:`tracer`.

**Sampling.** Each *root* span (one with no mister_smith or OpenTelemetry span around
it) is recorded with probability ``sampling_rate`` (``trace_sampling_rate`` from
:class:`~mister_smith.config.MonitoringSettings`); the spans inside it follow its
decision, and a span inside someone else's OpenTelemetry span follows that span's
sampled flag. The decision is taken here, so it holds whatever sampler the SDK uses
(leave the SDK's at its default, always-on).

**One trace per request.** While a span is open its W3C ``traceparent`` is the current
:data:`~mister_smith.types.TRACEPARENT`; actor refs carry it on every message and the
actor restores it around the handler, where a span with no OpenTelemetry span around
it takes that ``traceparent`` as its parent (and its sampling decision). So an ``ask``
and everything it causes (tools, sub-agents, model calls) is one trace. The runtime
makes its tracer the :func:`active_tracer` of everything it runs, which is how agents
find it for their model-call spans (``gen_ai.*`` attributes).
"""

from __future__ import annotations

import contextvars
import importlib
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import AbstractContextManager, asynccontextmanager, contextmanager
from typing import Any, Final, Protocol

import trio

from ..actors import ActorContext
from ..config import MonitoringSettings
from ..types import TRACEPARENT, format_traceparent, parse_traceparent

AttributeValue = str | bool | int | float
"""What a span attribute may hold."""


def _load_opentelemetry() -> Any:
    try:
        return importlib.import_module("opentelemetry.trace")
    except ImportError:
        return None


_otel_trace: Any = _load_opentelemetry()

_sampled: contextvars.ContextVar[bool | None] = contextvars.ContextVar(
    "mister_smith_trace_sampled", default=None
)

_active: contextvars.ContextVar[Tracer | None] = contextvars.ContextVar(
    "mister_smith_active_tracer", default=None
)


def active_tracer() -> Tracer | None:
    """The tracer of the runtime this task runs in (``None``: not traced)."""
    return _active.get()


@asynccontextmanager
async def using_tracer(tracer: Tracer) -> AsyncIterator[Tracer]:
    """Make ``tracer`` the :func:`active_tracer` of the tasks started inside the block
    (the runtime opens its supervisors inside one)."""
    token = _active.set(tracer)
    try:
        await trio.lowlevel.checkpoint()
        yield tracer
    finally:
        _active.reset(token)


MESSAGE_SPAN: Final = "mister_smith.actor.message"
"""Name of the span around an actor handling one message."""

TOOL_SPAN: Final = "mister_smith.tool.call"
"""Name of the span around one tool call."""

MODEL_OPERATION: Final = "chat"
"""``gen_ai.operation.name`` of a model call (spans are named ``chat <model>``)."""


def opentelemetry_available() -> bool:
    """Whether ``opentelemetry-api`` is installed (spans are real, not no-ops)."""
    return _otel_trace is not None


class Span(Protocol):
    """The part of an OpenTelemetry span instrumented code may use."""

    def set_attribute(self, key: str, value: AttributeValue) -> object:
        """Attach one attribute."""
        ...

    def add_event(
        self, name: str, attributes: Mapping[str, AttributeValue] | None = None
    ) -> object:
        """Record a point-in-time event on the span."""
        ...

    def is_recording(self) -> bool:
        """Whether anything is recorded (``False`` for the no-op span)."""
        ...


class _NoopSpan:
    """Accepts everything, records nothing."""

    def set_attribute(self, key: str, value: AttributeValue) -> None:
        """Ignore the attribute."""

    def add_event(self, name: str, attributes: Mapping[str, AttributeValue] | None = None) -> None:
        """Ignore the event."""

    def is_recording(self) -> bool:
        """Never recording."""
        return False


NOOP_SPAN: Final[Span] = _NoopSpan()
"""The span yielded when tracing is off, unsampled, or OpenTelemetry is absent."""


class Tracer:
    """Opens sampled spans through the OpenTelemetry API (see the module docs).

    Args:
        name: Instrumentation scope name.
        sampling_rate: Probability in [0, 1] that a root span is recorded.
        tracer_provider: An OpenTelemetry ``TracerProvider`` (default: the global one).
        rng: Source of sampling decisions (for reproducible tests).
    """

    def __init__(
        self,
        name: str = "mister_smith",
        *,
        sampling_rate: float = 1.0,
        tracer_provider: Any = None,
        rng: random.Random | None = None,
    ) -> None:
        if not 0.0 <= sampling_rate <= 1.0:
            raise ValueError(f"sampling_rate must be in [0, 1], got {sampling_rate!r}")
        self.name = name
        self.sampling_rate = sampling_rate
        self._rng = rng or random.Random()
        self._api = _otel_trace
        self._tracer: Any = (
            None
            if self._api is None
            else self._api.get_tracer(name, tracer_provider=tracer_provider)
        )

    @property
    def enabled(self) -> bool:
        """Whether spans can be recorded at all (OpenTelemetry installed, rate > 0)."""
        return self._tracer is not None and self.sampling_rate > 0

    def _decide(self) -> tuple[bool, Any]:
        """Whether to record, and the parent context to start from (``None``: the
        current one): a ``traceparent`` carried by a message when no span is current."""
        decision = _sampled.get()
        context = self._api.get_current_span().get_span_context()
        if context.is_valid:
            return (bool(context.trace_flags.sampled) if decision is None else decision), None
        carried = TRACEPARENT.get()
        parsed = None if carried is None else parse_traceparent(carried)
        if parsed is not None:
            trace_id, span_id, sampled = parsed
            api = self._api
            parent = api.set_span_in_context(
                api.NonRecordingSpan(
                    api.SpanContext(
                        trace_id,
                        span_id,
                        is_remote=True,
                        trace_flags=api.TraceFlags(
                            api.TraceFlags.SAMPLED if sampled else api.TraceFlags.DEFAULT
                        ),
                    )
                )
            )
            return sampled, parent
        if decision is not None:
            return decision, None
        return self._rng.random() < self.sampling_rate, None

    @contextmanager
    def span(
        self, name: str, *, attributes: Mapping[str, AttributeValue] | None = None
    ) -> Iterator[Span]:
        """Open a span around a block (and make it current for the spans inside).

        An exception leaving the block is recorded on the span and sets its status
        to error; a Trio cancellation only sets the ``mister_smith.cancelled``
        attribute (being cancelled is not a failure).
        """
        if self._tracer is None:
            yield NOOP_SPAN
            return
        decision, parent = self._decide()
        token = _sampled.set(decision)
        carried = TRACEPARENT.get()
        context_token: contextvars.Token[str | None] | None = None
        try:
            if not decision:
                if carried is None:  # an unsampled root: its messages stay unsampled
                    context_token = TRACEPARENT.set(
                        format_traceparent(
                            self._rng.getrandbits(128) or 1, self._rng.getrandbits(64) or 1, False
                        )
                    )
                yield NOOP_SPAN
                return
            with self._tracer.start_as_current_span(
                name,
                context=parent,
                attributes=dict(attributes) if attributes else None,
                record_exception=False,
                set_status_on_exception=False,
            ) as span:
                own = span.get_span_context()
                context_token = TRACEPARENT.set(format_traceparent(own.trace_id, own.span_id, True))
                try:
                    yield span
                except Exception as exc:
                    span.record_exception(exc)
                    span.set_status(
                        self._api.Status(self._api.StatusCode.ERROR, f"{type(exc).__name__}: {exc}")
                    )
                    raise
                except trio.Cancelled:
                    span.set_attribute("mister_smith.cancelled", True)
                    raise
        finally:
            if context_token is not None:
                TRACEPARENT.reset(context_token)
            _sampled.reset(token)

    def model_span(
        self, system: str, model: str, *, max_tokens: int | None = None
    ) -> AbstractContextManager[Span]:
        """A span around one model call, named ``chat <model>`` with the OpenTelemetry
        GenAI attributes known before the call (record the response's with
        :func:`record_model_response`)."""
        attributes: dict[str, AttributeValue] = {
            "gen_ai.operation.name": MODEL_OPERATION,
            "gen_ai.system": system,
            "gen_ai.request.model": model,
        }
        if max_tokens is not None:
            attributes["gen_ai.request.max_tokens"] = max_tokens
        return self.span(f"{MODEL_OPERATION} {model}", attributes=attributes)

    def message_span(self, actor: str, message: object) -> AbstractContextManager[Span]:
        """A span around ``actor`` handling ``message`` (its type name is recorded)."""
        return self.span(
            MESSAGE_SPAN,
            attributes={
                "mister_smith.actor": actor,
                "mister_smith.message_type": type(message).__name__,
            },
        )

    def tool_span(self, tool: str, caller: str) -> AbstractContextManager[Span]:
        """A span around one call of ``tool`` by ``caller``."""
        return self.span(
            TOOL_SPAN, attributes={"mister_smith.tool": tool, "mister_smith.caller": caller}
        )


def record_model_response(
    span: Span,
    *,
    model: str,
    input_tokens: int,
    output_tokens: int,
    finish_reason: str,
) -> None:
    """Set the GenAI attributes of a model call's response on ``span``."""
    if not span.is_recording():
        return
    span.set_attribute("gen_ai.response.model", model)
    span.set_attribute("gen_ai.usage.input_tokens", input_tokens)
    span.set_attribute("gen_ai.usage.output_tokens", output_tokens)
    span.set_attribute("gen_ai.response.finish_reasons", finish_reason)


def tracer(
    name: str = "mister_smith",
    *,
    sampling_rate: float | None = None,
    settings: MonitoringSettings | None = None,
    tracer_provider: Any = None,
    rng: random.Random | None = None,
) -> Tracer:
    """A :class:`Tracer` sampling at ``sampling_rate`` (default: the settings'
    ``trace_sampling_rate``, 0.1)."""
    if sampling_rate is None:
        sampling_rate = (MonitoringSettings() if settings is None else settings).trace_sampling_rate
    return Tracer(name, sampling_rate=sampling_rate, tracer_provider=tracer_provider, rng=rng)


class TracingMiddleware:
    """Opens a span around each message an actor handles (the actors' middleware
    protocol); pass it to ``open_actor_system(middleware=...)`` or let the runtime add
    it when OpenTelemetry is installed."""

    def __init__(self, tracer: Tracer) -> None:
        self.tracer = tracer

    async def run(
        self,
        message: Any,
        ctx: ActorContext,
        handler: Callable[[Any, ActorContext], Awaitable[Any]],
    ) -> Any:
        """Run ``handler(message, ctx)`` inside a message span."""
        with self.tracer.message_span(ctx.name, message):
            return await handler(message, ctx)
