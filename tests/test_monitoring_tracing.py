"""The tracer facade (sampling, errors, no-op without OpenTelemetry) and the log level."""

from __future__ import annotations

import importlib
import logging
import random
from typing import Any

import pytest
import trio
import trio.testing

from mister_smith.config import MonitoringSettings
from mister_smith.monitoring import (
    MESSAGE_SPAN,
    NOOP_SPAN,
    TOOL_SPAN,
    Tracer,
    _tracing,
    apply_log_level,
    opentelemetry_available,
    tracer,
)


@pytest.fixture
def exporter() -> Any:
    """An in-memory span exporter behind an SDK TracerProvider (skips without the SDK)."""
    pytest.importorskip("opentelemetry.sdk.trace")
    sdk_trace: Any = importlib.import_module("opentelemetry.sdk.trace")
    export: Any = importlib.import_module("opentelemetry.sdk.trace.export")
    memory: Any = importlib.import_module("opentelemetry.sdk.trace.export.in_memory_span_exporter")
    exporter = memory.InMemorySpanExporter()
    provider = sdk_trace.TracerProvider()
    provider.add_span_processor(export.SimpleSpanProcessor(exporter))
    exporter.provider = provider
    return exporter


def names(exporter: Any) -> list[str]:
    return [span.name for span in exporter.get_finished_spans()]


async def test_spans_are_recorded_with_attributes(exporter: Any) -> None:
    traced = tracer(sampling_rate=1.0, tracer_provider=exporter.provider)
    assert traced.enabled
    with traced.message_span("writer", {"text": "hi"}) as span:
        assert span.is_recording()
        span.set_attribute("extra", 1)
        with traced.tool_span("echo", "writer"):
            await trio.sleep(0)
    [tool, message] = exporter.get_finished_spans()
    assert (tool.name, message.name) == (TOOL_SPAN, MESSAGE_SPAN)
    assert message.attributes["mister_smith.actor"] == "writer"
    assert message.attributes["mister_smith.message_type"] == "dict"
    assert message.attributes["extra"] == 1
    assert tool.attributes["mister_smith.tool"] == "echo"
    assert tool.parent.span_id == message.context.span_id


async def test_errors_are_recorded_and_cancellation_is_not_an_error(exporter: Any) -> None:
    traced = tracer(sampling_rate=1.0, tracer_provider=exporter.provider)
    with pytest.raises(ValueError), traced.span("failing"):
        raise ValueError("bad input")
    with trio.move_on_after(0.01), traced.span("cancelled"):
        await trio.sleep_forever()
    failing, cancelled = exporter.get_finished_spans()
    assert failing.status.status_code.name == "ERROR"
    assert failing.status.description == "ValueError: bad input"
    assert [event.name for event in failing.events] == ["exception"]
    assert cancelled.status.status_code.name == "UNSET"
    assert cancelled.attributes["mister_smith.cancelled"] is True


def test_sampling_rate_is_applied_to_root_spans_and_followed_inside(exporter: Any) -> None:
    traced = Tracer(sampling_rate=0.5, tracer_provider=exporter.provider, rng=random.Random(7))
    recorded = 0
    for _ in range(200):
        with traced.span("root") as root, traced.span("child") as child:
            assert child.is_recording() == root.is_recording()
            recorded += root.is_recording()
    assert 70 < recorded < 130
    assert names(exporter).count("root") == recorded
    assert names(exporter).count("child") == recorded


def test_rate_zero_and_one(exporter: Any) -> None:
    never = tracer(sampling_rate=0.0, tracer_provider=exporter.provider)
    assert not never.enabled
    for _ in range(20):
        with never.span("nothing") as span:
            assert span is NOOP_SPAN
    always = tracer(sampling_rate=1.0, tracer_provider=exporter.provider)
    for _ in range(20):
        with always.span("everything"):
            pass
    assert names(exporter) == ["everything"] * 20


def test_a_foreign_parent_decides(exporter: Any) -> None:
    otel: Any = importlib.import_module("opentelemetry.trace")
    outer = otel.get_tracer("app", tracer_provider=exporter.provider)
    never = tracer(sampling_rate=0.0, tracer_provider=exporter.provider)
    with outer.start_as_current_span("request"), never.span("inside"):
        pass
    assert names(exporter) == ["inside", "request"]


def test_rate_comes_from_settings() -> None:
    assert tracer().sampling_rate == 0.1
    settings = MonitoringSettings(trace_sampling_rate=0.25)
    assert tracer(settings=settings).sampling_rate == 0.25
    assert tracer(settings=settings, sampling_rate=1.0).sampling_rate == 1.0
    with pytest.raises(ValueError):
        Tracer(sampling_rate=1.5)


def test_no_op_without_opentelemetry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_tracing, "_otel_trace", None)
    assert not opentelemetry_available()
    traced = tracer(sampling_rate=1.0)
    assert not traced.enabled
    with traced.message_span("writer", "hi") as span:
        assert span is NOOP_SPAN
        span.set_attribute("ignored", True)
        span.add_event("ignored")
        assert not span.is_recording()
    with pytest.raises(KeyError), traced.span("failing"):
        raise KeyError("passes through")


def test_apply_log_level() -> None:
    library = logging.getLogger("mister_smith")
    before = library.level
    try:
        assert apply_log_level("DEBUG") == logging.DEBUG
        assert logging.getLogger("mister_smith.supervision").getEffectiveLevel() == logging.DEBUG
        assert apply_log_level(MonitoringSettings(log_level="error")) == logging.ERROR
        assert library.level == logging.ERROR
        assert apply_log_level(logging.WARNING) == logging.WARNING
        with pytest.raises(ValueError, match="log level"):
            apply_log_level("verbose")
    finally:
        library.setLevel(before)
