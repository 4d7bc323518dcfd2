"""Cluster singletons and shards, placed by leases in JetStream KV.

A lease is a KV entry ``lease.<name>`` naming the node that runs the singleton, in the
bucket ``ms_<cluster>_leases`` whose entries expire ``registry_ttl`` seconds after their
last write. The holder renews it every third of that with a compare-and-set on its
revision; every other node that declared the singleton tries to *create* it each round,
which only succeeds once the entry is gone: released by a node shutting down (at once),
or expired because its node died or was cut off (after the TTL). So at most one node
holds a lease at a time, and a dead node's singletons restart on a survivor within about
``registry_ttl`` plus one round. Nodes take leases up to their fair share first (the
singletons declared over the live nodes), then any that stayed free for a round.
"""

from __future__ import annotations

import logging
import math
import zlib
from collections.abc import Callable
from contextlib import aclosing, suppress
from typing import TYPE_CHECKING, Any

import attrs
import trio
from trio_util import periodic

from ..actors import Actor, ActorRef
from ._errors import NatsUnavailable
from ._events import SingletonPlaced, SingletonReleased
from ._registry import check_token
from ._wire import _dumps, _loads

if TYPE_CHECKING:
    from ._node import Node
    from ._remote import RemoteActorRef

logger = logging.getLogger("mister_smith.distributed")


@attrs.define(eq=False)
class _Declared:
    name: str
    factory: Callable[..., Actor]
    args: tuple[Any, ...]
    options: dict[str, Any]
    revision: int | None = None
    ref: ActorRef | None = None
    free_rounds: int = 0
    last_holder: str = ""


