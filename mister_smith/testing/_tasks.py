"""Counting Trio tasks, to prove that nothing outlives the runtime."""

from __future__ import annotations

import trio


class TaskCounter(trio.abc.Instrument):
    """A Trio instrument counting tasks spawned and exited, and keeping the live ones.

    Pass it to ``trio.run(..., instruments=[counter])`` or add it to a running loop
    with ``trio.lowlevel.add_instrument(counter)``. :meth:`mark` starts a new epoch;
    :meth:`live_since_mark` lists the tasks spawned since then that are still alive —
    after a runtime has closed, that list must be empty.
    """

    def __init__(self) -> None:
        self.spawned = 0
        """Tasks spawned while the instrument was installed."""
        self.exited = 0
        """Tasks exited while the instrument was installed."""
        self._live: dict[trio.lowlevel.Task, int] = {}
        self._epoch = 0

    def task_spawned(self, task: trio.lowlevel.Task) -> None:
        """Trio hook: ``task`` was spawned."""
        self.spawned += 1
        self._live[task] = self._epoch

    def task_exited(self, task: trio.lowlevel.Task) -> None:
        """Trio hook: ``task`` exited."""
        self.exited += 1
        self._live.pop(task, None)

    def mark(self) -> None:
        """Start a new epoch: later :meth:`live_since_mark` calls only see newer tasks."""
        self._epoch += 1

    def live(self) -> list[trio.lowlevel.Task]:
        """Every task spawned while installed that has not exited yet."""
        return list(self._live)

    def live_since_mark(self) -> list[trio.lowlevel.Task]:
        """Tasks spawned since the latest :meth:`mark` that have not exited yet."""
        return [task for task, epoch in self._live.items() if epoch == self._epoch]
