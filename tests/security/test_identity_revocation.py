"""An identity lives exactly as long as its actor: across restarts, not beyond a stop.

Attack (issue 12, item 1): the name of a stopped agent obtained its restricted tools,
because grants were keyed by name. Now a stopped actor's identity is revoked, a new
actor reusing the name gets a fresh identity with none of the old grants, and the bus
forgets grants to revoked identities (they do not pile up).
"""

from __future__ import annotations

import gc
import weakref
from typing import Any

import pytest
import trio

from mister_smith import (
    Actor,
    ActorContext,
    CallerIdentity,
    EchoTool,
    InvalidGrant,
    ToolBus,
    ToolPermissionDenied,
    open_actor_system,
)

SEEN: list[CallerIdentity] = []


class Worker(Actor):
    """Calls echo as itself; ``"crash"`` crashes it; records its identity per incarnation."""

    def __init__(self, bus: ToolBus) -> None:
        self.bus = bus

    async def on_start(self, ctx: ActorContext) -> None:
        SEEN.append(ctx.identity)

    async def handle(self, message: Any, ctx: ActorContext) -> Any:
        if message == "crash":
            raise RuntimeError("crash on purpose")
        return await self.bus.call(ctx.identity, "echo", {"message": message})


async def test_identity_survives_restarts_and_dies_with_the_actor(
    autojump_clock: trio.abc.Clock,
) -> None:
    SEEN.clear()
    async with open_actor_system() as system:
        bus = ToolBus(identities=system.identities)
        bus.register_tool(EchoTool())
        worker = await system.spawn(Worker, bus, name="worker")
        bus.grant("echo", callers=[worker])
        assert await worker.ask("one") == {"message": "one"}
        with pytest.raises(Exception, match="crashed"):
            await worker.ask("crash")
        assert await worker.ask("two") == {"message": "two"}  # restarted, still granted
        assert len(SEEN) == 2
        assert SEEN[0] is SEEN[1]  # one identity across incarnations
        old = SEEN[0]
        await worker.stop()
        assert not system.identities.is_live(old)
        with pytest.raises(ToolPermissionDenied, match="revoked"):
            await bus.call(old, "echo", {"message": "ghost"})
        with pytest.raises(ToolPermissionDenied, match="plain name"):
            await bus.call("worker", "echo", {"message": "ghost"})
        with pytest.raises(InvalidGrant, match="has no live identity"):
            bus.grant("echo", callers=[worker])  # a grant to a stopped actor never applies
        # A new actor under the same name is somebody else.
        again = await system.spawn(Worker, bus, name="worker")
        assert SEEN[-1] is not old
        assert SEEN[-1].name == old.name == "worker"
        with pytest.raises(Exception, match="crashed") as crashed:
            await again.ask("hi")
        assert isinstance(crashed.value.__cause__, ToolPermissionDenied)


async def test_grants_to_stopped_actors_do_not_accumulate(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with open_actor_system() as system:
        bus = ToolBus(identities=system.identities)
        bus.register_tool(EchoTool())
        before = system.identities.statistics()
        watchers: list[weakref.ref[CallerIdentity]] = []
        for index in range(200):
            ref = await system.spawn(Worker, bus, name=f"w{index}")
            bus.grant("echo", callers=[ref])
            identity = system.identities.identity_of_actor(ref.actor_id)
            assert identity is not None
            watchers.append(weakref.ref(identity))
            del identity
            await ref.stop()
        del ref
        SEEN.clear()
        after = system.identities.statistics()
        assert after.live == before.live
        assert after.revoked - before.revoked == 200
        gc.collect()
        # The bus dropped every grant: nothing keeps the revoked identities alive.
        assert [w for w in watchers if w() is not None] == []
