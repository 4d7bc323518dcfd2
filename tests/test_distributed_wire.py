"""The wire format: registered attrs types and plain JSON only, every bad body a typed
error naming what was wrong, never pickle."""

from __future__ import annotations

import math
import pickle
from pathlib import Path

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

pytest.importorskip("nats", reason="the nats extra is not installed")

from mister_smith.distributed import (
    EnvelopeError,
    PayloadTooLarge,
    UnknownMessageType,
    WireFormat,
)
from mister_smith.distributed._wire import (
    H_DEADLINE,
    H_KIND,
    H_TYPE,
    MAX_DEPTH,
    Envelope,
    Kind,
)


@attrs.frozen
class Survey:
    package: str
    depth: int = 1
    tags: tuple[str, ...] = ()
    weight: float = 1.0
    note: str | None = None


@attrs.frozen
class Unregistered:
    x: int


def wire() -> WireFormat:
    format = WireFormat(max_payload=4096)
    format.register(Survey, tag="Survey")
    return format


finite = st.floats(allow_nan=False, allow_infinity=False)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | finite | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


@given(
    package=st.text(max_size=30),
    depth=st.integers(-(2**31), 2**31),
    tags=st.lists(st.text(max_size=5), max_size=3).map(tuple),
    weight=finite,
    note=st.none() | st.text(max_size=10),
)
def test_registered_types_round_trip(
    package: str, depth: int, tags: tuple[str, ...], weight: float, note: str | None
) -> None:
    format = wire()
    message = Survey(package, depth, tags, weight, note)
    tag, body = format.encode(message)
    assert tag == "Survey"
    assert format.decode(tag, body) == message


@given(value=json_values)
def test_plain_json_round_trips(value: object) -> None:
    format = wire()
    tag, body = format.encode(value)
    assert tag == "json"
    assert format.decode(tag, body) == value


def test_unregistered_types_are_refused_on_both_sides() -> None:
    format = wire()
    with pytest.raises(UnknownMessageType, match="Unregistered is not registered"):
        format.encode(Unregistered(1))
    with pytest.raises(UnknownMessageType, match="neither plain JSON"):
        format.encode(object())
    with pytest.raises(UnknownMessageType, match=r"'tests\.Evil' is not registered"):
        format.decode("tests.Evil", b"{}")


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b'{"package": 3}', "package"),
        (b'{"package": "a", "extra": 1}', "extra"),
        (b'{"depth": 1}', "package"),
        (b"not json", "not valid JSON"),
        (b'{"package": "a", "weight": NaN}', "not valid JSON"),
        (pickle.dumps(Survey("a")), "not valid JSON"),
    ],
)
def test_invalid_payloads_name_the_problem(body: bytes, problem: str) -> None:
    with pytest.raises(EnvelopeError, match=problem):
        wire().decode("Survey", body)


def test_non_finite_numbers_deep_nesting_and_size_are_refused() -> None:
    format = wire()
    with pytest.raises(EnvelopeError, match="non-finite"):
        format.encode(Survey("a", weight=math.nan))
    with pytest.raises(EnvelopeError, match="non-finite"):
        format.encode({"x": math.inf})
    deep: object = []
    for _ in range(MAX_DEPTH + 2):
        deep = [deep]
    with pytest.raises(EnvelopeError, match="nests deeper"):
        format.encode(deep)
    with pytest.raises(EnvelopeError, match="nests deeper"):
        format.decode("json", b"[" * (MAX_DEPTH + 5) + b"]" * (MAX_DEPTH + 5))
    with pytest.raises(EnvelopeError):  # orjson's own recursion limit, not a crash
        format.decode("json", b"[" * 100_000)
    with pytest.raises(PayloadTooLarge):
        format.encode("x" * 5000)
    with pytest.raises(PayloadTooLarge):
        format.decode("json", b'"' + b"x" * 5000 + b'"')
    with pytest.raises(EnvelopeError, match="non-string key"):
        format.encode({1: "a"})


def test_registration_rules() -> None:
    format = wire()
    with pytest.raises(TypeError, match="only attrs classes"):
        format.register(dict)
    with pytest.raises(ValueError, match="already registered"):
        format.register(Unregistered, tag="Survey")
    with pytest.raises(ValueError, match="reserved"):
        format.register(Unregistered, tag="json")
    assert format.register(Survey, tag="Survey") is Survey  # idempotent
    assert format.registered() == {"Survey": Survey}


def test_envelope_headers_round_trip_and_malformed_headers() -> None:
    envelope = Envelope(Kind.ASK, "Survey", sender="n1", deadline_ms=250, traceparent="00-ab-cd-01")
    assert Envelope.from_headers(envelope.headers()) == envelope
    good = envelope.headers()
    for key, value, problem in [
        (H_KIND, "shout", "Ms-Kind"),
        (H_TYPE, "", "Ms-Type"),
        (H_DEADLINE, "-5", "whole milliseconds"),
        (H_DEADLINE, "1e9", "whole milliseconds"),
        (H_DEADLINE, "9" * 40, "whole milliseconds"),
        ("Ms-Schema", "2.0.0", "not compatible"),
    ]:
        with pytest.raises(EnvelopeError, match=problem):
            Envelope.from_headers({**good, key: value})


def test_no_pickle_anywhere_in_the_distributed_layer() -> None:
    import mister_smith.distributed as package

    for source in Path(package.__file__).parent.glob("*.py"):
        text = source.read_text()
        assert "import pickle" not in text, source
        assert "pickle." not in text, source
