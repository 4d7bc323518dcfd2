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
    what the workspace really holds, plus what writes in flight have reserved. A write
    :meth:`reserve`\\ s its growth under one lock before it starts (so two writers
    cannot both take the last free bytes) and :meth:`settle`\\ s it when done.

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
        self._counted: int | None = None
        self._reserved = 0

    def __repr__(self) -> str:
        return f"ByteQuota(limit={self.limit}, counted={self._counted}, reserved={self._reserved})"

    def used(self) -> int:
        """Bytes counted now, writes in flight included (measured first if need be; blocking)."""
        with self._lock:
            if self._counted is None:
                self._counted = self._measure()
            return self._counted + self._reserved

    def reserve(self, grow: int, *, what: str) -> None:
        """Reserve ``grow`` bytes for the write described by ``what``, or refuse.

        Every reservation is followed by one :meth:`settle` with the same ``grow``.

        Raises:
            ToolQuotaExceeded: the workspace would hold more than ``limit`` bytes.
        """
        if grow <= 0:
            return
        with self._lock:
            if self._counted is None or self._counted + self._reserved + grow > self.limit:
                self._counted = self._measure()
            used = self._counted + self._reserved
            if used + grow > self.limit:
                raise ToolQuotaExceeded(
                    f"{what} would take the workspace to {used + grow} bytes, over its "
                    f"{self.limit}-byte quota ({used} bytes used)"
                )
            self._reserved += grow

    def settle(self, grow: int, *, change: int) -> None:
        """End the write that reserved ``grow``; the workspace changed by ``change`` bytes.

        ``change`` is the write's real effect (negative when a file shrank, ``0`` when
        the write failed).
        """
        with self._lock:
            self._reserved -= max(grow, 0)
            if self._counted is not None:
                self._counted = max(0, self._counted + change)
