"""``ConfigValidationError``: every problem found in a configuration, reported at once."""

from __future__ import annotations

import functools
import reprlib
from collections.abc import Iterable
from typing import Any, Final

import attrs

from mister_smith.errors import ConfigError


@attrs.frozen
class Issue:
    """One invalid field of one settings object, before it is placed in a key path.

    Settings classes raise these (wrapped in :class:`ConfigValidationError`) from their
    validators; the loader re-labels them with the full key path or environment variable.

    Attributes:
        field: The attribute name, e.g. ``"restart_window"``.
        value: The offending value.
        reason: What is wrong, e.g. ``"must be > 0 seconds"``.
    """

    field: str
    value: object
    reason: str


class ConfigValidationError(ConfigError):
    """A configuration is invalid; :attr:`problems` lists everything that is wrong.

    Each problem names the full key path (``supervision.restart_window``) or, for
    values from the environment, the variable (``MISTER_SMITH__SUPERVISION__RESTART_WINDOW``)
    and the bad value. Being a :class:`~mister_smith.errors.ConfigError`, it is also a
    ``ValueError``.

    Attributes:
        problems: One human-readable line per problem, in the order they were found.
        source: Where the configuration came from (a file name, ``"<string>"``,
            ``"environment"``...), or ``None`` when it was built in Python.
    """

    problems: list[str]
    source: str | None

    def __init__(self, problems: Iterable[str], *, source: str | None = None) -> None:
        self.problems = list(problems)
        self.source = source
        self._issues: tuple[Issue, ...] = ()
        super().__init__(_summary(self.problems, source))

    def __reduce__(self) -> tuple[Any, ...]:
        # Rebuild from the problem list (not the summary in ``args``) when unpickled.
        rebuild = functools.partial(type(self), source=self.source)
        return (rebuild, (self.problems,), self.__dict__)


def _summary(problems: list[str], source: str | None) -> str:
    where = f" ({source})" if source else ""
    if len(problems) == 1:
        return f"invalid configuration{where}: {problems[0]}"
    lines = "".join(f"\n  - {problem}" for problem in problems)
    return f"invalid configuration{where}, {len(problems)} problems:{lines}"


class _ShortRepr(reprlib.Repr):
    """``reprlib.Repr`` that also survives integers too long for ``repr`` itself."""

    def repr_int(self, x: int, level: int) -> str:
        """A long ``int`` as its first and last digits; a huge one by its bit length."""
        try:
            return super().repr_int(x, level)
        except ValueError:  # more digits than sys.get_int_max_str_digits() allows
            return f"<int of {x.bit_length()} bits>"


def _short_repr_settings() -> reprlib.Repr:
    short = _ShortRepr()  # keyword arguments need Python 3.12
    short.maxlevel = 3
    short.maxdict = short.maxlist = short.maxtuple = short.maxset = 4
    short.maxstring = short.maxother = 60
    short.maxlong = 40
    return short


_SHORT: Final = _short_repr_settings()


_SHORT_MAX = 160
"""Longest quoted value in a problem, in characters."""


def short_repr(value: object) -> str:
    """``repr(value)`` cut to a few dozen characters and three levels of nesting.

    Problems quote the offending value; a 400-digit integer, a megabyte string or a
    list nested a thousand deep must still make one short line (and never recurse).
    Each part is cut by :mod:`reprlib`; the whole is cut again, since a few long parts
    side by side still add up.
    """
    text = _SHORT.repr(value)
    if len(text) > _SHORT_MAX:
        half = (_SHORT_MAX - 3) // 2
        text = f"{text[:half]}...{text[-half:]}"
    return text


def describe(label: str, reason: str, value: object) -> str:
    """The one-line form of a problem: ``"<label>: <reason>, got <short repr>"``."""
    return f"{label}: {reason}, got {short_repr(value)}"


def invalid_fields(owner: type, issues: Iterable[Issue]) -> ConfigValidationError:
    """The error a settings class raises for ``issues`` (labelled ``Owner.field``)."""
    found = tuple(issues)
    error = ConfigValidationError(
        describe(f"{owner.__name__}.{issue.field}", issue.reason, issue.value) for issue in found
    )
    error._issues = found
    return error


def issues_of(error: ConfigValidationError) -> tuple[Issue, ...]:
    """The structured issues behind ``error`` (empty if it was not raised by a validator)."""
    return error._issues
