"""The actor cell and its incarnations: what outlives a restart and what does not.

The cell keeps identity, mailbox, options, placement, its child and its latest
incarnation; everything else (status, supervisor, domain, actor id) is derived. Each
restart begins a new :class:`Incarnation` with its own number, instance and context, and
the error that ended the previous one reaches ``on_restart`` once.
"""

from __future__ import annotations

from typing import Any

import trio
import trio.testing

from mister_smith.actors import Actor, ActorContext, ActorStatus, open_actor_system
from mister_smith.actors._cell import ActorCell
from mister_smith.actors._incarnation import IDLE, Incarnation
from mister_smith.supervision import Supervisor


class Recorder(Actor):
    """Records the contexts and restart errors it sees; crashes on ``"boom"``."""

    def __init__(self, seen: list[tuple[int, ActorContext, BaseException | None]]) -> None:
        self.seen = seen

    async def on_start(self, ctx: ActorContext) -> None:
        self.seen.append((ctx.incarnation, ctx, None))

    async def on_restart(self, ctx: ActorContext, error: BaseException | None) -> None:
        self.seen.append((ctx.incarnation, ctx, error))

    async def handle(self, message: Any, ctx: ActorContext) -> Any:
        if message == "boom":
            raise ValueError("boom")
        if message == "wait":
            await trio.sleep(10)
        return ctx.incarnation


def alive(ref: Any) -> bool:
    """``ref.is_alive`` read through a call (so the checker narrows nothing)."""
    return bool(ref.is_alive)


def cell_of(ref: Any) -> ActorCell:
    cell: ActorCell = ref._cell
    return cell


async def test_each_restart_begins_a_new_incarnation_and_the_cell_keeps_the_rest(
    autojump_clock: trio.testing.MockClock,
) -> None:
    seen: list[tuple[int, ActorContext, BaseException | None]] = []
    async with open_actor_system() as system:
        ref = await system.spawn(Recorder, seen, name="rec")
        cell = cell_of(ref)
        first = cell.incarnation
        assert isinstance(first, Incarnation)
        assert (first.number, first.current, first.error) == (1, IDLE, None)
        mailbox, identity, child = cell.mailbox, cell.identity, cell.child
        assert cell.actor_id is identity.actor_id
        assert ref.actor_id == cell.actor_id
        assert cell.supervisor is system.supervisor
        assert child is not None
        assert cell.domain is system.default_domain

        await ref.tell("boom")
        assert await ref.ask("which") == 2
        second = cell.incarnation
        assert second is not first
        assert second is not None
        assert second.number == 2
        assert isinstance(first.error, ValueError)  # what ended the first run
        assert second.error is None
        # What outlives the restart: mailbox, identity, child and ref.
        assert (cell.mailbox, cell.identity, cell.child) == (mailbox, identity, child)
        assert system.lookup("rec") == ref
        # A fresh context per incarnation, told the previous run's error once.
        # (on_start of run 1; on_restart then on_start of run 2)
        (n1, ctx1, e1), (n2, ctx2, e2), (n3, ctx3, e3) = seen
        assert (n1, e1, n2, n3, e3) == (1, None, 2, 2, None)
        assert isinstance(e2, ValueError)
        assert e2 is first.error
        assert ctx2 is ctx3 is second.ctx
        assert ctx1 is not ctx2
        assert ctx1.identity is ctx2.identity


async def test_status_is_derived_from_the_child_and_the_incarnation(
    autojump_clock: trio.testing.MockClock,
) -> None:
    seen: list[tuple[int, ActorContext, BaseException | None]] = []
    async with open_actor_system() as system:
        ref = await system.spawn(Recorder, seen)
        cell = cell_of(ref)
        assert ref.statistics().status is ActorStatus.IDLE
        assert cell.announced
        assert alive(ref)
        await ref.tell("wait")
        await trio.sleep(1)
        incarnation = cell.incarnation
        assert incarnation is not None
        assert incarnation.busy
        assert ref.statistics().status is ActorStatus.BUSY
        await ref.stop()
        assert ref.statistics().status is ActorStatus.STOPPED
        assert cell.closed
        assert not alive(ref)
        # Writes go through the cell: closing twice reports it was closed already.
        assert cell.close() is False
        assert cell.announce() is False


async def test_an_actor_under_a_plain_supervisor_has_no_domain(
    autojump_clock: trio.testing.MockClock,
) -> None:
    seen: list[tuple[int, ActorContext, BaseException | None]] = []
    async with open_actor_system() as system:
        team = await system.start_domain("team")
        ref = await system.spawn(Recorder, seen, supervisor=team)
        assert cell_of(ref).domain is team
        assert cell_of(ref).supervisor is team.supervisor
        plain = cell_of(ref)
        assert isinstance(plain.placement, type(team))
        # A supervisor that is no domain of the system: the placement is that supervisor.
        owned = await system.supervisor.start_supervisor("owned")
        assert isinstance(owned, Supervisor)
        other = await system.spawn(Recorder, seen, supervisor=owned)
        assert cell_of(other).domain is None
        assert cell_of(other).placement is owned
        assert cell_of(other).supervisor is owned
        assert repr(cell_of(other).incarnation).startswith("<Incarnation 1 of Recorder")


async def test_lifecycle_hooks_run_whether_overridden_or_set_on_the_instance() -> None:
    from mister_smith.actors import Actor, open_actor_system

    calls: list[str] = []

    class Plain(Actor):
        async def handle(self, message: object, ctx: object) -> object:
            return message

    class Inherits(Plain):
        async def on_stop(self, ctx: object) -> None:
            calls.append("class on_stop")

    class Grandchild(Inherits):
        pass

    def with_instance_hooks() -> Plain:
        actor = Plain()

        async def on_start(ctx: object) -> None:
            calls.append("instance on_start")

        async def on_stop(ctx: object) -> None:
            calls.append("instance on_stop")

        actor.on_start = on_start  # type: ignore[method-assign]
        actor.on_stop = on_stop  # type: ignore[method-assign]
        return actor

    async with open_actor_system() as system:
        for factory in (Plain, Grandchild, with_instance_hooks):
            ref = await system.spawn(factory)
            assert await ref.ask("ping") == "ping"
            await ref.stop()
    assert calls == ["class on_stop", "instance on_start", "instance on_stop"]
