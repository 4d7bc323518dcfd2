"""Issue 12, item 6: dead letters and event history are bounded by bytes, not count.

The review's case: 401 dead letters of 1 MiB each stayed resident (401 MiB) after their
actor was gone, because the dead-letter log and the event history kept every message
whole. Memory is measured with ``tracemalloc``: what stays allocated once the senders
dropped their references.
"""

from __future__ import annotations

import gc
import time
import tracemalloc
from collections.abc import Iterator
from typing import Any

import pytest
import trio
from hypothesis import given
from hypothesis import strategies as st

from mister_smith.actors import Actor, ActorContext
from mister_smith.errors import ErrorSeverity
from mister_smith.events import (
    DEFAULT_PAYLOAD_LIMIT,
    DeadLetter,
    ErrorOccurred,
    EventBus,
    PayloadPreview,
    TaskCompleted,
    bounded_payload,
    payload_size,
)
from mister_smith.runtime import RuntimeManager
from mister_smith.types import TaskId

MIB = 1024 * 1024


@pytest.fixture
def traced() -> Iterator[None]:
    tracemalloc.start()
    try:
        yield
    finally:
        tracemalloc.stop()


def allocated() -> int:
    gc.collect()
    return tracemalloc.get_traced_memory()[0]


class Stuck(Actor):
    """Handles its first message by waiting for ever, so the rest stay queued."""

    async def handle(self, message: Any, ctx: ActorContext) -> Any:
        await trio.sleep_forever()


class Crasher(Actor):
    """Fails on every message (quoting a slice of it), so each one is dead-lettered."""

    async def handle(self, message: Any, ctx: ActorContext) -> Any:
        raise ValueError(f"cannot handle {message[:64]!r}... " + "x" * 20_000)


async def test_401_dead_letters_of_1_mib_do_not_stay_resident(
    traced: None, autojump_clock: trio.abc.Clock
) -> None:
    async with RuntimeManager.open() as runtime:  # defaults: log of 1,000, history 10,000
        system = runtime.actor_system
        before = allocated()
        ref = await system.spawn(Stuck, name="stuck")
        for _ in range(401):
            await ref.tell(bytes(MIB))  # a fresh 1 MiB object each time
        await system.stop(ref)  # the 400 still queued (and the one in hand) are dead
        held = allocated() - before
        letters = system.dead_letters()
        assert len(letters) == 401
        assert len(runtime.events.history(DeadLetter)) == 401
        assert held < 8 * MIB, f"{held / MIB:.1f} MiB still held"
        for letter in letters:
            assert isinstance(letter.message, PayloadPreview)
            assert letter.message.type_name == "builtins.bytes"
            assert letter.message.size > MIB
            assert letter.message.preview.startswith("b'\\x00\\x00")


async def test_crashing_on_large_messages_keeps_only_previews_and_short_reasons(
    traced: None, autojump_clock: trio.abc.Clock
) -> None:
    async with RuntimeManager.open() as runtime:
        system = runtime.actor_system
        before = allocated()
        ref = await system.spawn(Crasher, name="crasher")
        for index in range(3):  # within the default budget of 3 restarts
            await ref.tell(f"{index}:" + "y" * MIB)
            await trio.sleep(1)
        await system.stop(ref)  # its last failure's frames go with it
        held = allocated() - before
        letters = system.dead_letters()
        assert letters
        assert held < 2 * MIB, f"{held / MIB:.1f} MiB still held"
        for letter in letters:
            assert isinstance(letter.message, str)  # a string is cut, not replaced
            assert len(letter.message) < DEFAULT_PAYLOAD_LIMIT + 100
            assert letter.message.endswith(f"[cut: {MIB + 2} chars]")
            assert len(letter.reason) < DEFAULT_PAYLOAD_LIMIT + 100


