"""The cluster registry: which names are served and which nodes are alive, in a
JetStream KV bucket whose entries expire unless their node keeps refreshing them."""

from __future__ import annotations

import re

import attrs

from ._bridge import NatsBridge
from ._wire import _dumps, _loads

_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,128}")


def check_token(kind: str, value: str) -> str:
    """``value`` if it is usable as one NATS subject token and KV key part (letters,
    digits, ``_`` and ``-``; 1-128 of them).

    Raises:
        ValueError: it is not (the text names ``kind`` and the value).
    """
    if not isinstance(value, str) or not _TOKEN.fullmatch(value):
        raise ValueError(
            f"{kind} {value!r} cannot name a NATS subject: use 1-128 letters, digits, '_' or '-'"
        )
    return value


@attrs.frozen
class RegistryEntry:
    """Where a name is served.

    Attributes:
        name: The actor (or group) name.
        node: The node that registered it (the last one, for a group).
        kind: ``actor``, ``singleton`` or ``group``.
    """

    name: str
    node: str
    kind: str = "actor"


class ClusterRegistry:
    """Names and live nodes of one cluster, in the KV bucket ``ms_<cluster>_registry``.

    Every entry is written with the bucket's TTL: a node refreshes its own entries
    (:meth:`refresh`) well within it, so the entries of a node that died (or was cut
    off) expire by themselves, and a lookup stops finding names nobody serves.
    """

    def __init__(self, bridge: NatsBridge, cluster: str, node: str, *, ttl: float) -> None:
        if not ttl >= 1.0:
            raise ValueError(f"the registry TTL must be >= 1 s, got {ttl!r}")
        self.bridge = bridge
        self.cluster = check_token("cluster name", cluster)
        self.node = check_token("node name", node)
        self.ttl = ttl
        self.bucket = f"ms_{cluster}_registry"
        self._own: dict[str, RegistryEntry] = {}

    async def ensure(self) -> None:
        """Create the bucket unless it exists."""
        await self.bridge.kv_ensure_bucket(self.bucket, ttl=self.ttl)

    async def register(self, name: str, kind: str = "actor") -> None:
        """Announce that this node serves ``name``."""
        entry = RegistryEntry(check_token("actor name", name), self.node, kind)
        self._own[name] = entry
        await self._put(entry)

    def forget(self, name: str) -> None:
        """Stop refreshing ``name`` (its entry expires within the TTL)."""
        self._own.pop(name, None)

    async def unregister(self, name: str) -> None:
        """Withdraw ``name`` (only if this node's entry is still the current one)."""
        if self._own.pop(name, None) is None:
            return
        current = await self.bridge.kv_get(self.bucket, f"actor.{name}")
        if current is not None:
            entry = self._decode(name, current[0])
            if entry is not None and entry.node == self.node:
                await self.bridge.kv_delete(self.bucket, f"actor.{name}", last=current[1])

    async def lookup(self, name: str) -> RegistryEntry | None:
        """Where ``name`` is served, or ``None`` (never registered, or its node's entry
        expired)."""
        found = await self.bridge.kv_get(self.bucket, f"actor.{check_token('actor name', name)}")
        return None if found is None else self._decode(name, found[0])

    async def names(self) -> list[str]:
        """Every name currently registered in the cluster."""
        return sorted(k.split(".", 1)[1] for k in await self.bridge.kv_keys(self.bucket, "actor."))

    async def nodes(self) -> list[str]:
        """The nodes whose liveness entries have not expired (this one included once it
        has refreshed)."""
        return sorted(k.split(".", 1)[1] for k in await self.bridge.kv_keys(self.bucket, "node."))

    async def members(self) -> dict[str, int]:
        """The live nodes and how many singletons each has declared (placement shares
        singletons out among the nodes that declared any)."""
        found: dict[str, int] = {}
        for node in await self.nodes():
            entry = await self.bridge.kv_get(self.bucket, f"node.{node}")
            if entry is None:
                continue
            try:
                value = _loads(entry[0])
            except Exception:
                continue
            declared = value.get("declared") if isinstance(value, dict) else None
            found[node] = declared if type(declared) is int else 0
        return found

    async def refresh(self, *, declared: int = 0) -> None:
        """Write this node's liveness entry (with the number of singletons it declared)
        and all its names again, resetting their TTL."""
        body = _dumps({"node": self.node, "declared": declared})
        await self.bridge.kv_put(self.bucket, f"node.{self.node}", body)
        for entry in list(self._own.values()):
            await self._put(entry)

    async def leave(self) -> None:
        """Withdraw every name and the liveness entry of this node."""
        for name in list(self._own):
            await self.unregister(name)
        await self.bridge.kv_delete(self.bucket, f"node.{self.node}")

    async def _put(self, entry: RegistryEntry) -> None:
        body = _dumps({"node": entry.node, "kind": entry.kind})
        await self.bridge.kv_put(self.bucket, f"actor.{entry.name}", body)

    @staticmethod
    def _decode(name: str, body: bytes) -> RegistryEntry | None:
        try:
            value = _loads(body)
        except Exception:
            return None
        if not isinstance(value, dict) or not isinstance(value.get("node"), str):
            return None
        kind = value.get("kind")
        return RegistryEntry(name, value["node"], kind if isinstance(kind, str) else "actor")
