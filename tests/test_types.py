"""Typed ids: one class per kind, UUID-backed, short printable form, parse round-trip."""

from __future__ import annotations

import re
import textwrap
import uuid
from pathlib import Path

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st
from mypy import api as mypy_api

import mister_smith
from mister_smith.types import (
    TYPED_IDS,
    ActorId,
    AgentId,
    NodeId,
    Restart,
    StrategyKind,
    TaskId,
    ToolId,
)
from mister_smith.types._ids import _TypedId  # the common base, for annotations only

PREFIXES = [
    (AgentId, "agent"),
    (ActorId, "actor"),
    (TaskId, "task"),
    (ToolId, "tool"),
    (NodeId, "node"),
]
IdClass = type[_TypedId]

ids_by_name = pytest.mark.parametrize("id_cls", TYPED_IDS, ids=lambda cls: cls.__name__)

FIXED = uuid.UUID("1a2b3c4d-0000-4000-8000-00000000abcd")


def test_typed_ids_lists_every_kind_once() -> None:
    assert (AgentId, ActorId, TaskId, ToolId, NodeId) == TYPED_IDS
    for cls in TYPED_IDS:
        assert getattr(mister_smith, cls.__name__) is cls


@pytest.mark.parametrize(("id_cls", "prefix"), PREFIXES, ids=lambda v: getattr(v, "__name__", v))
def test_short_form(id_cls: IdClass, prefix: str) -> None:
    typed = id_cls(FIXED)
    assert typed.prefix == prefix
    assert typed.short == f"{prefix}-1a2b3c4d"
    assert str(typed) == typed.short
    assert f"{typed}" == typed.short


@ids_by_name
def test_short_form_of_random_ids(id_cls: IdClass) -> None:
    typed = id_cls.new()
    assert re.fullmatch(rf"{id_cls.prefix}-[0-9a-f]{{8}}", typed.short)
    assert typed.short.endswith(typed.uuid.hex[:8])


@ids_by_name
def test_repr_shows_kind_and_full_uuid(id_cls: IdClass) -> None:
    assert repr(id_cls(FIXED)) == f"{id_cls.__name__}('{FIXED}')"


@ids_by_name
def test_new_ids_are_fresh_uuid4(id_cls: IdClass) -> None:
    ids = {id_cls.new() for _ in range(100)}
    assert len(ids) == 100
    for typed in ids:
        assert type(typed) is id_cls
        assert isinstance(typed.uuid, uuid.UUID)
        assert typed.uuid.version == 4
    assert id_cls() != id_cls()  # the default factory also draws a fresh uuid


def test_same_uuid_different_kinds_are_not_equal() -> None:
    instances = [cls(FIXED) for cls in TYPED_IDS]
    for i, left in enumerate(instances):
        for j, right in enumerate(instances):
            assert (left == right) is (i == j)
            assert (left != right) is (i != j)
    assert len(set(instances)) == len(TYPED_IDS)
    assert AgentId(FIXED) != FIXED  # never equal to the bare uuid either


def test_different_kinds_are_not_ordered() -> None:
    with pytest.raises(TypeError):
        _ = AgentId(FIXED) < ActorId(FIXED)  # type: ignore[operator]


@ids_by_name
def test_ids_are_hashable_and_ordered_by_uuid(id_cls: IdClass) -> None:
    low = id_cls(uuid.UUID(int=1))
    high = id_cls(uuid.UUID(int=2))
    assert low < high
    assert high > low
    assert low <= id_cls(uuid.UUID(int=1))
    assert sorted([high, low]) == [low, high]
    assert {low: "a", id_cls(uuid.UUID(int=1)): "b"} == {low: "b"}
    assert hash(low) == hash(id_cls(uuid.UUID(int=1)))


@ids_by_name
def test_ids_are_frozen(id_cls: IdClass) -> None:
    typed = id_cls(FIXED)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        typed.uuid = uuid.uuid4()  # type: ignore[misc]
    assert typed.uuid == FIXED


@ids_by_name
def test_parse_round_trip(id_cls: IdClass) -> None:
    typed = id_cls.new()
    assert id_cls.parse(str(typed.uuid)) == typed
    assert id_cls.parse(f"{id_cls.prefix}-{typed.uuid}") == typed
    assert id_cls.parse(typed.uuid.hex) == typed
    assert type(id_cls.parse(str(typed.uuid))) is id_cls


@ids_by_name
@pytest.mark.parametrize(
    "garbage",
    ["", "nonsense", "1a2b3c4d", "agent-1a2b3c4d", str(FIXED)[:-1], str(FIXED) + "0", "actor--"],
)
def test_parse_garbage_raises_value_error_naming_the_kind(id_cls: IdClass, garbage: str) -> None:
    with pytest.raises(ValueError, match=rf"not a valid {id_cls.__name__}: ") as info:
        id_cls.parse(garbage)
    assert repr(garbage) in str(info.value)


def test_parse_rejects_another_kinds_prefix() -> None:
    with pytest.raises(ValueError, match="AgentId"):
        AgentId.parse(f"actor-{FIXED}")
    assert ActorId.parse(f"actor-{FIXED}") == ActorId(FIXED)


def test_short_form_is_not_parseable() -> None:
    # The short form is for display only; it is lossy.
    with pytest.raises(ValueError, match="AgentId"):
        AgentId.parse(AgentId(FIXED).short)


@given(
    id_cls=st.sampled_from(TYPED_IDS),
    value=st.uuids(),
    prefixed=st.booleans(),
)
def test_parse_round_trip_property(id_cls: IdClass, value: uuid.UUID, prefixed: bool) -> None:
    typed = id_cls(value)
    text = f"{id_cls.prefix}-{value}" if prefixed else str(value)
    parsed = id_cls.parse(text)
    assert parsed == typed
    assert hash(parsed) == hash(typed)
    assert parsed.short == f"{id_cls.prefix}-{value.hex[:8]}"
    assert repr(typed) == f"{id_cls.__name__}('{value}')"


@given(left=st.uuids(), right=st.uuids())
def test_order_follows_uuid_order(left: uuid.UUID, right: uuid.UUID) -> None:
    assert (AgentId(left) < AgentId(right)) is (left < right)
    assert (AgentId(left) == AgentId(right)) is (left == right)


# --- shared enums ----------------------------------------------------------------------


def test_restart_and_strategy_enums() -> None:
    assert {r.value for r in Restart} == {"permanent", "transient", "temporary"}
    assert {s.value for s in StrategyKind} == {"one_for_one", "one_for_all", "rest_for_one"}


# --- static typing -----------------------------------------------------------------------


def test_mixing_id_kinds_is_a_mypy_error(tmp_path: Path) -> None:
    snippet = tmp_path / "mix_ids.py"
    snippet.write_text(
        textwrap.dedent(
            """
            from mister_smith.types import ActorId, AgentId

            def stop(actor: ActorId) -> None: ...

            stop(ActorId.new())
            stop(AgentId.new())
            """
        )
    )
    stdout, stderr, status = mypy_api.run(
        [
            "--strict",
            "--no-incremental",
            "--cache-dir",
            str(tmp_path / "mypy_cache"),
            "--no-error-summary",
            "--config-file",
            "",
            str(snippet),
        ]
    )
    errors = [line for line in stdout.splitlines() if ": error:" in line]
    assert status == 1, (stdout, stderr)
    assert len(errors) == 1, stdout
    assert "mix_ids.py:7:" in errors[0]
    assert '"AgentId"' in errors[0]
    assert '"ActorId"' in errors[0]
    assert "[arg-type]" in errors[0]