def test_history_keeps_previews_of_large_payloads(traced: None) -> None:
    bus = EventBus()  # the defaults: 10,000 events, 32 MiB
    before = allocated()
    for index in range(150):
        bus.emit(TaskCompleted(task_id=TaskId.new(), result=bytearray(MIB), agent=str(index)))
        bus.emit(
            ErrorOccurred(
                component="model",
                error_type="Huge",
                message=f"{index} " + "z" * MIB,
                severity=ErrorSeverity.LOW,
            )
        )
    held = allocated() - before
    assert held < 8 * MIB, f"{held / MIB:.1f} MiB still held"
    statistics = bus.statistics()
    assert statistics.history_len == 300
    assert statistics.payloads_cut == 300
    assert statistics.history_bytes < 8 * MIB
    completed = bus.history(TaskCompleted)
    assert [event.agent for event in completed] == [str(index) for index in range(150)]
    assert all(isinstance(event.result, PayloadPreview) for event in completed)
    assert all(event.result.type_name == "builtins.bytearray" for event in completed)
    errors = bus.history(ErrorOccurred)
    assert all(event.message.startswith(f"{n} zzz") for n, event in enumerate(errors))


def test_history_evicts_oldest_past_its_byte_budget() -> None:
    bus = EventBus(history_size=10_000, history_bytes=MIB)
    for index in range(2_000):  # each payload just under the 8 KiB limit: kept whole
        bus.emit(TaskCompleted(task_id=TaskId.new(), result=[index] * 200, agent=str(index)))
    statistics = bus.statistics()
    assert statistics.history_bytes <= MIB
    assert statistics.history_evicted == 2_000 - statistics.history_len
    assert 50 < statistics.history_len < 2_000
    kept = bus.history(TaskCompleted)
    assert kept[-1].agent == "1999"  # the newest stay
    assert kept[-1].result == [1999] * 200  # small enough: kept as it was


def test_small_events_and_payloads_are_kept_as_they_are() -> None:
    bus = EventBus()
    message = {"text": "hello", "numbers": [1, 2, 3]}
    event = DeadLetter(actor="a", message=message, reason="actor stopped")
    bus.emit(event)
    kept = bus.history(DeadLetter)
    assert kept == [event]
    assert kept[0] is event
    assert bounded_payload(message) is message


def test_measuring_is_bounded_by_the_limit_not_the_payload() -> None:
    """A huge, deep or cyclic payload is measured quickly and without recursion."""
    huge = list(range(2_000_000))
    deep: list[Any] = []
    for _ in range(200_000):
        deep = [deep]
    cyclic: dict[str, Any] = {}
    cyclic["self"] = cyclic
    started = time.perf_counter()
    assert payload_size(huge) > DEFAULT_PAYLOAD_LIMIT
    assert payload_size(deep) > DEFAULT_PAYLOAD_LIMIT
    assert payload_size(cyclic) < DEFAULT_PAYLOAD_LIMIT
    for value in (huge, deep):
        preview = bounded_payload(value)
        assert isinstance(preview, PayloadPreview)
        assert len(preview.preview) <= 200
    assert time.perf_counter() - started < 1.0


class BadRepr:
    def __init__(self) -> None:
        self.blob = bytes(MIB)

    def __repr__(self) -> str:
        raise RuntimeError("no repr for you")


def test_a_payload_whose_repr_fails_still_gets_a_preview() -> None:
    preview = bounded_payload(BadRepr())
    assert isinstance(preview, PayloadPreview)
    assert preview.type_name.endswith("BadRepr")
    assert "BadRepr" in preview.preview  # reprlib's stand-in for a failing repr


payloads = st.recursive(
    st.one_of(
        st.integers(), st.text(max_size=3000), st.binary(max_size=12_000), st.floats(), st.none()
    ),
    lambda inner: st.lists(inner, max_size=20) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=60,
)


@given(value=payloads, limit=st.sampled_from([64, 1024, DEFAULT_PAYLOAD_LIMIT]))
def test_bounded_payload_is_the_value_or_a_small_stand_in(value: object, limit: int) -> None:
    kept = bounded_payload(value, limit)
    if kept is value:
        assert isinstance(value, str) or payload_size(value, limit) <= limit
    elif isinstance(value, str):
        assert isinstance(kept, str)
        assert kept.startswith(value[:limit])
        assert len(kept) < limit + 40
    else:
        assert isinstance(kept, PayloadPreview)
        assert kept.size > limit
        assert len(kept.preview) <= 200
