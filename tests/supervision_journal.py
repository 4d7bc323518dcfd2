"""Shared helpers of the supervision tests: a journal of what children did, and when."""

from __future__ import annotations

import attrs
import trio


@attrs.define
class Journal:
    """What children (and hooks) did and when (virtual time)."""

    entries: list[tuple[str, str, float]] = attrs.field(factory=list)
    runs: dict[str, int] = attrs.field(factory=dict)

    def note(self, what: str, name: str) -> None:
        self.entries.append((what, name, trio.current_time()))

    def times(self, what: str, name: str) -> list[float]:
        return [t for w, n, t in self.entries if w == what and n == name]

    def names(self, what: str) -> list[str]:
        return [n for w, n, _ in self.entries if w == what]

    def since(self, start: float) -> list[tuple[str, str]]:
        return [(w, n) for w, n, t in self.entries if t >= start]

    def next_run(self, name: str) -> int:
        run = self.runs.get(name, 0)
        self.runs[name] = run + 1
        return run


async def forever() -> None:
    """A child that runs until it is stopped."""
    await trio.sleep_forever()
