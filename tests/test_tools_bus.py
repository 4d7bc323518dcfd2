"""ToolBus: registry, permissions, deadlines, failures, events, metrics, threads, AgentTool."""

from __future__ import annotations

import math
import threading
import time

import pytest
import trio
import trio.testing

from mister_smith.errors import (
    AskTimeout,
    InvalidToolInput,
    ToolError,
    ToolExecutionFailed,
    ToolNotFound,
    ToolPermissionDenied,
    ToolTimeout,
)
from mister_smith.events import EventBus, ToolCalled, ToolOutcome
from mister_smith.tools import (
    AgentTool,
    Askable,
    DuplicateTool,
    EchoTool,
    Tool,
    ToolBus,
    current_tool_call,
    tool,
)


@tool
async def nap(seconds: float) -> str:
    """Sleep on the Trio clock."""
    await trio.sleep(seconds)
    return "rested"


@tool(timeout=5)
async def short_fuse(seconds: float) -> str:
    """A tool with its own deadline."""
    await trio.sleep(seconds)
    return "done"


@tool
async def explode(message: str) -> None:
    """Always fails."""
    await trio.lowlevel.checkpoint()
    raise KeyError(message)


@tool
async def refuse(message: str) -> None:
    """Raises a ToolError of its own."""
    await trio.lowlevel.checkpoint()
    raise ToolPermissionDenied(f"not for {message}")


def make_bus(**kwargs: object) -> tuple[ToolBus, EventBus]:
    """A bus with the test tools, open unless told otherwise: most tests here are about
    calls, not permissions (those are below and in tests/security/)."""
    events = EventBus()
    options: dict[str, object] = {"default_policy": "open", **kwargs}
    bus = ToolBus(events=events, **options)  # type: ignore[arg-type]
    for item in (EchoTool(), nap, short_fuse, explode, refuse):
        bus.register_tool(item)
    return bus, events


async def test_echo_and_listing() -> None:
    bus, events = make_bus()
    assert isinstance(EchoTool(), Tool)
    assert await bus.call("alice", "echo", {"message": "hi"}) == {"message": "hi"}
    names = [spec.name for spec in bus.list_tools()]
    assert names == ["echo", "nap", "short_fuse", "explode", "refuse"]
    spec = bus.list_tools()[0]
    assert spec.to_dict() == {
        "name": "echo",
        "description": "Echo the given message back unchanged.",
        "input_schema": EchoTool().input_schema.to_dict(),
    }
    assert spec.timeout == 30.0
    assert spec.policy == "open"
    [event] = events.history(ToolCalled)
    assert (event.tool, event.caller, event.outcome, event.error) == (
        "echo",
        "alice",
        ToolOutcome.OK,
        None,
    )


async def test_duplicate_and_unknown_tools() -> None:
    bus, events = make_bus()
    with pytest.raises(DuplicateTool, match="'echo' is already registered"):
        bus.register_tool(EchoTool())
    with pytest.raises(ToolNotFound, match="'nope'"):
        await bus.call("alice", "nope", {})
    assert events.history(ToolCalled)[-1].outcome is ToolOutcome.NOT_FOUND
    removed = bus.unregister_tool("echo")
    assert removed.name == "echo"
    with pytest.raises(ToolNotFound):
        bus.unregister_tool("echo")
    with pytest.raises(ToolNotFound):
        bus.grant("echo", callers=[bus.identities.mint("x")])
    bus.register_tool(EchoTool())  # the name is free again
    with pytest.raises(TypeError, match="Tool protocol"):
        bus.register_tool(object())  # type: ignore[arg-type]
    assert bus.statistics().not_found == 1


