"""Payloads kept for later (event history, dead-letter log) are bounded by bytes.

A record that outlives its moment — an event in the history ring buffer, a dead letter
in the actor system's log — must not keep a megabyte message alive: 401 dead letters
of 1 MiB each were 401 MiB resident after their actor was gone. So what is kept is
measured (:func:`payload_size`, an estimate that stops counting past the limit) and,
past :data:`DEFAULT_PAYLOAD_LIMIT`, replaced by a :class:`PayloadPreview`: the type
name, the estimated size and the head of its ``repr``. Strings are cut instead, so a
``str`` field stays a ``str``.
"""

from __future__ import annotations

import collections
import enum
import itertools
import reprlib
import sys
import uuid
from collections.abc import Mapping
from typing import Any, Final

import attrs

DEFAULT_PAYLOAD_LIMIT: Final = 8 * 1024
"""Bytes a kept payload may take before only its preview is kept (8 KiB)."""

PREVIEW_CHARS: Final = 200
"""Characters of ``repr`` a :class:`PayloadPreview` keeps."""

MAX_WALK: Final = 10_000
"""Objects :func:`payload_size` visits at most; a payload with more is over any limit."""

_ATOMIC: Final = (int, float, complex, bool, type(None), enum.Enum, uuid.UUID)
_LEAVES: Final = frozenset(
    {int, float, complex, bool, type(None), uuid.UUID, str, bytes, bytearray, range}
)
"""Types whose ``sys.getsizeof`` is all they hold (exact types; subclasses are walked)."""
_SEQUENCES: Final = frozenset({list, tuple, set, frozenset, collections.deque})


@attrs.frozen
class PayloadPreview:
    """What is kept of a payload too large to keep: enough to recognise it.

    Attributes:
        type_name: The payload's qualified type name, e.g. ``"builtins.bytes"``.
        size: Its estimated size in bytes (at least; counting stops past the limit
            for deep containers, see :func:`payload_size`).
        preview: The head of its ``repr``, at most :data:`PREVIEW_CHARS` characters.
    """

    type_name: str
    size: int
    preview: str

    def __str__(self) -> str:
        return f"<{self.type_name} of ~{self.size} bytes: {self.preview}>"


def payload_size(value: object, limit: int = DEFAULT_PAYLOAD_LIMIT) -> int:
    """Estimate the bytes ``value`` keeps alive, counting no further than past ``limit``.

    Walks containers, mappings, attrs instances and ``__dict__`` s (each object once),
    adding ``sys.getsizeof``; a ``memoryview`` counts its buffer. It stops as soon as
    the total passes ``limit`` or :data:`MAX_WALK` objects were visited, and then
    returns a value ``> limit``, so the cost is bounded by the limit, not the payload.
    An object whose size or contents cannot be read (its ``__sizeof__`` or iteration
    raises) also counts as past the limit: it never breaks the caller.
    """
    getsizeof = sys.getsizeof
    total = 0
    visited = 0
    seen: set[int] = set()
    stack: list[object] = [value]
    while stack:
        item = stack.pop()
        kind = type(item)
        visited += 1
        if kind in _LEAVES:
            total += getsizeof(item)
        elif kind is memoryview:
            total += item.nbytes  # type: ignore[attr-defined]
        elif id(item) in seen:
            continue
        else:
            seen.add(id(item))
            try:
                total += getsizeof(item, 64)
                _push_children(item, kind, stack, MAX_WALK - visited + 1)
            except Exception:  # a user object that cannot be walked (closed, broken)
                return limit + 1  # unknowable: over the limit, so kept only as a preview
        if total > limit or visited > MAX_WALK:
            return max(total, limit + 1)
    return total


def _push_children(item: object, kind: type, stack: list[object], room: int) -> None:
    """Add what ``item`` holds to ``stack`` (at most ``room`` objects)."""
    if kind is dict:
        mapping: Mapping[object, object] = item  # type: ignore[assignment]
        stack.extend(itertools.islice(itertools.chain(mapping.keys(), mapping.values()), room))
    elif kind in _SEQUENCES:
        stack.extend(itertools.islice(item, room))  # type: ignore[call-overload]
    elif isinstance(item, (*_ATOMIC, str, bytes, bytearray, range)):
        return  # enum members and subclasses of leaf types
    elif isinstance(item, Mapping):
        stack.extend(itertools.islice(itertools.chain(item.keys(), item.values()), room))
    elif isinstance(item, tuple(_SEQUENCES)):
        stack.extend(itertools.islice(item, room))  # type: ignore[call-overload]
    elif attrs.has(kind):
        stack.extend(getattr(item, field.name, None) for field in attrs.fields(kind))
    elif hasattr(item, "__dict__"):
        stack.extend(itertools.islice(vars(item).values(), room))


class _PreviewRepr(reprlib.Repr):
    """``reprlib.Repr`` that never builds the full ``repr`` of a large flat value."""

    def repr1(self, x: Any, level: int) -> str:
        """Slice bytes-like values before ``repr``; everything else as reprlib does."""
        if isinstance(x, bytes | bytearray):
            head = repr(bytes(x[: self.maxstring]))
            return head if len(x) <= self.maxstring else f"{head}...({len(x)} bytes)"
        if isinstance(x, memoryview):
            return f"<memoryview of {x.nbytes} bytes>"
        if isinstance(x, str) and len(x) > self.maxstring:
            return repr(x[: self.maxstring]) + f"...({len(x)} chars)"
        if isinstance(x, int) and not isinstance(x, bool) and x.bit_length() > 256:
            return f"<int of {x.bit_length()} bits>"
        return super().repr1(x, level)


def _preview_settings() -> reprlib.Repr:
    preview = _PreviewRepr()  # keyword arguments need Python 3.12
    preview.maxlevel = 3
    preview.maxdict = preview.maxlist = preview.maxtuple = 6
    preview.maxset = preview.maxfrozenset = preview.maxdeque = 6
    preview.maxstring = preview.maxother = 80
    return preview


_PREVIEW: Final = _preview_settings()


def preview_of(value: object, size: int | None = None) -> PayloadPreview:
    """A :class:`PayloadPreview` of ``value`` (``size`` if already measured)."""
    kind = type(value)
    try:
        text = _PREVIEW.repr(value)
    except Exception as exc:  # a broken __repr__ must not break dead-lettering
        text = f"<repr failed: {type(exc).__name__}>"
    return PayloadPreview(
        type_name=f"{kind.__module__}.{kind.__qualname__}",
        size=payload_size(value) if size is None else size,
        preview=text[:PREVIEW_CHARS],
    )


def cut_text(text: str, limit: int = DEFAULT_PAYLOAD_LIMIT) -> str:
    """``text`` if it has at most ``limit`` characters, else its head and its length.

    Counted in characters (a character takes 1 to 4 bytes in CPython).
    """
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... [cut: {len(text)} chars]"


def bounded_payload(value: object, limit: int = DEFAULT_PAYLOAD_LIMIT) -> object:
    """``value`` itself when it takes at most ``limit`` bytes, else what stands for it.

    A ``str`` is cut (:func:`cut_text`) so it stays a string; anything else larger than
    ``limit`` becomes a :class:`PayloadPreview`. Small values are returned unchanged
    (the same object), so small messages compare equal as before.
    """
    if isinstance(value, _ATOMIC):
        return value
    if isinstance(value, str):
        return cut_text(value, limit)
    size = payload_size(value, limit)
    return value if size <= limit else preview_of(value, size)
