"""Turn raw data (parsed TOML plus environment overrides) into settings objects.

Unlike a plain cattrs hook, this reports *every* problem, each under its full key path
(or the environment variable it came from), and starts every nested section from its
default instance, so a file only needs the keys it changes.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any, Final, TypeVar

import attrs
import cattrs

from mister_smith.errors import ConfigError

from ._agent import SETTINGS_CLASSES
from ._checks import order_issues, ordered_pairs, reason_for
from ._errors import ConfigValidationError, describe, issues_of
from ._typing import means_none, optional_inner

T = TypeVar("T")
Path = tuple[str, ...]


class _Failed:
    """Marks a value that could not be structured (its problem is already reported)."""


_FAILED: Final = _Failed()


@attrs.define
class Report:
    """Problems found so far, each labelled by its key path.

    Attributes:
        env_names: Key paths whose value came from the environment, with the
            variable's name, so that problems name the variable too.
        problems: The problems, one line each.
    """

    env_names: dict[Path, str] = attrs.field(factory=dict)
    problems: list[str] = attrs.field(factory=list)

    def label(self, path: Path) -> str:
        """``supervision.restart_window``, or ``MISTER_SMITH__... (supervision....)``."""
        dotted = ".".join(path) or "(top level)"
        variable = self.env_names.get(path)
        return f"{variable} ({dotted})" if variable else dotted

    def add(self, path: Path, reason: str, value: object) -> None:
        """Record that ``value`` at ``path`` is invalid because of ``reason``."""
        self.problems.append(describe(self.label(path), reason, value))

    def add_key(self, path: Path, reason: str) -> None:
        """Record a problem with the key at ``path`` itself (unknown, missing...)."""
        self.problems.append(f"{self.label(path)}: {reason}")


def settings_class(annotation: object) -> type | None:
    """The settings class a field holds (``X`` or ``X | None``), else ``None``."""
    for candidate in (annotation, optional_inner(annotation)):
        if candidate in SETTINGS_CLASSES:
            assert isinstance(candidate, type)
            return candidate
    return None


def structure_settings(
    converter: cattrs.Converter,
    cls: type[T],
    raw: object,
    *,
    report: Report | None = None,
    source: str | None = None,
) -> T:
    """Build ``cls`` from ``raw``, a mapping of its field names to raw values.

    Raises:
        ConfigValidationError: listing every problem found (also those already in
            ``report``).
    """
    report = Report() if report is None else report
    result = _settings(converter, cls, raw, (), None, report)
    if report.problems or isinstance(result, _Failed):
        raise ConfigValidationError(report.problems, source=source)
    assert isinstance(result, cls)
    return result


def _settings(
    converter: cattrs.Converter,
    cls: type,
    raw: object,
    path: Path,
    base: object,
    report: Report,
) -> object:
    if not isinstance(raw, Mapping):
        report.add(path, "expected a table", raw)
        return _FAILED
    fields = attrs.fields_dict(cls)
    ok = True
    for key in raw:
        if key not in fields:
            report.add_key((*path, str(key)), _unknown_key(str(key), fields))
            ok = False
    values: dict[str, Any] = {}
    for name, field in fields.items():
        if name in raw:
            value = _field_value(converter, field, raw[name], (*path, name), base, report)
            if isinstance(value, _Failed):
                ok = False
                continue
            values[name] = value
        elif base is not None:
            values[name] = getattr(base, name)
        elif field.default is attrs.NOTHING:
            report.add_key((*path, name), "missing required key")
            ok = False
    for issue in order_issues(cls, _settled(cls, raw, values)):
        report.add((*path, issue.field), issue.reason, issue.value)
        ok = False
    if not ok:
        return _FAILED
    try:
        return cls(**values)
    except ConfigValidationError as exc:  # not expected: everything was checked above
        for issue in issues_of(exc):
            report.add((*path, issue.field), issue.reason, issue.value)
        if not issues_of(exc):
            report.problems.extend(f"{report.label(path)}: {problem}" for problem in exc.problems)
        return _FAILED


def _field_value(
    converter: cattrs.Converter,
    field: attrs.Attribute[Any],
    raw: object,
    path: Path,
    owner: object,
    report: Report,
) -> object:
    """Structure and check one field; ``owner`` is the object being changed, if any."""
    optional = optional_inner(field.type) is not None
    if optional and means_none(raw):
        return None
    section = settings_class(field.type)
    if section is not None:
        # A nested section starts from its current (or default) value, not the class's
        # defaults: readiness and liveness probes, say, default to different endpoints.
        start = getattr(owner, field.name) if owner is not None else _default(field)
        base = start if isinstance(start, section) else None
        return _settings(converter, section, raw, path, base, report)
    annotation: Any = field.type
    try:
        value = converter.structure(raw, annotation)
    except (
        ConfigError,
        ValueError,
        TypeError,
        cattrs.BaseValidationError,
        cattrs.StructureHandlerNotFoundError,
    ) as exc:
        report.add(path, _reason(exc), raw)
        return _FAILED
    convert: Any = field.converter  # our converters are plain one-argument functions
    if convert is not None:
        value = convert(value)
    reason = reason_for(field, value)
    if reason is not None:
        report.add(path, reason, raw)
        return _FAILED
    return value


def _settled(cls: type, raw: Mapping[Any, Any], values: Mapping[str, object]) -> dict[str, object]:
    """The final values of the fields in ordered pairs, leaving out those that failed."""
    fields = attrs.fields_dict(cls)
    settled: dict[str, object] = {}
    for name in {name for pair in ordered_pairs(cls) for name in pair}:
        if name in values:
            settled[name] = values[name]
        elif name not in raw and fields[name].default is not attrs.NOTHING:
            settled[name] = _default(fields[name])
    return settled


def _default(field: attrs.Attribute[Any]) -> object:
    default: Any = field.default
    if isinstance(default, attrs.Factory):  # type: ignore[arg-type]
        return default.factory()
    return None if default is attrs.NOTHING else default


def _unknown_key(key: str, fields: Mapping[str, object]) -> str:
    close = difflib.get_close_matches(key, list(fields), n=1)
    if close:
        return f"unknown key (did you mean {close[0]!r}?)"
    return f"unknown key (expected one of: {', '.join(fields)})"


def _reason(error: Exception) -> str:
    if isinstance(error, cattrs.BaseValidationError):
        return "; ".join(cattrs.transform_error(error))
    return str(error) or type(error).__name__
