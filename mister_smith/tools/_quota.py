"""``ByteQuota``: a thread-safe running count of a workspace's bytes against a limit."""

from __future__ import annotations

import threading
from collections.abc import Callable

from ..errors import ToolQuotaExceeded


class ByteQuota:
    """How many bytes a workspace holds, kept by its writers, checked against ``limit``.

    The count starts from a measurement of what is already there (``measure``, run on
    first use, in the worker thread of the first write) and then moves with each write
    the file tools make. Others (a command, another process) may change the workspace
    too, so before refusing, the count is measured afresh: a refusal is always based on
    what the workspace really holds. Concurrent writers reserve under one lock, so two
    of them cannot both take the last free bytes.

    Args:
        limit: Most bytes the workspace may hold.
        measure: Blocking function returning the bytes the workspace holds now.
    """

    def __init__(self, limit: int, measure: Callable[[], int]) -> None:
        if limit < 1:
            raise ValueError(f"a byte quota must be >= 1, got {limit!r}")
        self.limit = limit
        self._measure = measure
        self._lock = threading.Lock()
        self._used: int | None = None

    def __repr__(self) -> str:
        return f"ByteQuota(limit={self.limit}, used={self._used})"

    def used(self) -> int:
        """Bytes counted now (measured first if nothing was counted yet; blocking)."""
        with self._lock:
            if self._used is None:
                self._used = self._measure()
            return self._used

    def reserve(self, grow: int, *, what: str) -> None:
        """Count ``grow`` more bytes for the write described by ``what``, or refuse.

        Raises:
            ToolQuotaExceeded: the workspace would hold more than ``limit`` bytes.
        """
        if grow <= 0:
            return
        with self._lock:
            if self._used is None or self._used + grow > self.limit:
                self._used = self._measure()
            if self._used + grow > self.limit:
                raise ToolQuotaExceeded(
                    f"{what} would take the workspace to {self._used + grow} bytes, over its "
                    f"{self.limit}-byte quota ({self._used} bytes used)"
                )
            self._used += grow

    def release(self, shrink: int) -> None:
        """Count ``shrink`` fewer bytes (a write that failed, or a file made smaller)."""
        if shrink <= 0:
            return
        with self._lock:
            if self._used is not None:
                self._used = max(0, self._used - shrink)
