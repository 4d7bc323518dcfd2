"""An incremental, bounded reader of server-sent events (``text/event-stream``).

Bytes go in as they arrive (:meth:`SSEDecoder.feed`), complete events come out; an
event's data may not exceed ``max_event_bytes`` (a line that never ends is refused
there, not buffered without bound). Comments (``:``), ``id`` and ``retry`` fields are
ignored; several ``data`` lines are joined with newlines, as the standard says.
"""

from __future__ import annotations

import attrs

from ._errors import MalformedModelResponse


@attrs.frozen
class ServerSentEvent:
    """One event: its name (``"message"`` when unnamed) and its data."""

    event: str
    data: str


class SSEDecoder:
    """Turns chunks of a ``text/event-stream`` body into :class:`ServerSentEvent` s.

    Args:
        endpoint: Named in errors.
        max_event_bytes: Longest line or event data accepted.
    """

    def __init__(self, endpoint: str, max_event_bytes: int) -> None:
        self.endpoint = endpoint
        self.max_event_bytes = max_event_bytes
        self._pending = b""
        self._event = ""
        self._data: list[str] = []
        self._size = 0

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        """The events completed by ``chunk``.

        Raises:
            MalformedModelResponse: a line or an event longer than ``max_event_bytes``,
                or bytes that are not UTF-8.
        """
        self._pending += chunk
        events: list[ServerSentEvent] = []
        while True:
            cut = _line_end(self._pending)
            if cut is None:
                break
            end, after = cut
            line, self._pending = self._pending[:end], self._pending[after:]
            event = self._line(line)
            if event is not None:
                events.append(event)
        if len(self._pending) > self.max_event_bytes:
            raise self._too_long()
        return events

    def flush(self) -> list[ServerSentEvent]:
        """The last event, if the body ended without the blank line after it."""
        return self.feed(b"\n\n") if self._pending or self._data else []

    def _line(self, raw: bytes) -> ServerSentEvent | None:
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise MalformedModelResponse(
                f"model endpoint {self.endpoint} streamed bytes that are not UTF-8",
                endpoint=self.endpoint,
            ) from None
        if not line:
            if not self._data:
                self._event = ""
                return None
            event = ServerSentEvent(self._event or "message", "\n".join(self._data))
            self._event, self._data, self._size = "", [], 0
            return event
        if line.startswith(":"):
            return None
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "data":
            self._size += len(value) + 1
            if self._size > self.max_event_bytes:
                raise self._too_long()
            self._data.append(value)
        elif field == "event":
            self._event = value
        return None

    def _too_long(self) -> MalformedModelResponse:
        return MalformedModelResponse(
            f"model endpoint {self.endpoint} streamed an event longer than "
            f"{self.max_event_bytes} bytes",
            endpoint=self.endpoint,
        )


def _line_end(buffer: bytes) -> tuple[int, int] | None:
    """Where the first line of ``buffer`` ends and the next begins (``\\n``, ``\\r\\n``
    or ``\\r``); ``None`` when no line is complete (a trailing ``\\r`` waits)."""
    newline = buffer.find(b"\n")
    carriage = buffer.find(b"\r")
    if carriage == -1 or (newline != -1 and newline < carriage):
        return None if newline == -1 else (newline, newline + 1)
    if carriage + 1 == len(buffer):
        return None  # a "\r\n" may be split across chunks
    if buffer[carriage + 1 : carriage + 2] == b"\n":
        return carriage, carriage + 2
    return carriage, carriage + 1
