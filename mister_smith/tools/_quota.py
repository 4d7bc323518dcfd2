"""``WorkspaceQuota``: thread-safe running counts of a workspace's bytes and entries."""

from __future__ import annotations

import threading
from collections.abc import Callable

import attrs

from ..errors import ToolQuotaExceeded


@attrs.frozen
class TreeUsage:
    """What a directory tree holds.

    Attributes:
        bytes: Sizes of its regular files, added up.
        entries: Its entries of every kind (files, directories, symlinks, others),
            the root itself not counted.
    """

    bytes: int
    entries: int


class WorkspaceQuota:
    """How many bytes and entries a workspace holds, kept by its writers, against limits.

    Bytes are what the regular files hold; entries are files, directories and every
    other kind, since an empty file or a directory costs an inode and disk blocks too
    (without an entry limit, writes of empty files under fresh directories filled a
    disk while the byte count stayed 0).

    The counts start from a measurement of what is already there (``measure``, run on
    first use, in the worker thread of the first write) and then move with each write
    the file tools make. Others (a command, another process) may change the workspace
    too, so before refusing, the counts are measured afresh: a refusal is always based
    on what the workspace really holds, plus what writes in flight have reserved. A
    write :meth:`reserve`\\ s its growth under one lock before it starts (so two writers
    cannot both take the last free bytes or entries) and :meth:`settle`\\ s it when done.

    Args:
        measure: Blocking function returning what the workspace holds now.
        max_bytes: Most bytes the workspace may hold (``None``: no byte limit).
        max_entries: Most entries it may hold (``None``: no entry limit).
    """

    def __init__(
        self,
        measure: Callable[[], TreeUsage],
        *,
        max_bytes: int | None,
        max_entries: int | None = None,
    ) -> None:
        for label, value in (("max_bytes", max_bytes), ("max_entries", max_entries)):
            if value is not None and value < 1:
                raise ValueError(f"a quota's {label} must be >= 1, got {value!r}")
        self.max_bytes = max_bytes
        self.max_entries = max_entries
        self._measure = measure
        self._lock = threading.Lock()
        self._counted: TreeUsage | None = None
        self._reserved_bytes = 0
        self._reserved_entries = 0

    @property
    def limit(self) -> int | None:
        """The byte limit (``max_bytes``)."""
        return self.max_bytes

    def __repr__(self) -> str:
        return (
            f"WorkspaceQuota(max_bytes={self.max_bytes}, max_entries={self.max_entries}, "
            f"counted={self._counted})"
        )

    def _current(self) -> TreeUsage:
        if self._counted is None:
            self._counted = self._measure()
        return self._counted

    def used(self) -> int:
        """Bytes counted now, writes in flight included (measured first if need be;
        blocking)."""
        with self._lock:
            return self._current().bytes + self._reserved_bytes

    def entries_used(self) -> int:
        """Entries counted now, writes in flight included (blocking, like :meth:`used`)."""
        with self._lock:
            return self._current().entries + self._reserved_entries

    def _over(self, usage: TreeUsage, grow: int, entries: int) -> str | None:
        if self.max_bytes is not None and grow > 0:
            used = usage.bytes + self._reserved_bytes
            if used + grow > self.max_bytes:
                return (
                    f"would take the workspace to {used + grow} bytes, over its "
                    f"{self.max_bytes}-byte quota ({used} bytes used)"
                )
        if self.max_entries is not None and entries > 0:
            used = usage.entries + self._reserved_entries
            if used + entries > self.max_entries:
                return (
                    f"would take the workspace to {used + entries} entries (files and "
                    f"directories), over its {self.max_entries}-entry quota ({used} used)"
                )
        return None

    def reserve(self, grow: int, *, what: str, entries: int = 0) -> None:
        """Reserve ``grow`` bytes and ``entries`` new entries for ``what``, or refuse.

        Every reservation is followed by one :meth:`settle` with the same numbers.

        Raises:
            ToolQuotaExceeded: the workspace would pass a limit.
        """
        grow, entries = max(grow, 0), max(entries, 0)
        if not grow and not entries:
            return
        with self._lock:
            if self._counted is None or self._over(self._counted, grow, entries):
                self._counted = self._measure()
            problem = self._over(self._counted, grow, entries)
            if problem is not None:
                raise ToolQuotaExceeded(f"{what} {problem}")
            self._reserved_bytes += grow
            self._reserved_entries += entries

    def settle(self, grow: int, *, change: int, entries: int = 0, entries_change: int = 0) -> None:
        """End the write that reserved ``grow`` bytes and ``entries``; the workspace
        changed by ``change`` bytes and ``entries_change`` entries.

        The changes are the write's real effect (negative when a file shrank, ``0``
        when the write failed).
        """
        with self._lock:
            self._reserved_bytes -= max(grow, 0)
            self._reserved_entries -= max(entries, 0)
            if self._counted is not None:
                self._counted = TreeUsage(
                    max(0, self._counted.bytes + change),
                    max(0, self._counted.entries + entries_change),
                )
