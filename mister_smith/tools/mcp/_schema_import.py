"""Turning an MCP tool's JSON Schema into our :class:`~mister_smith.tools.ToolSchema`.

A remote server's schema is untrusted input. Our validator enforces a subset of JSON
Schema (:data:`~mister_smith.tools._schema.SUPPORTED_KEYWORDS`); everything else is
*reported* as a :class:`SchemaIssue`, never silently ignored. In ``"relax"`` mode the
tool is registered without the keywords we cannot enforce (the server still validates
its own input, so this only moves some errors from our side to its side); in
``"refuse"`` mode a tool whose schema needs an unenforced keyword is not registered.

Some keywords are dropped whatever the mode because they restrict nothing (``$schema``,
``format``, ``x-...``), or because enforcing them here would hand the server a way to
stall our loop: a ``pattern`` is a regular expression chosen by the server, and a
catastrophic one run on a model's argument would block every task.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from .._schema import SUPPORTED_KEYWORDS, ToolSchema
from ._options import SchemaMode

MAX_DEPTH = 32
"""Nesting depth past which a subschema is not followed (deeper parts are reported)."""

MAX_NODES = 5_000
"""Subschemas one tool schema may hold; a larger one is refused whole."""

_ANNOTATIONS = frozenset({"description", "title", "default", "examples", "$comment"})
_RESTRICTS_NOTHING = frozenset(
    {
        "$schema",
        "$id",
        "$anchor",
        "$defs",
        "definitions",
        "format",
        "readOnly",
        "writeOnly",
        "deprecated",
        "contentMediaType",
        "contentEncoding",
    }
)
_JSON_TYPES = frozenset({"string", "integer", "number", "boolean", "null", "array", "object"})
_COUNTS = ("minItems", "maxItems", "minLength", "maxLength")
_BOUNDS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")


@attrs.frozen
class SchemaIssue:
    """One part of a remote schema our validator does not enforce.

    Attributes:
        path: Where, as a JSON pointer (``""`` for the root).
        keyword: The keyword concerned.
        reason: Why it was not kept.
        loosens: Whether leaving it out lets through arguments the schema forbids (what
            ``"refuse"`` mode refuses a tool for); ``False`` for keywords that restrict
            nothing, like ``format`` or ``$schema``.
    """

    path: str
    keyword: str
    reason: str
    loosens: bool = True

    def __str__(self) -> str:
        return f"{self.path or '/'}: {self.keyword}: {self.reason}"


@attrs.frozen
class ImportedSchema:
    """What became of a remote schema.

    Attributes:
        schema: The schema we validate arguments with, or ``None`` when the tool is
            refused.
        issues: Everything left out (and, when refused, why).
    """

    schema: ToolSchema | None
    issues: tuple[SchemaIssue, ...]

    @property
    def refused(self) -> bool:
        """The tool cannot be registered."""
        return self.schema is None


class _Refused(Exception):
    pass


@attrs.define
class _Walk:
    mode: SchemaMode
    issues: list[SchemaIssue] = attrs.field(factory=list)
    nodes: int = 0

    def report(self, path: str, keyword: str, reason: str, *, loosens: bool = True) -> None:
        self.issues.append(SchemaIssue(path, keyword, reason, loosens))
        if loosens and self.mode == "refuse":
            raise _Refused

    def schema(self, node: object, path: str, depth: int) -> dict[str, Any]:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            self.issues.append(SchemaIssue(path, "", f"more than {MAX_NODES} subschemas"))
            raise _Refused
        if node is True:
            return {}
        if not isinstance(node, Mapping):
            self.report(path, "", f"a schema must be an object or true, got {_kind(node)}")
            return {}
        if depth > MAX_DEPTH:
            self.report(path, "", f"nested deeper than {MAX_DEPTH} levels; not followed")
            return {}
        kept: dict[str, Any] = {}
        for keyword, value in node.items():
            here = f"{path}/{keyword}"
            if not isinstance(keyword, str):
                self.report(path, repr(keyword), "keywords must be strings")
            elif keyword in _ANNOTATIONS:
                kept[keyword] = value
            elif keyword in _RESTRICTS_NOTHING or keyword.startswith("x-"):
                self.report(path, keyword, "restricts nothing; dropped", loosens=False)
            elif keyword == "pattern":
                self.report(
                    path,
                    keyword,
                    "a server's regular expression is not run here (it could stall the "
                    "loop); the server checks it",
                    loosens=False,
                )
            elif keyword not in SUPPORTED_KEYWORDS:
                self.report(path, keyword, "not supported by our validator; not enforced")
            else:
                checked = self.keyword(keyword, value, here, depth)
                if checked is not _DROP:
                    kept[keyword] = checked
        return kept

    def keyword(self, keyword: str, value: Any, path: str, depth: int) -> object:
        parent = path.rsplit("/", 1)[0]
        problem: str | None = None
        if keyword == "type":
            types = [value] if isinstance(value, str) else value
            if not isinstance(types, list) or not types or not all(t in _JSON_TYPES for t in types):
                problem = f"unknown JSON type {value!r}"
        elif keyword == "properties":
            if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
                problem = "must map property names to schemas"
            else:
                return {
                    name: self.schema(sub, f"{path}/{name}", depth + 1)
                    for name, sub in value.items()
                }
        elif keyword == "required":
            if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
                problem = "must be a list of property names"
        elif keyword in ("items", "additionalProperties"):
            if isinstance(value, bool):
                if keyword == "items" and value is False:
                    problem = "'items': false is not supported"
                else:
                    return value
            elif isinstance(value, Sequence) and not isinstance(value, str):
                problem = "the list form (tuple items) is not supported"
            else:
                return self.schema(value, path, depth + 1)
        elif keyword in _COUNTS:
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                problem = f"must be an int >= 0, got {value!r}"
        elif keyword in _BOUNDS:
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or (isinstance(value, float) and not math.isfinite(value))
            ):
                problem = f"must be a finite number, got {value!r}"
        elif keyword == "enum":
            if not isinstance(value, list) or not value:
                problem = "must be a non-empty list"
        elif keyword == "anyOf":
            if not isinstance(value, list) or not value:
                problem = "must be a non-empty list of schemas"
            else:
                return [self.schema(sub, f"{path}/{i}", depth + 1) for i, sub in enumerate(value)]
        if problem is not None:
            self.report(parent, keyword, problem)
            return _DROP
        return value


_DROP = object()


def _kind(value: object) -> str:
    return "null" if value is None else type(value).__name__


def import_schema(raw: object, *, mode: SchemaMode = "relax") -> ImportedSchema:
    """Our :class:`ToolSchema` for a remote tool's input schema, with what was left out.

    The root must be an object schema (``"type": "object"``; a missing ``type`` is
    taken as ``"object"``, which is what MCP requires anyway).
    """
    walk = _Walk(mode)
    try:
        if not isinstance(raw, Mapping):
            walk.issues.append(SchemaIssue("", "", f"the input schema is a {_kind(raw)}"))
            raise _Refused
        declared = raw.get("type", "object")
        if declared != "object":
            walk.issues.append(
                SchemaIssue("", "type", f'the root must be "type": "object", got {declared!r}')
            )
            raise _Refused
        cleaned = walk.schema(raw, "", 0)
        cleaned["type"] = "object"
        try:
            schema = ToolSchema(cleaned)
        except (TypeError, ValueError, re.error, RecursionError) as error:
            walk.issues.append(SchemaIssue("", "", f"our validator refused it: {error}"))
            raise _Refused from error
    except _Refused:
        return ImportedSchema(None, tuple(walk.issues))
    return ImportedSchema(schema, tuple(walk.issues))
