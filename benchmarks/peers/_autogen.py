"""autogen-core: agents on ``SingleThreadedAgentRuntime``, one ``asyncio.run`` per run.

Natural use: agents are ``BaseAgent`` subclasses registered by type with a factory and
created by the runtime on their first message; a ``TypeSubscription`` maps the topic
source to the agent key. A tell is ``runtime.publish_message`` (autogen's only
fire-and-forget send), an ask is ``runtime.send_message``, which returns the handler's
result. Completion of tell and fan-out runs is signalled by the agents through an
``asyncio.Event``. The runtime handles each delivered message in its own asyncio task,
so one agent's messages are not serialised as in a mailbox.

Not available: spawn + stop (an agent instance, whether made by its factory on first
message or added with ``register_agent_instance``, cannot be stopped or removed; it lives
until the runtime closes) and restart (no supervision: a handler exception goes back to
the ``send_message`` caller, or is logged for a publish, and the same instance goes on).
"""

# mypy: disallow-subclassing-any=False

from __future__ import annotations

import asyncio
import time
from typing import Any, ClassVar

from autogen_core import (  # type: ignore[import-not-found, unused-ignore]
    AgentId,
    BaseAgent,
    MessageContext,
    SingleThreadedAgentRuntime,
    TopicId,
    TypeSubscription,
)

from ._model import PeerAdapter

TOPIC = "bench"


class _Countdown:
    __slots__ = ("done", "remaining")

    def __init__(self, remaining: int) -> None:
        self.remaining = remaining
        self.done = asyncio.Event()


class _Counter(BaseAgent):  # type: ignore[misc, unused-ignore]
    def __init__(self, target: int = 0, done: asyncio.Event | None = None) -> None:
        super().__init__("counts messages")
        self.target = target
        self.done = done
        self.count = 0

    async def on_message_impl(self, message: Any, ctx: MessageContext) -> Any:
        if isinstance(message, _Countdown):
            message.remaining -= 1
            if message.remaining == 0:
                message.done.set()
            return None
        self.count += 1
        if self.count == self.target and self.done is not None:
            self.done.set()
        return None


class _Echo(BaseAgent):  # type: ignore[misc, unused-ignore]
    def __init__(self) -> None:
        super().__init__("echoes messages")

    async def on_message_impl(self, message: Any, ctx: MessageContext) -> Any:
        return message


async def _runtime_with(agent_type: str, factory: Any) -> Any:
    runtime = SingleThreadedAgentRuntime()
    await runtime.register_factory(agent_type, factory)
    await runtime.add_subscription(TypeSubscription(topic_type=TOPIC, agent_type=agent_type))
    runtime.start()
    return runtime


async def _tell(loops: int) -> float:
    done = asyncio.Event()
    runtime = await _runtime_with("counter", lambda: _Counter(loops, done))
    try:
        topic = TopicId(TOPIC, "0")
        started = time.perf_counter()
        for i in range(loops):
            await runtime.publish_message(i, topic)
        await done.wait()
        return time.perf_counter() - started
    finally:
        await runtime.stop()
        await runtime.close()


async def _ask(loops: int) -> list[float]:
    runtime = await _runtime_with("echo", _Echo)
    latencies: list[float] = []
    try:
        echo = AgentId("echo", "0")
        await runtime.send_message(-1, echo)
        for i in range(loops):
            started = time.perf_counter()
            await runtime.send_message(i, echo)
            latencies.append(time.perf_counter() - started)
    finally:
        await runtime.stop()
        await runtime.close()
    return latencies


async def _fanout(loops: int, actors: int) -> float:
    runtime = await _runtime_with("counter", _Counter)
    try:
        topics = [TopicId(TOPIC, str(i)) for i in range(actors)]
        # Create every agent (and warm the subscription lookups) before timing.
        waves = [_Countdown(actors) for _ in range(loops + 1)]
        elapsed = 0.0
        for index, wave in enumerate(waves):
            started = time.perf_counter()
            for topic in topics:
                await runtime.publish_message(wave, topic)
            await wave.done.wait()
            if index:
                elapsed += time.perf_counter() - started
        return elapsed
    finally:
        await runtime.stop()
        await runtime.close()


class Autogen(PeerAdapter):
    """autogen-core agents on the single-threaded asyncio runtime."""

    name: ClassVar[str] = "autogen-core"
    distribution: ClassVar[str | None] = "autogen-core"
    concurrency: ClassVar[str] = (
        "asyncio SingleThreadedAgentRuntime, one task per delivered message; "
        "one asyncio.run per measurement"
    )
    unsupported: ClassVar[dict[str, str]] = {
        "tell_burst": "no non-blocking send: publish_message is awaited (the tell row)",
        "spawn_stop": (
            "no per-agent stop: an agent instance lives until its runtime closes "
            "(agents are created by their factory on first message)"
        ),
        "restart": (
            "no supervision: a handler exception goes back to the send_message caller "
            "(or is logged for a publish) and the same agent instance goes on"
        ),
    }

    def tell(self, loops: int) -> float:
        return asyncio.run(_tell(loops))

    def ask(self, loops: int) -> list[float]:
        return asyncio.run(_ask(loops))

    def fanout(self, loops: int, actors: int) -> float:
        return asyncio.run(_fanout(loops, actors))
