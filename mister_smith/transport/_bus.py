"""``MessageBus``: named groups of actors and pluggable routing strategies."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import attrs
import trio

from ..actors import ActorRef
from ..errors import DispatchQueueFull, NoRouteError
from ._members import Members
from ._message import payload_of
from ._strategies import (
    CapabilityBasedRouting,
    ConsistentHashRouting,
    LoadBalancedRouting,
    PriorityRouting,
    PriorityScheduler,
    RoundRobinRouting,
    RoutingStrategy,
)


@attrs.frozen
class MessageBusStatistics:
    """Counters of a :class:`MessageBus`."""

    groups: int
    routed: int
    no_route: int
    queued_by_priority: int
    by_strategy: dict[str, int]
    refused: int = 0
    """Submissions refused because the group's priority queue was full."""


class MessageBus:
    """Routes messages to members of named actor groups.

    Strategies are registered by name and consulted in priority order (highest
    first); the first that answers chooses. By default capability routing (for
    messages that name ``requires``), consistent hashing (for messages with a
    ``key``) and load balancing (everything else) are registered; ``round_robin``
    and ``priority`` can be named per call. Dead or stopped members are skipped.

    Priority ordering needs a dispatcher task: use :func:`open_message_bus` and
    :meth:`submit`. Each group's priority queue holds at most ``max_queued`` messages
    (bounded everything): past that, :meth:`submit` refuses with
    :class:`~mister_smith.errors.DispatchQueueFull` rather than growing without bound.
    """

    def __init__(self, *, defaults: bool = True, max_queued: int = 1000) -> None:
        if isinstance(max_queued, bool) or not isinstance(max_queued, int) or max_queued < 1:
            raise ValueError(f"max_queued must be an int >= 1, got {max_queued!r}")
        self.max_queued = max_queued
        self._refused = 0
        self._groups: dict[str, list[ActorRef]] = {}
        self._alive: dict[str, Members] = {}
        self._strategies: dict[str, RoutingStrategy] = {}
        self._ordered: list[tuple[str, RoutingStrategy]] = []
        self._no_route = 0
        self._by_strategy: dict[str, int] = {}
        self._schedulers: dict[str, PriorityScheduler] = {}
        self._wakeup = trio.Event()
        self._dispatching = False
        if defaults:
            self.register_routing_strategy("capability", CapabilityBasedRouting())
            self.register_routing_strategy("consistent_hash", ConsistentHashRouting())
            self.register_routing_strategy("load_balanced", LoadBalancedRouting())
            self.register_routing_strategy("round_robin", RoundRobinRouting(), auto=False)
            self.register_routing_strategy("priority", PriorityRouting(), auto=False)

    # -- groups -------------------------------------------------------------------------

    def join(self, group: str, *refs: ActorRef) -> None:
        """Add actors to ``group`` (created on first use); duplicates are ignored."""
        members = self._groups.setdefault(group, [])
        for ref in refs:
            if not isinstance(ref, ActorRef):
                raise TypeError(f"group members must be ActorRefs, got {ref!r}")
            if ref not in members:
                members.append(ref)
        self._forget_alive(group)

    def leave(self, group: str, ref: ActorRef) -> None:
        """Remove ``ref`` from ``group`` (no error if it is not a member)."""
        members = self._groups.get(group)
        if members and ref in members:
            members.remove(ref)
        self._forget_alive(group)

    def _forget_alive(self, group: str) -> None:
        old = self._alive.pop(group, None)
        if old is not None:
            old.close()

    def members(self, group: str) -> list[ActorRef]:
        """The live members of ``group``, in join order.

        Raises:
            NoRouteError: there is no such group.
        """
        return list(self._live(group, refresh=True))

    def _live(self, group: str, *, refresh: bool = False) -> Members:
        """The cached live members (the same object until membership changes)."""
        alive = self._alive.get(group)
        if alive is None or refresh:
            try:
                members = self._groups[group]
            except KeyError:
                raise NoRouteError(f"no message group named {group!r}") from None
            fresh = tuple(ref for ref in members if ref.is_alive)
            if len(fresh) != len(members):
                members[:] = fresh
            if alive is None or fresh != alive:
                if alive is not None:
                    alive.close()
                alive = Members(fresh)
                self._alive[group] = alive
        return alive

    def groups(self) -> list[str]:
        """Every group name."""
        return list(self._groups)

    def close(self) -> None:
        """Stop following the members' loads (their mailboxes report every change to
        the bus's load indexes while it routes). :func:`open_message_bus` does this on
        exit; call it when dropping a bus made directly. Routing again rebuilds them."""
        for group in list(self._alive):
            self._forget_alive(group)

    # -- strategies ---------------------------------------------------------------------

    def register_routing_strategy(
        self, name: str, strategy: RoutingStrategy, *, auto: bool = True
    ) -> None:
        """Register ``strategy`` under ``name``.

        Args:
            name: How calls refer to it (``strategy=name``).
            strategy: Any object with ``select_recipient`` and ``priority``.
            auto: Whether it is consulted for calls that name no strategy.
        """
        if not isinstance(strategy, RoutingStrategy):
            raise TypeError(f"{strategy!r} has no select_recipient()/priority()")
        self._strategies[name] = strategy
        self._ordered = [(n, s) for n, s in self._ordered if n != name]
        if auto:
            self._ordered.append((name, strategy))
            self._ordered.sort(key=lambda item: -item[1].priority())

    def unregister_routing_strategy(self, name: str) -> None:
        """Remove a strategy (no error if absent)."""
        self._strategies.pop(name, None)
        self._ordered = [(n, s) for n, s in self._ordered if n != name]

    def strategies(self) -> list[str]:
        """Strategies consulted by default, in order."""
        return [name for name, _ in self._ordered]

    # -- routing ------------------------------------------------------------------------

    def route(self, group: str, message: Any, *, strategy: str | None = None) -> ActorRef:
        """Choose the member of ``group`` that should get ``message``.

        Raises:
            NoRouteError: no group, no live member, an unknown strategy name, or no
                strategy could place the message.
        """
        # The hot path of every routed message: a cached member set, one dict lookup
        # for a named strategy, one call to it, one liveness check and one count.
        # Anything unusual (no cached members, an unknown name, a dead recipient, no
        # answer) leaves for the slow paths below, which raise and count refusals.
        candidates = self._alive.get(group)
        if not candidates:  # not cached yet, or no live member
            candidates = self._candidates(group)
        if strategy is None or (chosen := self._strategies.get(strategy)) is None:
            # The default order, or an unknown name (refused there).
            name, recipient = self._choose(group, message, strategy, candidates)
        else:  # _choose's named branch, inlined
            try:
                answer = chosen.select_recipient(message, candidates)
            except NoRouteError:
                self._no_route += 1
                raise
            if answer is None:
                raise self._refuse(f"no routing strategy placed the message for group {group!r}")
            name, recipient = strategy, answer
        if not recipient.is_alive:
            # A member died since the cache was built: drop the dead and choose again.
            candidates = self._candidates(group, refresh=True)
            name, recipient = self._choose(group, message, strategy, candidates)
        by_strategy = self._by_strategy
        by_strategy[name] = by_strategy.get(name, 0) + 1
        return recipient

    def _refuse(self, reason: str) -> NoRouteError:
        """Count a message no strategy could place and say why (for ``raise``)."""
        self._no_route += 1
        return NoRouteError(reason)

    def _candidates(self, group: str, *, refresh: bool = False) -> Members:
        """The live members of ``group``, never empty.

        Raises:
            NoRouteError: no such group, or no live member (counted under ``no_route``).
        """
        try:
            candidates = self._live(group, refresh=refresh)
        except NoRouteError:
            self._no_route += 1
            raise
        if not candidates:
            raise self._refuse(f"message group {group!r} has no live member")
        return candidates

    def _choose(
        self,
        group: str,
        message: Any,
        strategy: str | None,
        candidates: Members,
    ) -> tuple[str, ActorRef]:
        """The strategy's name and its choice among ``candidates`` (never empty)."""
        if strategy is None:
            return self._choose_auto(group, message, candidates)
        chosen = self._strategies.get(strategy)
        if chosen is None:
            raise self._refuse(
                f"no routing strategy named {strategy!r} (registered: {sorted(self._strategies)})"
            )
        try:
            recipient = chosen.select_recipient(message, candidates)
        except NoRouteError:
            self._no_route += 1
            raise
        if recipient is None:
            raise self._refuse(f"no routing strategy placed the message for group {group!r}")
        return strategy, recipient

    def _choose_auto(self, group: str, message: Any, candidates: Members) -> tuple[str, ActorRef]:
        """Consult the default strategies in priority order; the first answer wins."""
        try:
            for name, candidate_strategy in self._ordered:
                recipient = candidate_strategy.select_recipient(message, candidates)
                if recipient is not None:
                    return name, recipient
        except NoRouteError:
            self._no_route += 1
            raise
        raise self._refuse(f"no routing strategy placed the message for group {group!r}")

    async def send(self, group: str, message: Any, *, strategy: str | None = None) -> ActorRef:
        """Route ``message`` and ``tell`` it (waiting for mailbox room); return the recipient."""
        recipient = self.route(group, message, strategy=strategy)
        await recipient.tell(payload_of(message))
        return recipient

    async def ask(
        self,
        group: str,
        message: Any,
        *,
        strategy: str | None = None,
        timeout: float | None = None,
    ) -> Any:
        """Route ``message`` and ``ask`` the chosen member."""
        recipient = self.route(group, message, strategy=strategy)
        return await recipient.ask(payload_of(message), timeout=timeout)

    # -- priority dispatch --------------------------------------------------------------

    def submit(self, group: str, message: Any) -> None:
        """Queue ``message`` for ``group`` in priority order (needs :func:`open_message_bus`).

        The dispatcher sends queued messages highest priority first, each to the
        least-loaded live member, waiting for mailbox room; no message is overtaken
        more than the priority strategy's ``max_overtakes`` times.

        Raises:
            DispatchQueueFull: ``max_queued`` messages of ``group`` are waiting.
        """
        if not self._dispatching:
            raise RuntimeError("submit() needs a running dispatcher: use open_message_bus()")
        self.members(group)  # the group must exist
        scheduler = self._schedulers.get(group)
        if scheduler is not None and len(scheduler) >= self.max_queued:
            self._refused += 1
            raise DispatchQueueFull(
                f"priority queue of group {group!r} is full ({self.max_queued} messages)"
            )
        if scheduler is None:
            priority_strategy = self._strategies.get("priority")
            scheduler = (
                priority_strategy.new_scheduler()
                if isinstance(priority_strategy, PriorityRouting)
                else PriorityScheduler()
            )
            self._schedulers[group] = scheduler
        scheduler.push(message, PriorityRouting.message_priority(message))
        self._wakeup.set()

    async def _dispatch(self) -> None:
        while True:
            busy = False
            for group, scheduler in list(self._schedulers.items()):
                if not scheduler:
                    continue
                busy = True
                message = scheduler.pop()
                # A message whose group emptied meanwhile cannot be delivered: route()
                # counts it under no_route and the dispatcher carries on.
                with contextlib.suppress(NoRouteError):
                    await self.send(group, message, strategy="priority")
            if not busy:
                self._wakeup = trio.Event()
                await self._wakeup.wait()

    def statistics(self) -> MessageBusStatistics:
        """Counters of the bus."""
        return MessageBusStatistics(
            groups=len(self._groups),
            # Every routed message is counted once under its strategy.
            routed=sum(self._by_strategy.values()),
            no_route=self._no_route,
            queued_by_priority=sum(len(s) for s in self._schedulers.values()),
            by_strategy=dict(self._by_strategy),
            refused=self._refused,
        )


@asynccontextmanager
async def open_message_bus(
    *, defaults: bool = True, max_queued: int = 1000
) -> AsyncIterator[MessageBus]:
    """A :class:`MessageBus` with its priority dispatcher running in a nursery."""
    bus = MessageBus(defaults=defaults, max_queued=max_queued)
    async with trio.open_nursery() as nursery:
        bus._dispatching = True
        nursery.start_soon(bus._dispatch)
        try:
            yield bus
        finally:
            bus._dispatching = False
            bus.close()
            nursery.cancel_scope.cancel()