async def test_deny_policy_grants_by_identity_and_role() -> None:
    bus, events = make_bus(default_policy="deny")
    assert bus.default_policy == "deny"
    assert ToolBus().default_policy == "deny"  # the default
    assert bus.list_tools()[0].policy == "deny"
    sleeper = bus.identities.register_role("sleeper")
    alice = bus.identities.mint("alice")
    bob = bus.identities.mint("bob", roles=[sleeper])
    assert bus.list_available_tools(alice) == []
    with pytest.raises(ToolPermissionDenied, match="alice may not call tool 'echo'"):
        await bus.call(alice, "echo", {"message": "hi"})
    bus.grant("echo", callers=[alice])
    bus.grant("nap", roles=["sleeper"])
    assert await bus.call(alice, "echo", {"message": "hi"}) == {"message": "hi"}
    with pytest.raises(ToolPermissionDenied, match=r"'bob' \(roles: sleeper\) is not granted"):
        await bus.call(bob, "echo", {"message": "hi"})
    assert [s.name for s in bus.list_available_tools(alice)] == ["echo"]
    assert [s.name for s in bus.list_available_tools(bob)] == ["nap"]
    assert bus.is_allowed(bob, "nap")
    assert not bus.is_allowed("bob", "nap")  # a plain name is nobody
    assert await bus.call(bob, "nap", {"seconds": 0}) == "rested"
    bus.revoke("echo", callers=[alice])
    with pytest.raises(ToolPermissionDenied):
        await bus.call(alice, "echo", {"message": "hi"})
    bus.set_policy("echo", "open")
    assert await bus.call("anyone", "echo", {"message": "x"}) == {"message": "x"}
    # An open bus with one tool that has grants: the grants make it deny.
    open_bus = ToolBus(default_policy="open")
    root = open_bus.identities.mint("root")
    open_bus.register_tool(EchoTool(), callers=[root])
    assert open_bus.list_available_tools(root)[0].policy == "deny"
    with pytest.raises(ToolPermissionDenied):
        await open_bus.call("guest", "echo", {"message": "x"})
    stats = bus.statistics().tools["echo"]
    assert stats.denied == 3
    assert stats.succeeded == 2
    denied = [e for e in events.history(ToolCalled) if e.outcome is ToolOutcome.DENIED]
    assert len(denied) == 3
    with pytest.raises(ValueError, match="policy"):
        ToolBus(default_policy="closed")  # type: ignore[arg-type]
    # "restricted" stays accepted as the old name of "deny".
    assert ToolBus(default_policy="restricted").default_policy == "deny"


async def test_invalid_input_never_reaches_the_tool() -> None:
    bus, events = make_bus()
    with pytest.raises(InvalidToolInput, match="message: required property is missing"):
        await bus.call("alice", "explode", {})
    with pytest.raises(InvalidToolInput, match="seconds: expected number, got string"):
        await bus.call("alice", "nap", {"seconds": "1"})
    assert bus.statistics().tools["explode"].failures == 0
    assert bus.statistics().tools["explode"].invalid == 1
    assert events.history(ToolCalled)[-1].outcome is ToolOutcome.INVALID


async def test_deadlines_default_per_tool_per_call(autojump_clock: trio.testing.MockClock) -> None:
    bus, events = make_bus()
    with pytest.raises(ToolTimeout, match=r"30\.0 s deadline"):
        await bus.call("alice", "nap", {"seconds": 100})
    assert trio.current_time() == 30
    with pytest.raises(ToolTimeout):
        await bus.call("alice", "short_fuse", {"seconds": 100})
    assert trio.current_time() == 35
    with pytest.raises(ToolTimeout):
        await bus.call("alice", "short_fuse", {"seconds": 100}, timeout=2)
    assert trio.current_time() == 37
    assert await bus.call("alice", "nap", {"seconds": 100}, timeout=math.inf) == "rested"
    assert trio.current_time() == 137
    bus2 = ToolBus(default_policy="open", default_timeout=1)
    bus2.register_tool(nap, timeout=3)
    assert bus2.list_tools()[0].timeout == 3
    with pytest.raises(ToolTimeout):
        await bus2.call("alice", "nap", {"seconds": 10})
    assert trio.current_time() == 140
    stats = bus.statistics().tools
    assert stats["nap"].timeouts == 1
    assert stats["short_fuse"].timeouts == 2
    assert stats["nap"].latency.max == 100
    timeouts = [e for e in events.history(ToolCalled) if e.outcome is ToolOutcome.TIMEOUT]
    assert [e.duration for e in timeouts] == [30, 5, 2]


async def test_outer_cancellation_is_not_a_timeout(autojump_clock: trio.testing.MockClock) -> None:
    bus, events = make_bus()
    with trio.move_on_after(1) as scope:
        await bus.call("alice", "nap", {"seconds": 10})
    assert scope.cancelled_caught
    stats = bus.statistics().tools["nap"]
    assert (stats.cancelled, stats.timeouts, stats.in_flight) == (1, 0, 0)
    assert events.history(ToolCalled)[-1].error == "cancelled by the caller"


