"""Who writes a JetStream store: a lease in a KV bucket that expires unless renewed.

The store keeps an index of its streams in memory, which is only right while nobody
else writes them; so one store object at a time holds a prefix, as one process holds a
SQLite file. The holder creates the key ``holder`` in the bucket ``MS_<prefix>_LEASE``
(whose entries expire ``ttl`` seconds after their last write) and renews it with a
compare-and-set on its revision every third of the TTL. A second opener finds the key
and gets :class:`~mister_smith.errors.StoreLocked`; a holder killed with ``kill -9``
stops renewing and its lease expires by itself. A holder whose renewal fails (the key
expired while it was cut off, and maybe someone else holds it now) stops writing.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable

import trio

from ..errors import StoreLocked
from ._bridge import NatsBridge

HOLDER_KEY = "holder"
"""The lease's key in its bucket."""


class StoreLease:
    """The lease on one store prefix (see the module docstring).

    Args:
        bridge: The connection.
        prefix: The store's prefix (names the bucket ``MS_<prefix>_LEASE``).
        ttl: Seconds the lease lasts without a renewal (>= 1).
    """

    def __init__(self, bridge: NatsBridge, prefix: str, *, ttl: float) -> None:
        self._bridge = bridge
        self._prefix = prefix
        self._ttl = ttl
        self.bucket = f"MS_{prefix}_LEASE"
        """The KV bucket of the lease."""
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"
        """Who this lease says holds the store (host, process, a random part)."""
        self._revision: int | None = None

    async def acquire(self) -> None:
        """Take the lease.

        Raises:
            StoreLocked: someone else holds it.
        """
        await self._bridge.kv_ensure_bucket(self.bucket, ttl=self._ttl)
        revision = await self._bridge.kv_create(self.bucket, HOLDER_KEY, self.holder.encode())
        if revision is None:
            current = await self._bridge.kv_get(self.bucket, HOLDER_KEY)
            other = "someone" if current is None else current[0].decode(errors="replace")
            raise StoreLocked(
                f"the JetStream store {self._prefix!r} is held by {other}; its lease"
                f" expires {self._ttl:g} s after that holder stops renewing it"
            )
        self._revision = revision

    async def keep(self, lost: Callable[[StoreLocked], None]) -> None:
        """Renew the lease every third of its TTL until cancelled; call ``lost`` and
        return when it cannot be renewed within the TTL (or someone else took it)."""
        renewed = trio.current_time()
        while True:
            await trio.sleep(self._ttl / 3)
            try:
                revision = await self._renew()
            except Exception:  # the connection is down: retried until the TTL runs out
                if trio.current_time() - renewed < self._ttl:
                    continue
                revision = None
            if revision is None:
                self._revision = None
                lost(
                    StoreLocked(
                        f"the lease on the JetStream store {self._prefix!r} was lost (not"
                        f" renewed within {self._ttl:g} s): this store object stopped writing"
                    )
                )
                return
            self._revision = revision
            renewed = trio.current_time()

    async def _renew(self) -> int | None:
        if self._revision is None:
            return None
        with trio.fail_after(self._ttl / 3):
            return await self._bridge.kv_update(
                self.bucket, HOLDER_KEY, self.holder.encode(), last=self._revision
            )

    async def release(self) -> None:
        """Give the lease back (only if still ours); errors are left to the TTL."""
        revision, self._revision = self._revision, None
        if revision is None:
            return
        with trio.CancelScope(shield=True) as scope:
            scope.deadline = trio.current_time() + self._ttl / 3
            try:
                await self._bridge.kv_delete(self.bucket, HOLDER_KEY, last=revision)
            except Exception:
                return  # it expires by itself