class Placement:
    """The singletons a node declared, and the leases it holds on them."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self.bucket = f"ms_{node.cluster}_leases"
        self.declared: dict[str, _Declared] = {}
        self._lock = trio.Lock()

    @property
    def held(self) -> list[str]:
        """The singletons running and served on this node now (a lease taken whose
        actor is still starting is not listed yet: asks for it would find no server)."""
        return [d.name for d in self.declared.values() if d.ref is not None]

    async def ensure(self) -> None:
        """Create the lease bucket unless it exists."""
        await self.node.bridge.kv_ensure_bucket(self.bucket, ttl=self.node.settings.registry_ttl)

    async def declare(
        self,
        name: str,
        factory: Callable[..., Actor],
        args: tuple[Any, ...],
        options: dict[str, Any],
    ) -> None:
        """Declare singleton ``name`` and try to take it at once (within the fair share)."""
        check_token("singleton name", name)
        if name in self.declared:
            raise ValueError(f"singleton {name!r} is already declared on this node")
        declared = _Declared(name, factory, args, dict(options))
        self.declared[name] = declared
        async with self._lock:
            await self.node.registry.refresh(declared=len(self.declared))
            fair, _ = await self._shares()
            await self._try_take(declared, fair, await self.holder(name))

    async def run(self) -> None:
        """The placement loop (a supervised child): a round every third of the TTL,
        start to start, so lease renewals keep time however long a round takes."""
        async with aclosing(periodic(self.node.settings.registry_ttl / 3)) as ticks:
            async for _, since_last in ticks:
                if since_last is None:
                    continue  # the first round is due a period after the start
                try:
                    async with self._lock:
                        await self.round()
                except NatsUnavailable:
                    continue  # the connection is down: leases are renewed once it is back

    async def round(self) -> None:
        """Renew the leases held; hand one over if this node holds more than its share
        while another is below it; try to take the free ones."""
        for declared in list(self.declared.values()):
            if declared.revision is not None:
                await self._renew(declared)
        if not self.declared:
            return
        fair, declaring = await self._shares()
        holders = {name: await self.holder(name) for name in self.declared}
        counts: dict[str, int] = {}
        for holder in holders.values():
            if holder:
                counts[holder] = counts.get(holder, 0) + 1
        me = self.node.name
        held = self.held
        if len(held) > fair and any(counts.get(n, 0) < fair for n in declaring if n != me):
            await self._release(self.declared[held[-1]], "handed over to rebalance", delete=True)
            holders[held[-1]] = None
        for declared in list(self.declared.values()):
            if declared.revision is None:
                await self._try_take(declared, fair, holders.get(declared.name))

    async def _shares(self) -> tuple[int, list[str]]:
        """The fair share per node, and the live nodes that declared singletons."""
        members = await self.node.registry.members()
        declaring = sorted(n for n, count in members.items() if count > 0)
        if self.node.name not in declaring:
            declaring.append(self.node.name)
        return max(1, math.ceil(len(self.declared) / len(declaring))), declaring

    def _key(self, name: str) -> str:
        return f"lease.{name}"

    async def _renew(self, declared: _Declared) -> None:
        assert declared.revision is not None
        body = _dumps({"node": self.node.name})
        bridge = self.node.bridge
        revision = await bridge.kv_update(
            self.bucket, self._key(declared.name), body, last=declared.revision
        )
        if revision is None:
            logger.warning("node %s lost the lease of singleton %s", self.node.name, declared.name)
            await self._release(declared, "lease lost to another node", delete=False)
        else:
            declared.revision = revision

    async def _try_take(self, declared: _Declared, fair: int, holder: str | None) -> None:
        bridge = self.node.bridge
        key = self._key(declared.name)
        if holder:
            if holder != self.node.name:
                declared.last_holder = holder
                declared.free_rounds = 0
                return
            # ours, left by an earlier incarnation of this node: free it first
            current = await bridge.kv_get(self.bucket, key)
            if current is not None:
                await bridge.kv_delete(self.bucket, key, last=current[1])
        declared.free_rounds += 1
        if len(self.held) >= fair and declared.free_rounds < 2:
            return  # leave it to a node below its share for one round
        revision = await bridge.kv_create(self.bucket, key, _dumps({"node": self.node.name}))
        if revision is None:
            return  # another node was quicker
        declared.revision = revision
        try:
            declared.ref = await self.node._spawn(
                declared.factory, declared.args, declared.name, declared.options, kind="singleton"
            )
        except Exception:
            logger.exception("node %s could not start singleton %s", self.node.name, declared.name)
            declared.revision = None
            await bridge.kv_delete(self.bucket, key, last=revision)
            return
        declared.free_rounds = 0
        self.node.events.emit(
            SingletonPlaced(
                source=f"node:{self.node.name}",
                node=self.node.name,
                singleton=declared.name,
                previous_node=declared.last_holder,
            )
        )

    async def _release(self, declared: _Declared, reason: str, *, delete: bool) -> None:
        revision, declared.revision = declared.revision, None
        ref, declared.ref = declared.ref, None
        await self.node.withdraw(declared.name)
        if ref is not None:
            await self.node.system.stop(ref)
        if delete and revision is not None:
            with suppress(NatsUnavailable):  # else it expires by itself
                await self.node.bridge.kv_delete(
                    self.bucket, self._key(declared.name), last=revision
                )
        self.node.events.emit(
            SingletonReleased(
                source=f"node:{self.node.name}",
                node=self.node.name,
                singleton=declared.name,
                reason=reason,
            )
        )

    async def release_all(self, reason: str) -> None:
        """Stop every singleton held here and release its lease (another node takes it
        at its next round instead of after the TTL)."""
        for declared in list(self.declared.values()):
            if declared.revision is not None:
                await self._release(declared, reason, delete=True)

    async def holder(self, name: str) -> str | None:
        """The node holding singleton ``name`` now, or ``None``."""
        current = await self.node.bridge.kv_get(self.bucket, self._key(name))
        return None if current is None else _holder(current[0])


def _holder(body: bytes) -> str:
    try:
        value = _loads(body)
    except Exception:
        return ""
    node = value.get("node") if isinstance(value, dict) else None
    return node if isinstance(node, str) else ""


class ShardRegion:
    """Entry to the shards ``<kind>-0`` ... ``<kind>-<n-1>``: a key always reaches the
    same shard (CRC-32 of the key, modulo the shard count), on whichever node runs it."""

    def __init__(self, node: Node, kind: str, shards: int) -> None:
        self.node = node
        self.kind = kind
        self.shards = shards

    def shard_of(self, key: str) -> int:
        """The shard index of ``key`` (stable across nodes and runs)."""
        return zlib.crc32(key.encode()) % self.shards

    def ref_for(self, key: str) -> RemoteActorRef:
        """The ref of the shard owning ``key``."""
        return self.node.remote(f"{self.kind}-{self.shard_of(key)}")

    async def tell(self, key: str, message: Any) -> None:
        """Send ``message`` to the shard owning ``key``."""
        await self.ref_for(key).tell(message)

    async def ask(self, key: str, message: Any, *, timeout: float | None = None) -> Any:
        """Ask the shard owning ``key``."""
        return await self.ref_for(key).ask(message, timeout=timeout)
