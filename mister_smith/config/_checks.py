"""Field checks: attrs validators that can also just *say* what is wrong.

At construction a failed :class:`Check` raises :class:`ConfigValidationError` naming
``Class.field`` and the value. The loader instead asks :meth:`Check.reason` for every
field, so that it can report all problems of a file at once under their key paths.
"""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import attrs

from mister_smith.errors import ConfigError

from ._duration import seconds_from
from ._errors import Issue, invalid_fields

Rule = Callable[[object], str | None]
"""Returns why a value is invalid, or ``None`` when it is fine."""


@attrs.frozen
class Check:
    """An attrs validator built from a :data:`Rule`.

    Attributes:
        rule: Says why a value is invalid, or returns ``None``.
    """

    rule: Rule

    def __call__(self, instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
        """Raise :class:`ConfigValidationError` naming the field if ``value`` is invalid."""
        reason = self.rule(value)
        if reason is not None:
            raise invalid_fields(type(instance), [Issue(attribute.name, value, reason)])

    def reason(self, value: object) -> str | None:
        """Why ``value`` is invalid for this field, or ``None``."""
        return self.rule(value)


def reason_for(field: attrs.Attribute[Any], value: object) -> str | None:
    """Why ``value`` is invalid for ``field`` (``None`` if it is fine or unchecked)."""
    validator = field.validator
    return validator.reason(value) if isinstance(validator, Check) else None


def _or_none(rule: Rule, optional: bool) -> Rule:
    if not optional:
        return rule

    def check(value: object) -> str | None:
        if value is None:
            return None
        reason = rule(value)
        return None if reason is None else f"{reason} (or none)"

    return check


def _bounds(
    kind: str, minimum: float | None, maximum: float | None, exclusive_minimum: bool
) -> str:
    if minimum is not None and maximum is not None:
        opening = "(" if exclusive_minimum else "["
        return f"must be {kind} in {opening}{minimum}, {maximum}]"
    if minimum is not None:
        return f"must be {kind} {'>' if exclusive_minimum else '>='} {minimum}"
    if maximum is not None:
        return f"must be {kind} <= {maximum}"
    return f"must be {kind}"


def integer(
    minimum: int | None = None, maximum: int | None = None, *, optional: bool = False
) -> Check:
    """An ``int`` (never a ``bool``) within ``[minimum, maximum]``; maybe ``None``.

    Without a ``maximum`` the value must still fit a C ``ssize_t`` (``sys.maxsize``):
    what ``deque(maxlen=)``, channel sizes and thread sizes accept, so an accepted
    setting never overflows where it is used.
    """
    out_of_range = _bounds("an integer", minimum, maximum, exclusive_minimum=False)
    too_large = f"integer out of range (at most {sys.maxsize} in magnitude)"

    def rule(value: object) -> str | None:
        if isinstance(value, bool) or not isinstance(value, int):
            return "expected an integer"
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            return out_of_range
        if abs(value) > sys.maxsize:
            return too_large
        return None

    return Check(_or_none(rule, optional))


def number(
    minimum: float | None = None,
    maximum: float | None = None,
    *,
    exclusive_minimum: bool = False,
    optional: bool = False,
) -> Check:
    """A finite ``float`` (an ``int`` is accepted, a ``bool`` is not) within bounds."""
    out_of_range = _bounds("a number", minimum, maximum, exclusive_minimum)

    def rule(value: object) -> str | None:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return "expected a number"
        try:
            finite = math.isfinite(value)
        except OverflowError:  # an int beyond the float range
            return "number too large (must be a finite number)"
        if not finite:
            return "must be a finite number"
        too_low = minimum is not None and (
            value <= minimum if exclusive_minimum else value < minimum
        )
        if too_low or (maximum is not None and value > maximum):
            return out_of_range
        return None

    return Check(_or_none(rule, optional))


def duration(*, positive: bool, optional: bool = False) -> Check:
    """Seconds as a ``float`` (after :func:`~._duration.to_seconds`); ``> 0`` if ``positive``."""

    def rule(value: object) -> str | None:
        if not isinstance(value, float):
            try:
                seconds_from(value)
            except ConfigError as exc:
                return str(exc)
            return "expected a duration"
        if positive and value <= 0:
            return "must be a duration > 0 seconds"
        return None

    return Check(_or_none(rule, optional))


def one_of(choices: Iterable[str]) -> Check:
    """One of the strings ``choices`` (compared after the field's converter ran)."""
    options = tuple(choices)
    listed = ", ".join(repr(option) for option in options)

    def rule(value: object) -> str | None:
        if not isinstance(value, str):
            return f"expected a string, one of {listed}"
        return None if value in options else f"must be one of {listed}"

    return Check(rule)


def text(pattern: str, description: str, *, optional: bool = False) -> Check:
    """A string matching ``pattern`` completely; ``description`` says what that means."""
    compiled = re.compile(pattern)

    def rule(value: object) -> str | None:
        if not isinstance(value, str):
            return "expected a string"
        return None if compiled.fullmatch(value) else f"must be {description}"

    return Check(_or_none(rule, optional))


def instance_of(kind: type, *, optional: bool = False) -> Check:
    """An instance of ``kind`` (e.g. an enum or a nested settings class)."""

    def rule(value: object) -> str | None:
        if isinstance(value, kind):
            return None
        return f"expected a {kind.__name__}"

    return Check(_or_none(rule, optional))


OrderedPairs = tuple[tuple[str, str], ...]
"""Pairs ``(lower, upper)`` of fields of one settings class where ``lower <= upper``."""


def ordered_pairs(cls: type) -> OrderedPairs:
    """The ``(lower, upper)`` field pairs ``cls`` declares in its ``_ordered`` class variable."""
    pairs: OrderedPairs = getattr(cls, "_ordered", ())
    return pairs


def order_issues(cls: type, values: Mapping[str, object]) -> list[Issue]:
    """The pairs of :func:`ordered_pairs` that ``values`` (field name to value) break.

    A pair is only checked when both of its fields are in ``values``; the issue is
    reported on the ``lower`` field.
    """
    issues = []
    for lower, upper in ordered_pairs(cls):
        if lower in values and upper in values:
            low, high = values[lower], values[upper]
            if low > high:  # type: ignore[operator]
                issues.append(Issue(lower, low, f"must be <= {upper} ({high!r})"))
    return issues


def require_ordered(settings: object) -> None:
    """Raise :class:`ConfigValidationError` if ``settings`` breaks its ordered pairs.

    Settings classes with an ``_ordered`` class variable call this from
    ``__attrs_post_init__``.
    """
    cls = type(settings)
    values = {name: getattr(settings, name) for pair in ordered_pairs(cls) for name in pair}
    issues = order_issues(cls, values)
    if issues:
        raise invalid_fields(cls, issues)


def to_float(value: float) -> float:
    """attrs converter: store an ``int`` given for a ``float`` field as a ``float``.

    An ``int`` too large for a float is passed through unchanged, so that the field's
    validator reports it (naming the field) instead of ``OverflowError`` escaping.
    """
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            return float(value)
        except OverflowError:
            return value
    return value


def to_optional_float(value: float | None) -> float | None:
    """Like :func:`to_float`; ``None`` stays "not set"."""
    return None if value is None else to_float(value)


def to_lower(value: str) -> str:
    """attrs converter: case-insensitive choices are stored in lower case."""
    return value.lower() if isinstance(value, str) else value


def to_optional_text(value: str | None) -> str | None:
    """attrs converter: ``"none"`` (any case) means ``None`` for optional strings."""
    if isinstance(value, str) and value.strip().lower() == "none":
        return None
    return value
