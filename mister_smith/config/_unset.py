"""Settings that are not set (``None``) in a dumped configuration: comments, not text.

TOML has no null. A setting whose value and default are both ``None`` is left out of
the dumped tables and named in a comment under its table (``# worker_threads = (not
set)``), so the file still shows every setting there is without a fake ``"none"``
string. Only a ``None`` that differs from its default (rare: it can only come from a
file or the environment saying ``none``) is still written as ``"none"``, because
leaving it out would load back the default.
"""

from __future__ import annotations

from typing import Any

import attrs

from ._structure import Path, settings_class

__all__ = ["drop_unset", "note_unset"]


def drop_unset(tree: dict[str, Any], cls: type, unset: dict[Path, list[str]]) -> dict[str, Any]:
    """``tree`` (an unstructured ``cls``) without its unset keys, which go to ``unset``."""
    return _drop(tree, cls, (), unset)


def _drop(
    tree: dict[str, Any], cls: type, path: Path, unset: dict[Path, list[str]]
) -> dict[str, Any]:
    fields = attrs.fields_dict(cls)
    kept: dict[str, Any] = {}
    for key, value in tree.items():
        field = fields.get(key)
        section = None if field is None else settings_class(field.type)
        if value is None:
            if field is not None and field.default is None:
                unset.setdefault(path, []).append(key)
            else:
                kept[key] = "none"
        elif isinstance(value, dict) and section is not None:
            kept[key] = _drop(value, section, (*path, key), unset)
        else:
            kept[key] = value
    return kept


def note_unset(text: str, unset: dict[Path, list[str]]) -> str:
    """``text`` (TOML) with a comment line per unset key after its table's header.

    A table without a header of its own (only sub-tables) gets one at the end, which
    TOML allows once its sub-tables are defined.
    """
    remaining = dict(unset)
    lines: list[str] = []
    for line in text.splitlines():
        lines.append(line)
        if line.startswith("[") and line.endswith("]") and not line.startswith("[["):
            path = tuple(line[1:-1].split("."))
            lines.extend(_comments(remaining.pop(path, [])))
    for path, keys in remaining.items():
        if path:
            lines.extend(["", f"[{'.'.join(path)}]"])
        lines.extend(_comments(keys))
    return "\n".join(lines) + "\n"


def _comments(keys: list[str]) -> list[str]:
    return [f"# {key} = (not set)" for key in keys]
