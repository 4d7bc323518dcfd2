"""Remote tool schemas and listings: what our validator enforces is kept, everything else
is reported (never silently dropped), and hostile input never breaks the client."""

from __future__ import annotations

from typing import Any

import mcp_types
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mister_smith.tools.mcp import (
    McpServerOptions,
    RemoteTool,
    build_catalog,
    import_schema,
    plan_sync,
)


def keywords(schema: dict[str, Any]) -> set[str]:
    return {issue.keyword for issue in import_schema(schema).issues}


def test_a_supported_schema_is_kept_whole_without_issues() -> None:
    schema = {
        "type": "object",
        "title": "args",
        "properties": {
            "name": {"type": "string", "minLength": 1, "maxLength": 20, "description": "who"},
            "count": {"type": "integer", "minimum": 0, "default": 1},
            "tags": {"type": "array", "items": {"enum": ["a", "b"]}, "maxItems": 3},
            "mode": {"anyOf": [{"const": "x"}, {"type": "null"}]},
        },
        "required": ["name"],
        "additionalProperties": False,
    }
    imported = import_schema(schema)
    assert imported.issues == ()
    assert imported.schema is not None
    assert imported.schema.to_dict() == schema
    assert not imported.schema.is_valid({"name": "a", "extra": 1})


def test_unsupported_keywords_are_reported_and_relaxed_or_refused() -> None:
    schema = {
        "type": "object",
        "$defs": {"Point": {"type": "object"}},
        "properties": {
            "where": {"$ref": "#/$defs/Point"},
            "either": {"oneOf": [{"type": "string"}, {"type": "integer"}]},
            "when": {"type": "string", "format": "date-time"},
        },
    }
    relaxed = import_schema(schema)
    assert relaxed.schema is not None
    by_keyword = {issue.keyword: issue for issue in relaxed.issues}
    assert set(by_keyword) == {"$defs", "$ref", "oneOf", "format"}
    assert by_keyword["$ref"].path == "/properties/where"
    assert by_keyword["$ref"].loosens
    assert not by_keyword["format"].loosens  # restricts nothing
    assert relaxed.schema.is_valid({"where": 1, "either": [], "when": "today"})
    refused = import_schema(schema, mode="refuse")
    assert refused.refused
    assert refused.issues[-1].keyword in {"$ref", "oneOf"}


def test_a_server_pattern_is_never_run_here() -> None:
    catastrophic = {"type": "object", "properties": {"s": {"type": "string", "pattern": "(a+)+$"}}}
    imported = import_schema(catastrophic, mode="refuse")
    assert imported.schema is not None  # dropping it loosens nothing we promised
    assert [issue.keyword for issue in imported.issues] == ["pattern"]
    assert imported.schema.is_valid({"s": "a" * 64 + "!"})


@pytest.mark.parametrize(
    ("schema", "reason"),
    [
        ({"type": "array"}, 'the root must be "type": "object"'),
        ([], "the input schema is a list"),
        ("object", "the input schema is a str"),
    ],
)
def test_a_root_that_is_not_an_object_schema_is_refused(schema: object, reason: str) -> None:
    imported = import_schema(schema)
    assert imported.refused
    assert reason in str(imported.issues[-1])


def test_bad_keyword_values_are_dropped_and_reported() -> None:
    schema = {
        "properties": {
            "a": {"type": "string", "minLength": "three", "maxLength": True},
            "b": {"type": "number", "minimum": float("nan"), "exclusiveMinimum": True},
            "c": {"type": "wat", "enum": []},
            "d": {"items": [{"type": "string"}]},
            "e": False,
            "f": {"anyOf": "no"},
        },
        "required": "a",
    }
    imported = import_schema(schema)
    assert imported.schema is not None
    assert imported.schema.to_dict()["type"] == "object"  # a missing root type is object
    assert {(issue.path, issue.keyword) for issue in imported.issues} == {
        ("/properties/a", "minLength"),
        ("/properties/a", "maxLength"),
        ("/properties/b", "minimum"),
        ("/properties/b", "exclusiveMinimum"),
        ("/properties/c", "type"),
        ("/properties/c", "enum"),
        ("/properties/d", "items"),
        ("/properties/e", ""),
        ("/properties/f", "anyOf"),
        ("", "required"),
    }


