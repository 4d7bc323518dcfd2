"""ToolBus.call's fast path keeps every promise of the slow one.

The call is written flat for speed (one coroutine of the bus's, a bare deadline scope,
the call context reused from the caller's last call, retries entered only after a
failure). These tests hold what that must not change: the context each call sees, the
checkpoint a call is, the retry schedule inside one deadline, and error chains.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Mapping
from typing import Any

import attrs
import pytest
import trio
import trio.testing
from hypothesis import given
from hypothesis import strategies as st

from mister_smith.errors import ToolExecutionFailed, ToolPermissionDenied, ToolTimeout
from mister_smith.events import EventBus, ToolCalled, ToolOutcome
from mister_smith.tools import ToolBus, ToolCallContext, ToolSchema, current_tool_call, tool
from mister_smith.types import CallerIdentity


@tool
async def noop(x: int) -> int:
    """Return ``x`` without checkpointing."""
    return x


async def test_a_call_of_a_tool_that_never_checkpoints_is_a_checkpoint() -> None:
    bus = ToolBus(default_policy="open")
    bus.register_tool(noop)
    with trio.testing.assert_checkpoints():
        assert await bus.call("alice", "noop", {"x": 1}) == 1


async def test_a_call_in_a_cancelled_scope_never_reaches_the_tool() -> None:
    reached = []

    @tool
    async def mark() -> None:
        """Record that it ran."""
        reached.append(True)

    bus = ToolBus(default_policy="open")
    bus.register_tool(mark)
    with trio.CancelScope() as scope:
        scope.cancel()
        await bus.call("alice", "mark")
    assert scope.cancelled_caught
    assert reached == []
    assert bus.statistics().calls == 0


def _callers(bus: ToolBus) -> list[CallerIdentity | str]:
    alice = bus.identities.mint("alice")
    bob = bus.identities.mint("bob")
    # Two equal names that are different objects: the cache must not care.
    return [alice, bob, "carol", "".join(["car", "ol"]), "dave"]


@given(data=st.data())
def test_every_call_sees_the_context_of_its_own_caller_and_chain(data: st.DataObject) -> None:
    """Whatever order callers and chains come in, the context a tool sees is the one a
    fresh call would build, and a repeated caller shares the frozen record."""

    async def main() -> None:
        seen: list[ToolCallContext | None] = []

        @tool
        async def look() -> None:
            """Record the call context."""
            seen.append(current_tool_call())

        bus = ToolBus(default_policy="open")
        bus.register_tool(look)
        callers = _callers(bus)
        previous: tuple[object, tuple[object, ...]] | None = None
        for _ in range(data.draw(st.integers(1, 12), label="calls")):
            caller = data.draw(st.sampled_from(callers), label="caller")
            chain = tuple(data.draw(st.lists(st.sampled_from(callers), max_size=2)))
            as_list = data.draw(st.booleans(), label="chain as a list")
            await bus.call(caller, "look", on_behalf_of=list(chain) if as_list else chain)
            context = seen[-1]
            assert context is not None
            label = str(caller) + (" (for " + " > ".join(map(str, chain)) + ")" if chain else "")
            assert context == ToolCallContext(
                "look", label, bus.blocking_limiter, principal=caller, on_behalf_of=chain
            )
            assert context.principal is caller
            if previous is not None and previous[0] is caller and previous[1] == chain:
                assert context is seen[-2]
            previous = (caller, chain)
        assert current_tool_call() is None

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))


async def test_a_denied_caller_is_named_in_the_error_and_the_event() -> None:
    events = EventBus()
    bus = ToolBus(events=events)
    alice = bus.identities.mint("alice")
    bob = bus.identities.mint("bob")
    bus.register_tool(noop, callers=[alice])
    assert await bus.call(alice, "noop", {"x": 2}) == 2
    with pytest.raises(ToolPermissionDenied, match=r"bob \(for alice\) may not call tool 'noop'"):
        await bus.call(bob, "noop", {"x": 2}, on_behalf_of=[alice])
    denied = events.history(ToolCalled)[-1]
    assert (denied.caller, denied.outcome) == ("bob (for alice)", ToolOutcome.DENIED)


class Flaky:
    """An idempotent tool failing with the scripted errors, then returning ``"ok"``."""

    name = "flaky"
    description = "Fails as scripted."
    input_schema = ToolSchema({"type": "object"})
    idempotent = True

    def __init__(self, errors: list[Exception]) -> None:
        self.errors = errors
        self.attempts: list[float] = []

    async def execute(self, args: Mapping[str, Any]) -> object:
        """Fail with the next scripted error, if any."""
        self.attempts.append(trio.current_time())
        await trio.lowlevel.checkpoint()
        if len(self.attempts) <= len(self.errors):
            raise self.errors[len(self.attempts) - 1]
        return "ok"


async def test_retries_run_on_schedule_inside_the_one_deadline(
    autojump_clock: trio.testing.MockClock,
) -> None:
    bus = ToolBus(default_policy="open", max_retries=5)
    flaky = Flaky([ConnectionError("down")] * 5)
    bus.register_tool(flaky, timeout=0.5)
    with pytest.raises(ToolTimeout, match=r"ran past its 0\.5 s deadline"):
        await bus.call("alice", "flaky")
    # Tries at 0, 0.1, 0.3; the retry due at 0.7 is past the deadline of 0.5.
    assert flaky.attempts == [0.0, 0.1, pytest.approx(0.3)]
    assert trio.current_time() == pytest.approx(0.5)
    stats = bus.statistics().tools["flaky"]
    assert (stats.retries, stats.timeouts, stats.failures) == (3, 1, 0)


async def test_an_error_after_retries_does_not_chain_to_the_earlier_failures(
    autojump_clock: trio.testing.MockClock,
) -> None:
    bus = ToolBus(default_policy="open", max_retries=3)
    flaky = Flaky([ConnectionError("down"), TimeoutError("slow"), KeyError("gone")])
    bus.register_tool(flaky)
    with pytest.raises(ToolExecutionFailed, match="KeyError") as caught:
        await bus.call("alice", "flaky")
    assert isinstance(caught.value.__cause__, KeyError)
    assert caught.value.__cause__.__context__ is None
    assert len(flaky.attempts) == 3
    assert bus.statistics().tools["flaky"].retries == 2


async def test_a_transient_error_is_not_retried_past_max_retries() -> None:
    bus = ToolBus(default_policy="open", max_retries=0)
    flaky = Flaky([ConnectionError("down")])
    bus.register_tool(flaky)
    with pytest.raises(ToolExecutionFailed, match="ConnectionError: down"):
        await bus.call("alice", "flaky")
    assert len(flaky.attempts) == 1
    assert bus.statistics().tools["flaky"].retries == 0


@attrs.frozen
class Span:
    """A structured argument."""

    start: int
    end: int


@tool
async def plain(text: str, count: int, flag: bool = False) -> list[object]:
    """Arguments that need no structuring."""
    return [text, count, flag]


@tool
async def structured(span: Span, scale: float) -> tuple[Span, float]:
    """Arguments turned into their parameter types."""
    return span, scale


@tool(blocking=True)
def threaded(x: int) -> str:
    """A blocking tool: runs in a worker thread."""
    return threading.current_thread().name


async def test_function_tools_get_their_arguments_structured_or_as_they_are() -> None:
    bus = ToolBus(default_policy="open")
    for item in (plain, structured, threaded):
        bus.register_tool(item)
    args = {"text": "t", "count": 2}
    assert await bus.call("alice", "plain", args) == ["t", 2, False]
    assert args == {"text": "t", "count": 2}
    result = await bus.call("alice", "structured", {"span": {"start": 1, "end": 2}, "scale": 3})
    assert isinstance(result, tuple)
    span, scale = result
    assert span == Span(1, 2)
    assert (scale, type(scale)) == (3.0, float)
    assert await bus.call("alice", "threaded", {"x": 1}) == "threaded"


async def test_execute_called_directly_is_still_awaited_like_any_tool() -> None:
    assert await plain.execute({"text": "t", "count": 1, "flag": True}) == ["t", 1, True]
    with pytest.raises(TypeError):
        await plain.execute({"text": "t", "count": 1, "nope": 0})


@pytest.mark.parametrize("traced", [False, True])
async def test_traced_and_untraced_calls_keep_the_same_deadline_and_retries(
    traced: bool, autojump_clock: trio.testing.MockClock
) -> None:
    spans: list[tuple[str, str, str | None]] = []

    @contextlib.contextmanager
    def tracing(tool_name: str, caller: str) -> Iterator[None]:
        try:
            yield
        except BaseException as error:
            spans.append((tool_name, caller, type(error).__name__))
            raise
        spans.append((tool_name, caller, None))

    bus = ToolBus(default_policy="open", max_retries=1, tracing=tracing if traced else None)
    bus.register_tool(Flaky([ConnectionError("down")]), timeout=1)
    assert await bus.call("alice", "flaky") == "ok"
    bus.unregister_tool("flaky")
    bus.register_tool(Flaky([ConnectionError("down")] * 3), timeout=1)
    with pytest.raises(ToolExecutionFailed, match="ConnectionError"):
        await bus.call("alice", "flaky")
    started = trio.current_time()
    with pytest.raises(ToolTimeout, match=r"'flaky' ran past its 0\.05 s deadline"):
        await bus.call("alice", "flaky", timeout=0.05)
    assert trio.current_time() - started == pytest.approx(0.05)
    expected = [("flaky", "alice", None), ("flaky", "alice", "ConnectionError")]
    assert spans == ([*expected, ("flaky", "alice", "ToolTimeout")] if traced else [])
    stats = bus.statistics().tools["flaky"]
    # The third call's try fails at once; its retry, due in 0.1 s, is past its deadline.
    assert (stats.succeeded, stats.failures, stats.timeouts, stats.retries) == (0, 1, 1, 2)


class _Gate:
    """Wraps a tool, failing its first call with ``ConnectionError`` (no ``idempotent``
    or ``retry_on`` of its own, as a fault-injecting wrapper would be)."""

    name = "flaky"
    description = "A gate in front of the flaky tool."
    input_schema = ToolSchema({"type": "object"})

    def __init__(self, inner: Flaky) -> None:
        self.inner = inner
        self.calls = 0

    async def execute(self, args: Mapping[str, Any]) -> object:
        """Fail the first call, then pass calls through."""
        self.calls += 1
        if self.calls == 1:
            await trio.lowlevel.checkpoint()
            raise ConnectionError("gate down")
        return await self.inner.execute(args)


async def test_a_replaced_tool_keeps_how_it_was_registered(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # replace_tool once dropped idempotent/retry_on (a replaced tool was never retried)
    # and the follow-the-bus-default flags.
    bus = ToolBus(default_policy="open", max_retries=2)
    flaky = Flaky([])
    bus.register_tool(flaky)
    gate = _Gate(flaky)
    assert bus.replace_tool(gate) is flaky
    assert await bus.call("anyone", "flaky", {}) == "ok"
    assert gate.calls == 2
    assert bus.statistics().tools["flaky"].retries == 1
    [spec] = bus.list_tools()
    assert spec.policy == "open"


async def test_the_deadline_runs_from_the_approval_not_from_the_call(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # The deadline scope is opened at the call's start time (read once); a call that
    # waited for approval must still get its whole deadline after the approval.
    @tool(timeout=1)
    async def slow() -> float:
        """Take 0.9 s, inside its 1 s deadline."""
        await trio.sleep(0.9)
        return trio.current_time()

    bus = ToolBus(default_policy="open")
    bus.register_tool(slow, approval=True)
    results: list[object] = []
    async with trio.open_nursery() as nursery:

        async def call() -> None:
            results.append(await bus.call("alice", "slow"))

        nursery.start_soon(call)
        request = await bus.approvals.wait_for_request()
        await trio.sleep(5)
        bus.approvals.approve(request.id, by="bob")
    assert results == [pytest.approx(5.9)]
    # A per-call deadline shorter than the tool's run fires 0.5 s after the approval.
    timed_out: list[float] = []
    async with trio.open_nursery() as nursery:

        async def call_briefly() -> None:
            with pytest.raises(ToolTimeout, match=r"ran past its 0\.5 s deadline"):
                await bus.call("alice", "slow", timeout=0.5)
            timed_out.append(trio.current_time())

        nursery.start_soon(call_briefly)
        request = await bus.approvals.wait_for_request()
        await trio.sleep(5)
        approved_at = trio.current_time()
        bus.approvals.approve(request.id, by="bob")
    assert timed_out == [pytest.approx(approved_at + 0.5)]
