"""Strict reading of model answers: every way a body can be wrong is a
:class:`MalformedModelResponse`, never an ``OverflowError``, ``RecursionError`` or
``KeyError`` escaping from the adapter.

An endpoint (or anything answering in its name) controls the bytes, so nothing about
them is trusted: JSON must be standard (no ``NaN``/``Infinity``, finite numbers), nested
at most :data:`MAX_JSON_DEPTH` deep, token counts must be plausible integers, and error
texts quote the body only through bounded previews.
"""

from __future__ import annotations

import json
import math
import reprlib
from collections.abc import Mapping
from typing import Any

from ._errors import MalformedModelResponse

MAX_JSON_DEPTH = 64
"""Deepest nesting of arrays/objects accepted in a model answer (and in tool-call
arguments). Real answers nest a handful of levels; deeper data would only make later
recursive code (schema validation, ``json.dumps``, ``repr``) overflow the stack."""

MAX_TOKEN_COUNT = 1_000_000_000
"""Largest token count believed in a usage record: more than any model takes in a call."""

_PREVIEW = reprlib.Repr()
_PREVIEW.maxlevel = 2
_PREVIEW.maxstring = 80
_PREVIEW.maxother = 80
_PREVIEW.maxdict = 4
_PREVIEW.maxlist = 4


def preview(value: Any) -> str:
    """A short, bounded ``repr`` of ``value`` for error texts (never deep or long)."""
    try:
        return _PREVIEW.repr(value)
    except Exception:  # a pathological value must not hide the real error
        return f"<{type(value).__name__}>"


def malformed(endpoint: str, what: str) -> MalformedModelResponse:
    """A :class:`MalformedModelResponse` saying ``what`` is wrong."""
    return MalformedModelResponse(f"model endpoint {endpoint} answered {what}", endpoint=endpoint)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:40]} is out of range")
    return value


def _too_deep(data: Any, limit: int) -> bool:
    """Whether ``data`` nests lists/dicts more than ``limit`` deep (iteratively)."""
    stack: list[tuple[Any, int]] = [(data, 0)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            children: Any = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        if depth >= limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def _may_nest_deeply(content: bytes | str) -> bool:
    """Whether ``content`` has enough brackets to nest past :data:`MAX_JSON_DEPTH` (a
    cheap scan that spares small answers, such as stream chunks, the tree walk)."""
    if isinstance(content, str):
        return content.count("[") + content.count("{") > MAX_JSON_DEPTH
    return content.count(b"[") + content.count(b"{") > MAX_JSON_DEPTH


def loads_strict(endpoint: str, content: bytes | str, what: str = "a body") -> Any:
    """``content`` parsed as standard JSON, nested at most :data:`MAX_JSON_DEPTH` deep.

    Raises:
        MalformedModelResponse: not JSON, ``NaN``/``Infinity``, a number out of range,
            an integer with too many digits, or nesting too deep (``what`` names the
            part of the answer in the message).
    """
    try:
        data = json.loads(content, parse_constant=_reject_constant, parse_float=_finite_float)
    except RecursionError:
        raise malformed(endpoint, f"{what} nested too deeply to parse") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise malformed(endpoint, f"{what} that is not JSON: {exc}") from None
    if _may_nest_deeply(content) and _too_deep(data, MAX_JSON_DEPTH):
        raise malformed(endpoint, f"{what} nested more than {MAX_JSON_DEPTH} levels deep")
    return data


def parse_arguments(endpoint: str, raw: Any) -> dict[str, Any]:
    """Tool-call arguments: a JSON object, or a string holding one.

    Raises:
        MalformedModelResponse: anything else (a string that is not standard JSON, or
            JSON that is not an object).
    """
    if isinstance(raw, str):
        raw = loads_strict(endpoint, raw, "tool-call arguments") if raw.strip() else {}
    if not isinstance(raw, dict):
        raise malformed(endpoint, f"tool-call arguments that are not an object: {preview(raw)}")
    return raw


def token_count(endpoint: str, usage: Mapping[str, Any], key: str) -> int:
    """``usage[key]`` as a token count (missing or ``null``: 0).

    Raises:
        MalformedModelResponse: not an integer (an integral float such as ``12.0`` is
            accepted), negative, or above :data:`MAX_TOKEN_COUNT`.
    """
    value = usage.get(key)
    if value is None:
        return 0
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise malformed(endpoint, f"usage {key} that is not an integer: {preview(value)}")
    if not 0 <= value <= MAX_TOKEN_COUNT:
        raise malformed(endpoint, f"usage {key} out of range: {preview(value)}")
    return value


def optional_text(endpoint: str, data: Mapping[str, Any], key: str) -> str | None:
    """``data[key]`` when it is a string, ``None`` when missing or ``null``.

    Raises:
        MalformedModelResponse: any other type.
    """
    value = data.get(key)
    if value is None or isinstance(value, str):
        return value
    raise malformed(endpoint, f"{key} that is not text: {preview(value)}")
