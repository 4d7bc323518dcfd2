"""Failure detection by missed heartbeats: pure bookkeeping, time passed in."""

from __future__ import annotations

from collections.abc import Hashable

import attrs


@attrs.define
class FailureDetector:
    """Declares a monitored party failed when it has been silent longer than ``timeout``.

    Parties are registered with :meth:`watch` (which counts as a first heartbeat),
    report with :meth:`heartbeat`, and are checked with :meth:`expired`. The
    supervisor turns an expiry into a crash of that child (so a hung child is
    restarted, not waited on forever).
    """

    _last_seen: dict[Hashable, float] = attrs.field(factory=dict, init=False)
    _timeouts: dict[Hashable, float] = attrs.field(factory=dict, init=False)

    def watch(self, key: Hashable, timeout: float, now: float) -> None:
        """Start monitoring ``key``: it must beat at least every ``timeout`` seconds."""
        if not timeout > 0:
            raise ValueError(f"heartbeat timeout must be > 0, got {timeout!r}")
        self._timeouts[key] = timeout
        self._last_seen[key] = now

    def unwatch(self, key: Hashable) -> None:
        """Stop monitoring ``key``."""
        self._timeouts.pop(key, None)
        self._last_seen.pop(key, None)

    def heartbeat(self, key: Hashable, now: float) -> None:
        """``key`` is alive at ``now`` (ignored when it is not watched)."""
        if key in self._last_seen:
            self._last_seen[key] = now

    def deadline(self, key: Hashable) -> float:
        """When ``key`` will be declared failed without another heartbeat."""
        return self._last_seen[key] + self._timeouts[key]

    def next_deadline(self) -> float | None:
        """The earliest deadline among watched parties, or ``None``."""
        if not self._timeouts:
            return None
        return min(self.deadline(key) for key in self._timeouts)

    def expired(self, now: float) -> list[Hashable]:
        """Parties silent for longer than their timeout at ``now`` (still watched)."""
        return [key for key in self._timeouts if now >= self.deadline(key)]

    def silent_for(self, key: Hashable, now: float) -> float:
        """Seconds since ``key`` last beat."""
        return now - self._last_seen[key]

    def watched(self) -> list[Hashable]:
        """Every party being monitored."""
        return list(self._timeouts)
