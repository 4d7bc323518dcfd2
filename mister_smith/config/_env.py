"""Environment overrides: ``MISTER_SMITH__<SECTION>__<FIELD>=value``.

Names are case-insensitive and nest with more ``__``
(``MISTER_SMITH__ORCHESTRATION__AUTOSCALING__MAX_REPLICAS=20``). Values are text and
are read according to the field's type.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any, Final

import attrs

from ._agent import AgentConfig
from ._structure import Path, Report, settings_class
from ._typing import means_none, optional_inner

ENV_PREFIX: Final = "MISTER_SMITH__"
"""Environment variables whose upper-cased name starts with this override settings."""

_TRUE: Final = frozenset({"true", "1", "yes", "on"})
_FALSE: Final = frozenset({"false", "0", "no", "off"})


def parse_env_value(text: str, annotation: object) -> object:
    """Read the text of an environment variable as a value for a field of ``annotation``.

    Integers, floats and booleans (``true/false/1/0/yes/no/on/off``) are parsed, and
    ``none`` means ``None`` for optional fields; anything else stays text (durations,
    enums and strings are read from text by the converter). Text that does not parse is
    returned as it is, so that the converter reports it with the field's path.
    """
    inner = optional_inner(annotation)
    if inner is not None:
        if means_none(text):
            return None
        annotation = inner
    stripped = text.strip()
    if annotation is bool:
        folded = stripped.lower()
        return True if folded in _TRUE else False if folded in _FALSE else text
    if annotation is int:
        try:
            return int(stripped)
        except ValueError:
            return text
    if annotation is float:
        try:
            return float(stripped)
        except ValueError:
            return text
    return text


def apply_environment(tree: dict[str, Any], env: Mapping[str, str], report: Report) -> bool:
    """Write the ``MISTER_SMITH__*`` variables of ``env`` into ``tree`` (parsed TOML).

    Unknown names and conflicts are added to ``report``, under the variable's name.
    Returns whether any variable applied.
    """
    applied = False
    for name in sorted(env, key=str.upper):
        if not name.upper().startswith(ENV_PREFIX):
            _report_single_underscore(name, report)
            continue
        path = tuple(segment.lower() for segment in name[len(ENV_PREFIX) :].split("__"))
        applied = True
        if path in report.env_names:
            report.add_key(path, f"set twice, also by {report.env_names[path]}")
            continue
        report.env_names[path] = name
        target = _resolve(path, report)
        if target is None:
            continue
        value = _value_for(target, env[name], path, report)
        if value is not _SKIP:
            _insert(tree, path, value, report)
    return applied


class _Skip:
    """Marks an environment variable that was reported and is not applied."""


_SKIP: Final = _Skip()


def _resolve(path: Path, report: Report) -> attrs.Attribute[Any] | None:
    """The field ``path`` names, or ``None`` after reporting why there is none."""
    cls: type = AgentConfig
    for depth, segment in enumerate(path, start=1):
        fields = attrs.fields_dict(cls)
        field = fields.get(segment)
        if field is None:
            close = difflib.get_close_matches(segment, list(fields), n=1)
            hint = (
                f" (did you mean {_env_name((*path[: depth - 1], close[0], *path[depth:]))}?)"
                if close
                else ""
            )
            report.add_key(path, f"unknown setting {'.'.join(path[:depth])!r}{hint}")
            return None
        section = settings_class(field.type)
        if depth == len(path):
            return field
        if section is None:
            report.add_key(path, f"{'.'.join(path[:depth])!r} is a setting, not a table")
            return None
        cls = section
    return None  # not reached: the last segment returns above


def _env_name(path: Path) -> str:
    """The variable that sets ``path``: ``MISTER_SMITH__MONITORING__HTTP_PORT``."""
    return ENV_PREFIX + "__".join(segment.upper() for segment in path)


def _report_single_underscore(name: str, report: Report) -> None:
    """Report ``MISTER_SMITH_<SECTION>_...``: a setting spelt with single underscores.

    Such a variable would otherwise be silently ignored. Only names that start with a
    section of the configuration count (``MISTER_SMITH_HYPOTHESIS_PROFILE`` is not one).
    """
    single = ENV_PREFIX[:-1]
    if not name.upper().startswith(single) or name.upper().startswith(ENV_PREFIX):
        return
    rest = name[len(single) :].lower()
    path: list[str] = []
    cls: type | None = AgentConfig
    while cls is not None and rest:
        # The longest field name that ``rest`` starts with (``max_restart_attempts``).
        names = sorted(attrs.fields_dict(cls), key=len, reverse=True)
        match = next((f for f in names if rest == f or rest.startswith(f + "_")), None)
        if match is None:
            break
        path.append(match)
        rest = rest[len(match) :].lstrip("_")
        cls = settings_class(attrs.fields_dict(cls)[match].type)
    if not path:
        return
    if not rest and cls is None:
        hint = f"did you mean {_env_name(tuple(path))}?"
    else:
        hint = f"settings are spelt {ENV_PREFIX}{path[0].upper()}__<SETTING>"
    report.problems.append(
        f"{name}: not read: a setting needs double underscores after MISTER_SMITH "
        f"and between its parts ({hint})"
    )


def _value_for(field: attrs.Attribute[Any], text: str, path: Path, report: Report) -> object:
    if settings_class(field.type) is None:
        return parse_env_value(text, field.type)
    if optional_inner(field.type) is not None and means_none(text):
        return None
    report.add(path, f"is a table; set its keys as {report.env_names[path]}__<KEY>", text)
    return _SKIP


def _insert(tree: dict[str, Any], path: Path, value: object, report: Report) -> None:
    node = tree
    for depth, segment in enumerate(path[:-1], start=1):
        child = node.get(segment)
        if segment in node and child is None:  # an environment variable set it to none
            other = report.env_names.get(path[:depth], "another variable")
            report.add_key(path, f"conflicts with {other}, which removes the whole table")
            return
        if segment not in node or means_none(child):
            child = node[segment] = {}
        elif not isinstance(child, dict):
            return  # the file's own value is wrong there; that is reported instead
        node = child
    node[path[-1]] = value
