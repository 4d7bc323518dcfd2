"""``config_converter``: the one cattrs converter of mister_smith, owned by config.

It is strict: a ``bool`` is not an ``int``, a string is not a number, unknown keys are
errors. It is also bounded: an integer must fit a C ``ssize_t`` (what ``deque``,
channels and thread sizes take) and a number must be finite, so a 400-digit integer or a
NaN is a :class:`ConfigValidationError` naming the key, not an ``OverflowError`` later.
Other layers reuse it to (un)structure their attrs messages.
"""

from __future__ import annotations

import enum
import math
import re
import sys
from typing import Any, Final

import cattrs

from mister_smith.errors import ConfigError
from mister_smith.types import TYPED_IDS

from ._agent import SETTINGS_CLASSES
from ._duration import Seconds, seconds_from
from ._structure import structure_settings
from ._typing import optional_inner

config_converter = cattrs.Converter(forbid_extra_keys=True)
"""The project's cattrs converter (never use the global one).

Hooks: strict ``int`` (within :data:`MAX_INTEGER`), finite ``float``, ``str`` and
``bool``; :data:`Seconds` from numbers or duration strings; enums by value (a
case-insensitive value or member name is also accepted); typed ids as their full UUID
string; the settings classes report every problem at once as
:class:`ConfigValidationError`.
"""


MAX_INTEGER: Final = sys.maxsize
"""The largest integer a setting may hold (2**63 - 1 on 64-bit platforms)."""

_DIGITS = re.compile(r"[+-]?\d[\d_]*", re.ASCII)


def _too_many_digits(value: object) -> bool:
    """Whether ``value`` is the text of an integer too long to fit :data:`MAX_INTEGER`."""
    if not isinstance(value, str):
        return False
    text = value.strip()
    digits = text.lstrip("+-").replace("_", "")
    return _DIGITS.fullmatch(text) is not None and len(digits) > len(str(MAX_INTEGER))


def _structure_int(value: object, _: type) -> int:
    if _too_many_digits(value):
        # E.g. environment text that int() refused: more digits than Python parses.
        raise ConfigError(f"integer out of range (at most {MAX_INTEGER} in magnitude)")
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError("expected an integer")
    if abs(value) > MAX_INTEGER:
        raise ConfigError(f"integer out of range (at most {MAX_INTEGER} in magnitude)")
    return value


def _structure_float(value: object, _: type) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError("expected a number")
    try:
        number = float(value)
    except OverflowError:
        raise ConfigError("number too large (must be a finite number)") from None
    if not math.isfinite(number):
        raise ConfigError("must be a finite number")
    return number


def _structure_str(value: object, _: type) -> str:
    if not isinstance(value, str):
        raise ConfigError("expected a string")
    return value


def _structure_bool(value: object, _: type) -> bool:
    if not isinstance(value, bool):
        raise ConfigError("expected true or false")
    return value


def _structure_seconds(value: object, _: object) -> float:
    return seconds_from(value)


def _structure_optional(value: object, annotation: object) -> object:
    if value is None:
        return None
    inner: Any = optional_inner(annotation)
    return config_converter.structure(value, inner)


def _is_enum(annotation: object) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, enum.Enum)


def _structure_enum(value: object, kind: type[enum.Enum]) -> enum.Enum:
    if isinstance(value, kind):
        return value
    if not isinstance(value, bool):
        try:
            return kind(value)
        except (ValueError, TypeError):
            pass
    if isinstance(value, str):
        folded = value.strip().lower()
        for member in kind:
            if folded in (str(member.value).lower(), member.name.lower()):
                return member
    choices = ", ".join(repr(member.value) for member in kind)
    raise ConfigError(f"expected one of {choices}")


def _unstructure_enum(member: enum.Enum) -> Any:
    return member.value


def _is_typed_id(annotation: object) -> bool:
    return annotation in TYPED_IDS


def _structure_typed_id(value: object, kind: Any) -> object:
    if isinstance(value, kind):
        return value
    if not isinstance(value, str):
        raise ConfigError(f"expected a {kind.__name__} (a UUID string)")
    try:
        return kind.parse(value)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def _unstructure_typed_id(typed_id: Any) -> str:
    return str(typed_id.uuid)


def _structure_settings_hook(raw: object, cls: type) -> object:
    return structure_settings(config_converter, cls, raw)


config_converter.register_structure_hook(int, _structure_int)
config_converter.register_structure_hook(float, _structure_float)
config_converter.register_structure_hook(str, _structure_str)
config_converter.register_structure_hook(bool, _structure_bool)
config_converter.register_structure_hook_func(
    lambda annotation: optional_inner(annotation) is not None, _structure_optional
)
config_converter.register_structure_hook_func(_is_enum, _structure_enum)
config_converter.register_unstructure_hook_func(_is_enum, _unstructure_enum)
config_converter.register_structure_hook_func(_is_typed_id, _structure_typed_id)
config_converter.register_unstructure_hook_func(_is_typed_id, _unstructure_typed_id)
config_converter.register_structure_hook_func(
    lambda annotation: annotation == Seconds, _structure_seconds
)
config_converter.register_unstructure_hook_func(lambda annotation: annotation == Seconds, float)
config_converter.register_structure_hook_func(
    lambda annotation: isinstance(annotation, type) and annotation in SETTINGS_CLASSES,
    _structure_settings_hook,
)