async def test_failures_are_wrapped_with_cause() -> None:
    bus, events = make_bus()
    with pytest.raises(ToolExecutionFailed, match="tool 'explode' failed: KeyError") as caught:
        await bus.call("alice", "explode", {"message": "m"})
    assert isinstance(caught.value.__cause__, KeyError)
    # A ToolError raised by the tool itself passes through as is.
    with pytest.raises(ToolPermissionDenied, match="not for m"):
        await bus.call("alice", "refuse", {"message": "m"})
    stats = bus.statistics()
    assert stats.tools["explode"].failures == 1
    assert stats.tools["refuse"].denied == 1
    failed = events.history(ToolCalled)[-2]
    assert failed.outcome is ToolOutcome.FAILED
    assert failed.error == "ToolExecutionFailed: tool 'explode' failed: KeyError: 'm'"


async def test_statistics_latency(autojump_clock: trio.testing.MockClock) -> None:
    bus, _ = make_bus()
    for seconds in (1, 2, 3, 4):
        await bus.call("alice", "nap", {"seconds": seconds})
    stats = bus.statistics()
    nap_stats = stats.tools["nap"]
    assert (nap_stats.calls, nap_stats.succeeded) == (4, 4)
    assert nap_stats.latency.p50 == 2
    assert nap_stats.latency.p99 == 4
    assert nap_stats.latency.total == 10
    buckets = dict(nap_stats.latency.buckets)
    assert (buckets[1.0], buckets[5.0]) == (1, 3)
    assert stats.calls == 4
    assert stats.blocking_threads == 512


async def test_current_tool_call_is_visible_inside() -> None:
    seen = []

    @tool
    async def who() -> str:
        """Report the call context."""
        await trio.lowlevel.checkpoint()
        call = current_tool_call()
        assert call is not None
        seen.append((call.tool, call.caller))
        return "ok"

    bus = ToolBus(default_policy="open")
    bus.register_tool(who)
    await bus.call("carol", "who")
    assert seen == [("who", "carol")]
    assert current_tool_call() is None


async def test_blocking_tool_runs_in_a_thread_and_is_abandoned_on_timeout() -> None:
    release = threading.Event()
    threads: list[str] = []

    @tool(blocking=True)
    def wait_for_release(limit: float) -> str:
        """Block a worker thread."""
        threads.append(threading.current_thread().name)
        release.wait(limit)
        return "released"

    bus = ToolBus(default_policy="open", blocking_threads=2)
    bus.register_tool(wait_for_release)
    started = time.perf_counter()
    with pytest.raises(ToolTimeout):
        await bus.call("alice", "wait_for_release", {"limit": 5}, timeout=0.05)
    assert time.perf_counter() - started < 1  # abandoned, not waited for
    assert threads == ["wait_for_release"]
    # The abandoned thread still holds its slot until it really ends.
    assert bus.statistics().blocking_threads_in_use == 1
    release.set()
    with trio.fail_after(5):
        while bus.statistics().blocking_threads_in_use:
            await trio.sleep(0.01)
    assert await bus.call("alice", "wait_for_release", {"limit": 5}) == "released"
    assert threading.current_thread().name not in ("wait_for_release",)


async def test_blocking_threads_are_limited() -> None:
    running = 0
    peak = 0
    lock = threading.Lock()

    @tool(blocking=True)
    def busy(i: int) -> int:
        """Count concurrent threads."""
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        time.sleep(0.02)
        with lock:
            running -= 1
        return i

    bus = ToolBus(default_policy="open", blocking_threads=2)
    bus.register_tool(busy)
    results: list[object] = []
    async with trio.open_nursery() as nursery:
        for i in range(6):
            nursery.start_soon(lambda i=i: _collect(bus, i, results))  # type: ignore[misc]
    assert sorted(results) == list(range(6))  # type: ignore[type-var]
    assert peak == 2


async def _collect(bus: ToolBus, i: int, results: list[object]) -> None:
    results.append(await bus.call("x", "busy", {"i": i}))


class FakeAgent:
    """An Askable that records the timeouts it was given."""

    def __init__(self, delay: float = 0.0, *, time_out: bool = False) -> None:
        self.delay = delay
        self.time_out = time_out
        self.asks: list[tuple[object, float | None]] = []

    async def ask(self, message: object, *, timeout: float | None = None) -> object:
        self.asks.append((message, timeout))
        await trio.sleep(self.delay)
        if self.time_out:
            raise AskTimeout("no reply")
        return f"answer to {message}"