def test_deep_and_huge_schemas_are_bounded() -> None:
    deep: dict[str, Any] = {"type": "string"}
    for _ in range(200):
        deep = {"type": "object", "properties": {"x": deep}}
    imported = import_schema(deep)
    assert imported.schema is not None
    assert any("nested deeper than" in issue.reason for issue in imported.issues)
    huge = {"type": "object", "properties": {f"p{i}": {"type": "string"} for i in range(6_000)}}
    assert import_schema(huge).refused


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=12,
)
schema_keys = st.sampled_from(
    [
        "type",
        "properties",
        "required",
        "items",
        "anyOf",
        "enum",
        "const",
        "minimum",
        "maxLength",
        "additionalProperties",
        "pattern",
        "$ref",
        "oneOf",
        "format",
        "x-y",
    ]
)
schemas = st.recursive(
    st.dictionaries(schema_keys, json_values, max_size=4),
    lambda inner: st.dictionaries(schema_keys, inner | json_values, max_size=4),
    max_leaves=10,
)


@given(schema=schemas, args=json_values)
def test_any_schema_imports_and_validates_without_raising(schema: Any, args: Any) -> None:
    for mode in ("relax", "refuse"):
        imported = import_schema(schema, mode=mode)
        if imported.schema is not None:
            imported.schema.violations(args)
            imported.schema.violations({"a": args})


def listed(
    name: str, schema: dict[str, Any] | None = None, description: str = ""
) -> mcp_types.Tool:
    return mcp_types.Tool(
        name=name, description=description, input_schema=schema or {"type": "object"}
    )


def test_catalog_refuses_bad_names_duplicates_unlisted_and_extra_tools() -> None:
    options = McpServerOptions(
        allow_tools={"ok", "twice", "other", "third"}, max_tools=2, max_description_chars=10
    )
    catalog = build_catalog(
        [
            listed("ok", description="d" * 50),
            listed("bad name!"),
            listed("twice"),
            listed("twice"),
            listed("secret"),
            listed("other", {"type": "array"}),
            listed("third"),
        ],
        server="srv",
        options=options,
    )
    assert [tool.bus_name for tool in catalog.tools] == ["srv.ok", "srv.twice"]
    assert catalog.tools[0].description == "d" * 10
    assert catalog.tools[0].description_cut
    reasons = {refused.remote_name: refused.reason for refused in catalog.refused}
    assert "name" in reasons["bad name!"]
    assert "twice" in reasons["twice"]
    assert reasons["secret"] == "not in allow_tools"
    assert "max_tools" in reasons["third"]
    assert "cannot be enforced" in reasons["other"]
    kept = build_catalog([listed("ok")], server="srv", options=McpServerOptions(prefix=""))
    assert kept.tools[0].bus_name == "ok"


names = st.sampled_from(["a", "b", "c", "d", "e"])
descriptions = st.sampled_from(["one", "two"])


@given(
    before=st.dictionaries(names, descriptions, max_size=5),
    after=st.dictionaries(names, descriptions, max_size=5),
)
def test_a_sync_plan_takes_the_registry_exactly_to_the_new_catalog(
    before: dict[str, str], after: dict[str, str]
) -> None:
    options = McpServerOptions(prefix="")
    current: dict[str, RemoteTool] = {
        tool.bus_name: tool
        for tool in build_catalog(
            [listed(name, description=text) for name, text in before.items()],
            server="s",
            options=options,
        ).tools
    }
    catalog = build_catalog(
        [listed(name, description=text) for name, text in after.items()],
        server="s",
        options=options,
    )
    plan = plan_sync(current, catalog)
    registry = dict(current)
    for name in plan.remove:
        del registry[name]
    for tool in (*plan.add, *plan.replace):
        registry[tool.bus_name] = tool
    assert {name: tool.description for name, tool in registry.items()} == after
    assert not set(plan.add) & set(plan.replace)
    assert set(plan.keep) == {n for n in after if n in before and before[n] == after[n]}
