"""Bounded spawning: the design doc's ``SpawnController``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs
import trio

from ..errors import PoolExhausted
from ._actor import Actor
from ._ref import ActorRef
from ._system import ActorSystem


@attrs.frozen
class SpawnStatistics:
    """Counters of a :class:`SpawnController`."""

    max_agents: int
    active: int
    spawned: int
    refused: int


class SpawnController:
    """Spawns at most ``max_agents`` live actors through an :class:`ActorSystem`.

    Beyond the bound, :meth:`spawn_bounded` raises
    :class:`~mister_smith.errors.PoolExhausted` at once, or waits up to ``timeout``
    for a slot when given one. A slot is released whenever its actor ends, however it
    ends (stop, crash without restart, shutdown, cancellation during spawn), so
    :attr:`active` is always exact.
    """

    def __init__(self, system: ActorSystem, max_agents: int) -> None:
        if max_agents < 1:
            raise ValueError(f"max_agents must be >= 1, got {max_agents!r}")
        self.system = system
        self.max_agents = max_agents
        self._slots = trio.Semaphore(max_agents)
        self._mine: set[ActorRef] = set()
        self._spawned = 0
        self._refused = 0
        system.add_termination_listener(self._released)

    @property
    def active(self) -> int:
        """Live actors spawned through this controller."""
        return self.max_agents - self._slots.value

    def _released(self, ref: ActorRef) -> None:
        if ref in self._mine:
            self._mine.discard(ref)
            self._slots.release()

    async def spawn_bounded(
        self,
        factory: Callable[..., Actor],
        *args: Any,
        timeout: float | None = None,
        **options: Any,
    ) -> ActorRef:
        """Spawn like :meth:`ActorSystem.spawn`, within the bound.

        Args:
            factory: The actor factory.
            args: Its arguments.
            timeout: Seconds to wait for a free slot (``None``: refuse at once).
            options: Passed to :meth:`ActorSystem.spawn`.

        Raises:
            PoolExhausted: no slot free (within ``timeout``).
        """
        if timeout is not None and not timeout >= 0:
            raise ValueError(f"spawn timeout must be >= 0 seconds, got {timeout!r}")
        if timeout is None:
            await trio.lowlevel.checkpoint_if_cancelled()
            try:
                self._slots.acquire_nowait()
            except trio.WouldBlock:
                self._refused += 1
                raise PoolExhausted(f"spawn limit reached: {self.max_agents} live agents") from None
        else:
            acquired = False
            try:
                self._slots.acquire_nowait()  # a free slot is taken even with timeout=0
                acquired = True
            except trio.WouldBlock:
                with trio.move_on_after(timeout):
                    await self._slots.acquire()
                    acquired = True
            if not acquired:
                self._refused += 1
                raise PoolExhausted(
                    f"spawn limit reached: {self.max_agents} live agents, none freed "
                    f"within {timeout} s"
                )
        try:
            ref = await self.system.spawn(factory, *args, **options)
        except BaseException:
            self._slots.release()
            raise
        if not ref.is_alive:  # ended during spawn already
            self._slots.release()
        else:
            self._mine.add(ref)
        self._spawned += 1
        return ref

    def statistics(self) -> SpawnStatistics:
        """Counters and the current count."""
        return SpawnStatistics(self.max_agents, self.active, self._spawned, self._refused)

    def close(self) -> None:
        """Stop tracking terminations (the live actors keep running)."""
        self.system.remove_termination_listener(self._released)
