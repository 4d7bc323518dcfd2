"""Recording the spans of a test and asserting on a trace's shape.

:class:`TraceRecorder` installs (once per process) an OpenTelemetry SDK provider with an
in-memory exporter as the global provider, so a runtime sampling at 1.0 records every
span; :meth:`TraceRecorder.shape` gives the tree of one trace as :class:`TraceShape`,
which prints as an indented outline and compares by names (and chosen attributes)::

    recorder = TraceRecorder.install()
    ...  # run the runtime with monitoring.trace_sampling_rate = 1.0
    assert recorder.trace_count() == 1
    print(recorder.shape().render())

Needs ``opentelemetry-sdk`` (a test dependency), imported only when installed.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

import attrs


@attrs.frozen
class TraceShape:
    """One span and the spans under it, in start order.

    Attributes:
        name: The span's name.
        attributes: Its attributes (those asked for).
        children: The spans whose parent it is.
    """

    name: str
    attributes: Mapping[str, Any] = attrs.field(factory=dict)
    children: tuple[TraceShape, ...] = ()

    def names(self) -> list[str]:
        """Every span name, depth first."""
        return [self.name, *(name for child in self.children for name in child.names())]

    def find(self, prefix: str) -> list[TraceShape]:
        """The spans (here and below) whose name starts with ``prefix``."""
        found = [self] if self.name.startswith(prefix) else []
        for child in self.children:
            found.extend(child.find(prefix))
        return found

    def render(self, indent: int = 0) -> str:
        """An indented outline of the names."""
        lines = ["  " * indent + self.name]
        lines.extend(child.render(indent + 1) for child in self.children)
        return "\n".join(lines)


class TraceRecorder:
    """The spans finished since :meth:`clear` (see the module docs)."""

    _installed: ClassVar[TraceRecorder | None] = None

    def __init__(self, exporter: Any) -> None:
        self._exporter = exporter

    @classmethod
    def install(cls) -> TraceRecorder:
        """The process's recorder, installing it the first time; cleared."""
        if cls._installed is None:
            trace: Any = importlib.import_module("opentelemetry.trace")
            sdk: Any = importlib.import_module("opentelemetry.sdk.trace")
            export: Any = importlib.import_module("opentelemetry.sdk.trace.export")
            memory: Any = importlib.import_module(
                "opentelemetry.sdk.trace.export.in_memory_span_exporter"
            )
            exporter = memory.InMemorySpanExporter()
            provider = trace.get_tracer_provider()
            if not isinstance(provider, sdk.TracerProvider):
                provider = sdk.TracerProvider()
                trace.set_tracer_provider(provider)
                provider = trace.get_tracer_provider()
            provider.add_span_processor(export.SimpleSpanProcessor(exporter))
            cls._installed = cls(exporter)
        cls._installed.clear()
        return cls._installed

    def clear(self) -> None:
        """Forget the spans recorded so far."""
        self._exporter.clear()

    def spans(self) -> list[Any]:
        """The finished spans (OpenTelemetry SDK ``ReadableSpan`` s), in end order."""
        return list(self._exporter.get_finished_spans())

    def trace_ids(self) -> list[int]:
        """The traces recorded, in the order their first span ended."""
        return list(dict.fromkeys(span.context.trace_id for span in self.spans()))

    def trace_count(self) -> int:
        """How many traces were recorded."""
        return len(self.trace_ids())

    def shape(self, trace_id: int | None = None, *, keep: Iterable[str] = ()) -> TraceShape:
        """The tree of one trace (default: the only one), keeping the attributes named
        in ``keep``.

        Raises:
            ValueError: no ``trace_id`` while several traces were recorded, or a trace
                with more than one root.
        """
        ids = self.trace_ids()
        if trace_id is None:
            if len(ids) != 1:
                raise ValueError(f"{len(ids)} traces were recorded; name the one to shape")
            trace_id = ids[0]
        spans = sorted(
            (span for span in self.spans() if span.context.trace_id == trace_id),
            key=lambda span: span.start_time,
        )
        known = {span.context.span_id for span in spans}
        kept = tuple(keep)

        def node(span: Any) -> TraceShape:
            children = [
                c
                for c in spans
                if c.parent is not None and c.parent.span_id == span.context.span_id
            ]
            attributes = {k: span.attributes[k] for k in kept if k in span.attributes}
            return TraceShape(span.name, attributes, tuple(node(c) for c in children))

        roots = [s for s in spans if s.parent is None or s.parent.span_id not in known]
        if len(roots) != 1:
            raise ValueError(f"trace {trace_id:032x} has {len(roots)} roots")
        return node(roots[0])