async def test_agent_tool_propagates_remaining_deadline(
    autojump_clock: trio.testing.MockClock,
) -> None:
    agent = FakeAgent(delay=1)
    assert isinstance(agent, Askable)
    bus = ToolBus(default_policy="open")
    bus.register_tool(AgentTool(agent, name="researcher", description="Finds things."))
    assert await bus.call("boss", "researcher", {"message": "q1"}) == "answer to q1"
    with trio.move_on_after(7):
        await bus.call("boss", "researcher", {"message": "q2"})
    assert await bus.call("boss", "researcher", {"message": "q3"}, timeout=4) == "answer to q3"
    assert agent.asks == [("q1", 30.0), ("q2", 7.0), ("q3", 4.0)]
    capped = AgentTool(agent, name="capped", description="d", timeout=2)
    bus.register_tool(capped)
    assert bus.list_tools()[1].timeout == 2
    await bus.call("boss", "capped", {"message": "q4"})
    assert agent.asks[-1] == ("q4", 2.0)
    # Outside any deadline and without its own timeout, the ask is unbounded.
    assert await AgentTool(agent, name="n", description="d").execute({"message": "q5"})
    last: tuple[object, float | None] = agent.asks[-1]
    assert last == ("q5", None)


async def test_agent_tool_timeout_and_custom_message() -> None:
    bus = ToolBus(default_policy="open")
    bus.register_tool(AgentTool(FakeAgent(time_out=True), name="slow", description="d"))
    with pytest.raises(ToolTimeout, match="no reply") as caught:
        await bus.call("boss", "slow", {"message": "q"})
    assert isinstance(caught.value.__cause__, AskTimeout)
    agent = FakeAgent()
    from mister_smith.tools import ToolSchema

    custom = AgentTool(
        agent,
        name="calc",
        description="Adds.",
        input_schema=ToolSchema.from_properties(
            {"a": {"type": "integer"}, "b": {"type": "integer"}}, required=["a", "b"]
        ),
        to_message=lambda args: ("add", args["a"], args["b"]),
    )
    bus.register_tool(custom)
    await bus.call("boss", "calc", {"a": 1, "b": 2})
    assert agent.asks[0][0] == ("add", 1, 2)
    with pytest.raises(ValueError, match="input_schema"):
        AgentTool(agent, name="x", description="d", to_message=lambda args: args)
    assert issubclass(ToolTimeout, ToolError)


async def test_replace_tool_keeps_policy_grants_and_deadline() -> None:
    bus = ToolBus()
    alice = bus.identities.mint("alice")
    bus.register_tool(EchoTool(), callers=[alice], timeout=3)
    await bus.call(alice, "echo", {"message": "a"})
    loud = EchoTool()
    assert bus.replace_tool(loud) is not loud
    assert bus.get_tool("echo") is loud
    [spec] = bus.list_tools()
    assert (spec.policy, spec.timeout) == ("deny", 3)
    assert bus.is_allowed(alice, "echo")
    assert not bus.is_allowed("alice", "echo")
    assert bus.statistics().tools["echo"].calls == 0  # a different tool: counted afresh
    with pytest.raises(ToolNotFound):
        bus.replace_tool(EchoTool(name="other"))
    with pytest.raises(TypeError, match="Tool protocol"):
        bus.replace_tool(object())  # type: ignore[arg-type]


async def test_bus_wide_calls_keep_counting_calls_of_replaced_and_removed_tools() -> None:
    # Calls over all tools are summed from the per-tool counters; a tool replaced or
    # unregistered takes its counters away, and the bus-wide count must not lose them.
    bus = ToolBus(default_policy="open")
    bus.register_tool(EchoTool())
    bus.register_tool(EchoTool(name="other"))
    await bus.call("alice", "echo", {"message": "a"})
    await bus.call("alice", "other", {"message": "b"})
    with pytest.raises(ToolNotFound):
        await bus.call("alice", "missing")
    with pytest.raises(InvalidToolInput):
        await bus.call("alice", "echo", {})
    assert (bus.statistics().calls, bus.statistics().not_found) == (4, 1)
    bus.replace_tool(EchoTool())
    assert bus.statistics().calls == 4
    await bus.call("alice", "echo", {"message": "c"})
    bus.unregister_tool("other")
    stats = bus.statistics()
    assert (stats.calls, stats.not_found, list(stats.tools)) == (5, 1, ["echo"])
    assert stats.tools["echo"].calls == 1
