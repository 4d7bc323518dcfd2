"""The routing fast paths answer exactly as the general paths they shortcut.

Reading a message's routing attributes skips the ``Mapping`` check for ``Routed`` and
for plain built-in values, and consistent hashing remembers each key's ring point; each
shortcut must give the answer the general path gives, for every kind of message.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable, Mapping
from typing import Any, cast

import attrs
from hypothesis import given
from hypothesis import strategies as st
from test_routing import FakeRef, refs

from mister_smith.transport import (
    ConsistentHashRouting,
    Routed,
    message_key,
    message_priority,
    message_requirements,
)
from mister_smith.transport._strategies import _KEY_POINTS

# -- the general reading, written out as the reference -----------------------------------


def _attribute(message: Any, name: str) -> Any:
    if isinstance(message, Mapping):
        return message.get(name)
    return getattr(message, name, None)


def reference_priority(message: Any) -> int:
    value = _attribute(message, "priority")
    return 5 if not isinstance(value, int) or isinstance(value, bool) else value


def reference_requirements(message: Any) -> frozenset[str]:
    value = _attribute(message, "requires")
    if value is None:
        return frozenset()
    return frozenset({value}) if isinstance(value, str) else frozenset(value)


def reference_key(message: Any) -> str | None:
    value = _attribute(message, "key")
    if value is None:
        value = _attribute(message, "routing_key")
    return None if value is None else str(value)


# -- messages of every kind ---------------------------------------------------------------


class RoutedWithRoutingKey(Routed):
    """A Routed subclass: takes the general path, which also reads ``routing_key``."""

    routing_key = "from-the-class"


class TaggedStr(str):
    """A str subclass whose instances carry attributes."""

    key: str


@attrs.frozen
class Job:
    payload: int
    priority: Any = None
    requires: Any = None
    routing_key: Any = None


Keyed = namedtuple("Keyed", ["key", "priority"])


def _tagged(text: str) -> TaggedStr:
    tagged = TaggedStr(text)
    tagged.key = f"tag-{text}"
    return tagged


names = st.sampled_from(["python", "sql", "gpu"])
priorities = st.one_of(st.integers(min_value=1, max_value=10), st.booleans())
routed_priorities = st.one_of(st.integers(min_value=1, max_value=10), st.just(True))
keys = st.one_of(st.none(), st.text(max_size=5), st.integers())
messages = st.one_of(
    st.builds(
        Routed,
        st.integers(),
        priority=routed_priorities,  # a bool passes Routed's validators when it is True
        requires=st.one_of(names, st.frozensets(names)),
        key=keys,
    ),
    st.builds(RoutedWithRoutingKey, st.integers(), key=keys),
    st.one_of(st.integers(), st.floats(allow_nan=False), st.text(), st.binary(), st.none()),
    st.booleans(),
    st.tuples(st.integers(), st.text()),
    st.builds(_tagged, st.text(max_size=5)),
    st.builds(Keyed, keys, priorities),
    st.builds(Job, st.integers(), priorities, st.one_of(st.none(), names), keys),
    st.dictionaries(
        st.sampled_from(["priority", "requires", "key", "routing_key", "other"]),
        st.one_of(priorities, names, st.text(max_size=3)),
    ),
)


def _outcome(read: Callable[[Any], object], message: Any) -> object:
    """What ``read`` answers, or the type of error it raises (``{"requires": 1}``)."""
    try:
        return read(message)
    except TypeError as error:
        return type(error)


@given(messages)
def test_message_attributes_match_the_general_reading(message: Any) -> None:
    assert _outcome(message_priority, message) == _outcome(reference_priority, message)
    assert _outcome(message_requirements, message) == _outcome(reference_requirements, message)
    assert _outcome(message_key, message) == _outcome(reference_key, message)


def test_a_routed_subclass_still_reads_its_routing_key() -> None:
    assert message_key(RoutedWithRoutingKey("x")) == "from-the-class"
    assert message_key(_tagged("a")) == "tag-a"


# -- consistent hashing's remembered ring points --------------------------------------------


def test_remembered_key_points_are_bounded_and_never_change_an_answer() -> None:
    routing = ConsistentHashRouting(virtual_nodes=4)
    members = refs([FakeRef(f"m{i}") for i in range(5)])
    names = [ref.name for ref in members]
    owners = {}
    for n in range(_KEY_POINTS + 10):  # past the bound: the memory is cleared and refilled
        key = f"conversation-{n}"
        chosen = routing.select_recipient(Routed(n, key=key), members)
        assert chosen is not None
        assert chosen.name == routing.owner(key, names)
        owners[key] = chosen.name
        assert len(routing._key_points) <= _KEY_POINTS
    assert len(routing._key_points) == 10
    for key, owner in list(owners.items())[:20]:  # forgotten keys come back to their owner
        again = cast(FakeRef, routing.select_recipient({"key": key}, members))
        assert again.name == owner
