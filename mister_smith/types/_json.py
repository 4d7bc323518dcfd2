"""Plain JSON: what a value must be to be written as JSON and read back the same."""

from __future__ import annotations

import enum
import math
from typing import Any


class JsonProblem(enum.Enum):
    """Why a value is not plain JSON (see :func:`plain_json_problem`)."""

    TOO_DEEP = "too deep"
    NON_FINITE = "non-finite number"
    NON_STRING_KEY = "non-string key"
    NOT_JSON = "not a JSON type"


def plain_json_problem(value: Any, max_depth: int) -> tuple[JsonProblem, str] | None:
    """The first way ``value`` is not plain JSON, with a description to follow a
    subject ("the body ...", "it ..."), or ``None`` when it is.

    Plain JSON here: ``None``, bools, ints, strings, finite floats, lists and tuples of
    plain JSON, and dicts with string keys, nested at most ``max_depth`` levels (the
    bound keeps the check itself from recursing without end). Codecs that must not
    turn NaN into ``null`` or a key ``1`` into ``"1"`` check with this first.
    """
    return _problem(value, max_depth, 0)


def _problem(value: Any, max_depth: int, depth: int) -> tuple[JsonProblem, str] | None:
    if depth > max_depth:
        return JsonProblem.TOO_DEEP, f"nests deeper than {max_depth} levels"
    if value is None or isinstance(value, bool | int | str):
        return None
    if isinstance(value, float):
        if math.isfinite(value):
            return None
        return JsonProblem.NON_FINITE, f"holds a non-finite number ({value!r})"
    if isinstance(value, list | tuple):
        for item in value:
            found = _problem(item, max_depth, depth + 1)
            if found is not None:
                return found
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                return JsonProblem.NON_STRING_KEY, f"has a non-string key {key!r}"
            found = _problem(item, max_depth, depth + 1)
            if found is not None:
                return found
        return None
    return JsonProblem.NOT_JSON, f"is a {type(value).__qualname__}"
