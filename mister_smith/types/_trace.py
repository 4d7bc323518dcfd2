"""The W3C trace context a message carries from its sender to its handler.

``TRACEPARENT`` holds the ``traceparent`` of the span the current task is in (set by
the tracer in :mod:`mister_smith.monitoring` while a span is open). An actor ref reads
it when a message is sent and the actor sets it again around the handler, so the spans
the handler opens are children of the sender's: an ``ask`` and everything it causes
form one trace. It lives this low so actors can carry it without knowing about tracing.
"""

from __future__ import annotations

import contextvars
import re
from typing import Final

TRACEPARENT: Final[contextvars.ContextVar[str | None]] = contextvars.ContextVar(
    "mister_smith_traceparent", default=None
)
"""The current W3C ``traceparent`` (``None``: not in a trace)."""

_FORMAT: Final = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")


def parse_traceparent(value: str) -> tuple[int, int, bool] | None:
    """``(trace id, parent span id, sampled)`` of a version-00 ``traceparent``; ``None``
    when it is malformed (or has the all-zero ids the standard forbids)."""
    match = _FORMAT.match(value)
    if match is None:
        return None
    trace_id, span_id = int(match.group(1), 16), int(match.group(2), 16)
    if not trace_id or not span_id:
        return None
    return trace_id, span_id, bool(int(match.group(3), 16) & 1)


def format_traceparent(trace_id: int, span_id: int, sampled: bool) -> str:
    """A version-00 ``traceparent``."""
    return f"00-{trace_id:032x}-{span_id:016x}-{'01' if sampled else '00'}"
