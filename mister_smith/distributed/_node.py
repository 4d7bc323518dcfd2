"""Nodes: a local actor system joined to a cluster over NATS."""

from __future__ import annotations

import collections
import math
import os
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import aclosing, asynccontextmanager, suppress
from typing import Any, Protocol

import attrs
import trio
from prometheus_client import CollectorRegistry
from trio_util import periodic

from ..actors import Actor, ActorRef, ActorSystem
from ..actors._envelope import Ask, Reply  # the pair ActorRef.ask builds: keeps send order
from ..config import DistributedSettings
from ..errors import ActorNotFound, ActorStopped, AskTimeout
from ..events import EventBus
from ..resources import HealthMonitor
from ..supervision import Backoff, Restart, Supervisor
from ..transport import MessageBus
from ._bridge import (
    BridgeSettings,
    BridgeStatistics,
    ConnectionState,
    InboundMessage,
    NatsBridge,
    Subscription,
)
from ._deadline import DeadlineMiddleware, Delivery
from ._errors import EnvelopeError, NatsUnavailable, PayloadTooLarge
from ._events import RemoteDeadLetter
from ._failures import failure_body
from ._health import NatsHealthCheck
from ._metrics import NatsMetricsCollector
from ._placement import Placement, ShardRegion
from ._registry import ClusterRegistry, check_token
from ._remote import RemoteActorRef
from ._wire import DEFAULT_WIRE, Envelope, Kind, WireFormat

_DEADLINE_MIDDLEWARE = DeadlineMiddleware()


class Host(Protocol):
    """What a node is opened on: a runtime (``RuntimeManager`` has these three)."""

    @property
    def actor_system(self) -> ActorSystem: ...

    @property
    def events(self) -> EventBus: ...

    @property
    def supervision(self) -> Supervisor: ...


@attrs.frozen
class RemoteDeadLetterRecord:
    """A message from the wire that reached no actor (see :class:`RemoteDeadLetter`)."""

    subject: str
    message_type: str
    sender: str
    reason: str
    timestamp: float


@attrs.frozen
class NodeStatistics:
    """Counters of a node."""

    name: str
    cluster: str
    state: ConnectionState
    served: int
    """Names this node serves now."""
    tells_in: int
    asks_in: int
    replies_out: int
    dead_letters: int
    singletons: int
    """Singletons and shards running here now."""
    bridge: BridgeStatistics


@attrs.define(eq=False)
class _Served:
    """A name this node serves: the subscription and the actor behind it."""

    name: str
    ref: ActorRef
    queue: str
    aware: bool
    """Spawned by the node (it unwraps :class:`Delivery` and honours deadlines)."""
    kind: str
    stopped: bool = False
    receiving: trio.CancelScope | None = None
    """Set while the server waits for the next message (what :meth:`stop` cancels)."""

    def stop(self) -> None:
        """Stop receiving; a message already taken is still delivered or answered."""
        self.stopped = True
        if self.receiving is not None:
            self.receiving.cancel()


class Node:
    """A member of a cluster: serves some of its actors to the cluster over NATS and
    reaches the rest through :class:`RemoteActorRef` s.

    Open one with :func:`open_node`. Everything it runs is supervised under the host's
    root supervisor in a supervisor ``node-<name>``: the NATS connection (restarted with
    backoff when the client gives up), the registry refresher, the placement loop, and
    one server per served name.
    """

    def __init__(
        self,
        system: ActorSystem,
        events: EventBus,
        settings: DistributedSettings,
        *,
        name: str,
        wire: WireFormat,
    ) -> None:
        self.system = system
        self.events = events
        self.settings = settings
        self.name = check_token("node name", name)
        self.cluster = check_token("cluster name", settings.cluster)
        self.prefix = f"ms.{self.cluster}."
        self.wire = wire
        self.max_payload = settings.max_payload
        """Bytes of one encoded message at most, sent or received (larger ones are
        refused with ``PayloadTooLarge`` when sent, dead-lettered when received)."""
        self.bridge = NatsBridge(
            BridgeSettings(
                url=settings.nats_url,
                name=f"mister-smith:{self.cluster}:{name}",
                outbound_bytes=settings.outbound_bytes,
                inbound_capacity=settings.inbound_capacity,
                connect_timeout=settings.connect_timeout,
                reconnect_wait=settings.reconnect_wait,
                max_reconnect_attempts=settings.max_reconnect_attempts,
            ),
            events=events,
            source=f"node:{name}",
        )
        self.registry = ClusterRegistry(
            self.bridge, self.cluster, self.name, ttl=settings.registry_ttl
        )
        self.placement = Placement(self)
        self.supervisor: Supervisor | None = None
        self._served: dict[str, _Served] = {}
        self._dead_letters: collections.deque[RemoteDeadLetterRecord] = collections.deque(
            maxlen=1000
        )
        self._refs: dict[str, RemoteActorRef] = {}
        self._tells_in = 0
        self._asks_in = 0
        self._replies_out = 0
        self._dead_lettered = 0
        system.add_termination_listener(self._actor_gone)

    # -- basics -----------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """Whether the NATS connection is up now."""
        return self.bridge.state is ConnectionState.CONNECTED

    @property
    def ask_timeout(self) -> float:
        """Default ``ask`` timeout of remote refs (the actor system's)."""
        return self.system.ask_timeout

    def subject_of(self, name: str) -> str:
        """The subject an actor (or group) ``name`` is served on in this cluster."""
        return f"{self.prefix}a.{check_token('actor name', name)}"

    def traceparent(self) -> str | None:
        """The W3C ``traceparent`` of the current span, when OpenTelemetry has one."""
        return _traceparent()

    # -- serving ------------------------------------------------------------------------------

    async def spawn(
        self, factory: Callable[..., Actor], *args: Any, name: str, **options: Any
    ) -> ActorRef:
        """Spawn an actor in the local system and serve it to the cluster as ``name``.

        ``options`` are :meth:`ActorSystem.spawn` 's. The actor handles remote messages
        under their callers' deadlines (see :class:`DeadlineMiddleware`).

        Raises:
            ValueError: ``name`` cannot be a subject token.
            ActorNameTaken: the local system has an actor of that name.
        """
        return await self._spawn(factory, args, name, options, kind="actor")

    async def _spawn(
        self,
        factory: Callable[..., Actor],
        args: tuple[Any, ...],
        name: str,
        options: dict[str, Any],
        *,
        kind: str,
    ) -> ActorRef:
        check_token("actor name", name)
        options = dict(options)
        middleware = (_DEADLINE_MIDDLEWARE, *options.pop("middleware", ()))
        ref = await self.system.spawn(factory, *args, name=name, middleware=middleware, **options)
        try:
            await self._serve(name, ref, aware=True, kind=kind)
        except BaseException:
            with trio.CancelScope(shield=True):
                await self.system.stop(ref)
            raise
        return ref

    async def expose(self, ref: ActorRef, *, name: str | None = None) -> None:
        """Serve an actor spawned elsewhere in the local system to the cluster.

        It receives remote messages as they were sent (no deadline inside its handler:
        expired messages are still dropped before delivery).
        """
        await self._serve(ref.name if name is None else name, ref, aware=False, kind="actor")

    async def join_group(self, group: str, ref: ActorRef) -> None:
        """Serve ``ref`` as one member of the cluster-wide group ``group``: each message
        sent to :meth:`group` goes to one member, on whichever node (a NATS queue group).
        """
        check_token("group name", group)
        key = f"{group}/{ref.name}"
        await self._serve(key, ref, aware=False, kind="group", subject_name=group, queue=group)

    async def share_group(self, bus: MessageBus, group: str) -> int:
        """Make the members of a local :class:`~mister_smith.transport.MessageBus` group
        members of the cluster-wide group of the same name (one NATS queue group spanning
        every node that shares it); returns how many joined. Members added to the bus
        later are not shared until this is called again.
        """
        joined = 0
        for ref in bus.members(group):
            if f"{group}/{ref.name}" not in self._served:
                await self.join_group(group, ref)
                joined += 1
        return joined

    def group(self, group: str) -> RemoteActorRef:
        """A ref reaching one member of the cluster-wide group ``group`` per message."""
        return self.remote(group)

    async def _serve(
        self,
        name: str,
        ref: ActorRef,
        *,
        aware: bool,
        kind: str,
        subject_name: str | None = None,
        queue: str = "",
    ) -> None:
        supervisor = self._supervisor()
        if name in self._served:
            raise ValueError(f"node {self.name!r} already serves {name!r}")
        subject = self.subject_of(subject_name or name)
        served = _Served(name, ref, queue, aware, kind)
        self._served[name] = served
        try:
            subscription = await self.bridge.subscribe(subject, queue=queue)
            await supervisor.start_child(
                self._serve_messages,
                served,
                subscription,
                name=f"serve-{name.replace('/', '-')}",
                restart=Restart.TRANSIENT,
            )
            if kind != "group":
                await self.registry.register(name, kind)
        except BaseException:
            self._served.pop(name, None)
            served.stop()
            raise

    async def withdraw(self, name: str) -> None:
        """Stop serving ``name`` (the actor itself keeps running)."""
        served = self._served.pop(name, None)
        if served is None:
            await trio.lowlevel.checkpoint()
            return
        served.stop()
        if served.kind != "group":
            with suppress(NatsUnavailable):
                await self.registry.unregister(name)

    def _actor_gone(self, ref: ActorRef) -> None:
        for served in list(self._served.values()):
            if served.ref == ref:
                served.stop()  # its server unsubscribes; the refresher drops it
                self._served.pop(served.name, None)
                self.registry.forget(served.name)

    async def _serve_messages(self, served: _Served, subscription: Subscription) -> None:
        try:
            # Replies in flight are still sent after the server stops receiving (the
            # actor stopped, the name was withdrawn): each waits at most until its
            # deadline. Only the wait for the next message is cancelled, never a
            # delivery, so a message taken from the channel is always answered.
            async with trio.open_nursery() as replies:
                while not served.stopped:
                    message = None
                    with trio.CancelScope() as receiving:
                        served.receiving = receiving
                        if not served.stopped:
                            with suppress(trio.EndOfChannel):
                                message = await subscription.receive()
                    served.receiving = None
                    if message is None:
                        break
                    await self._deliver(served, message, replies)
        finally:
            with trio.CancelScope(shield=True), trio.move_on_after(2):
                with suppress(NatsUnavailable):
                    await subscription.unsubscribe()
                # What arrived before the server dropped the subscription: answered
                # (asks fail with ActorStopped) or dead-lettered, never left waiting.
                gone = ActorStopped(f"actor {served.name!r} is no longer served here")
                while True:
                    try:
                        message = subscription.receive_nowait()
                    except (trio.WouldBlock, trio.EndOfChannel):
                        break
                    tag = message.headers.get("Ms-Type", "?")
                    sender = message.headers.get("Ms-Sender", "")
                    self._dead_letter(message.subject, tag, sender, str(gone))
                    if message.reply:
                        await self._reply_error(message.reply, gone)

    async def _deliver(
        self, served: _Served, message: InboundMessage, replies: trio.Nursery
    ) -> None:
        try:
            if len(message.data) > self.max_payload:
                raise PayloadTooLarge(
                    f"a body of {len(message.data)} bytes exceeds distributed.max_payload "
                    f"({self.max_payload})"
                )
            envelope = Envelope.from_headers(message.headers)
            body = self.wire.decode(envelope.type_tag, message.data)
        except EnvelopeError as exc:
            tag = message.headers.get("Ms-Type", "?")
            self._dead_letter(message.subject, tag, message.headers.get("Ms-Sender", ""), str(exc))
            if message.reply:
                await self._reply_error(message.reply, exc)
            return
        if envelope.kind is Kind.TELL:
            self._tells_in += 1
            item = Delivery(body, None, envelope.sender) if served.aware else body
            try:
                await served.ref.tell(item)
            except ActorStopped as exc:
                self._dead_letter(message.subject, envelope.type_tag, envelope.sender, str(exc))
            return
        if envelope.kind is not Kind.ASK or not message.reply:
            reason = f"a {envelope.kind.value} is not a request for an actor"
            self._dead_letter(message.subject, envelope.type_tag, envelope.sender, reason)
            return
        self._asks_in += 1
        now = trio.current_time()
        ms = envelope.deadline_ms
        deadline = math.inf if ms is None else now + ms / 1000.0
        if deadline <= now:
            reason = "its deadline had passed when it arrived"
            self._dead_letter(message.subject, envelope.type_tag, envelope.sender, reason)
            await self._reply_error(message.reply, AskTimeout(f"{served.name}: {reason}"))
            return
        reply = Reply()
        item = Delivery(body, deadline, envelope.sender) if served.aware else body
        # Queued here, in arrival order with the tells; the reply is awaited aside.
        with trio.move_on_at(deadline):
            try:
                await served.ref.tell(Ask(item, reply))
            except ActorStopped as exc:
                await self._reply_error(message.reply, exc)
                return
            replies.start_soon(self._answer, served.name, reply, message.reply, deadline)
            return
        reply.abandoned = True
        reason = "its deadline passed while the mailbox was full"
        self._dead_letter(message.subject, envelope.type_tag, envelope.sender, reason)
        await self._reply_error(message.reply, AskTimeout(f"{served.name}: {reason}"))

    async def _answer(self, name: str, reply: Reply, to: str, deadline: float) -> None:
        with trio.move_on_at(deadline):
            await reply.event.wait()
        if not reply.event.is_set():
            reply.abandoned = True
            return  # the caller has timed out too: nobody listens any more
        if reply.error is not None:
            await self._reply_error(to, reply.error)
            return
        try:
            tag, body = self.wire.encode(reply.value)
            if len(body) > self.max_payload:
                raise PayloadTooLarge(
                    f"{len(body)} bytes exceed distributed.max_payload ({self.max_payload})"
                )
        except EnvelopeError as exc:
            await self._reply_error(to, EnvelopeError(f"the reply of {name!r}: {exc}"))
            return
        await self._send_reply(to, body, Envelope(Kind.REPLY, tag, sender=self.name))

    async def _reply_error(self, to: str, error: BaseException) -> None:
        tag, body = self.wire.encode(failure_body(error))
        await self._send_reply(to, body, Envelope(Kind.ERROR, tag, sender=self.name))

    async def _send_reply(self, to: str, body: bytes, envelope: Envelope) -> None:
        try:
            await self.bridge.publish(to, body, headers=envelope.headers())
        except NatsUnavailable:
            return  # the caller's request failed with the connection as well
        self._replies_out += 1

    def _dead_letter(self, subject: str, tag: str, sender: str, reason: str) -> None:
        self._dead_lettered += 1
        now = trio.current_time()
        self._dead_letters.append(RemoteDeadLetterRecord(subject, tag[:200], sender, reason, now))
        self.events.emit(
            RemoteDeadLetter(
                source=f"node:{self.name}",
                node=self.name,
                subject=subject,
                message_type=tag[:200],
                reason=reason[:2000],
            )
        )

    def dead_letters(self) -> list[RemoteDeadLetterRecord]:
        """Messages from the wire that reached no actor (bounded log, oldest first)."""
        return list(self._dead_letters)

    # -- reaching others -----------------------------------------------------------------------

    def remote(self, name: str) -> RemoteActorRef:
        """A ref on whatever node serves ``name`` (no lookup: an ask fails with
        ``ActorNotFound`` while nobody serves it)."""
        ref = self._refs.get(name)
        if ref is None:
            ref = RemoteActorRef(self, name, self.subject_of(name))
            self._refs[name] = ref
        return ref

    async def lookup(self, name: str) -> ActorRef | RemoteActorRef:
        """The actor ``name``: the local ref if this node runs it as a plain actor, else
        a remote ref when the cluster registry lists it.

        Raises:
            ActorNotFound: neither this node nor the registry knows it.
        """
        served = self._served.get(name)
        if served is not None and served.kind == "actor":
            return served.ref
        if name in self.placement.declared:
            return self.remote(name)
        entry = await self.registry.lookup(name)
        if entry is None:
            raise ActorNotFound(f"no node of cluster {self.cluster!r} serves actor {name!r}")
        return self.remote(name)

    # -- singletons and shards ------------------------------------------------------------------

    async def singleton(
        self, name: str, factory: Callable[..., Actor], *args: Any, **options: Any
    ) -> RemoteActorRef:
        """Declare a cluster singleton: exactly one node runs ``factory(*args)`` as
        ``name`` at a time, placed by a lease in JetStream KV. Declare it on every node
        that may run it; when the running node dies, its lease expires
        (``registry_ttl``) and a surviving node starts it
        (:class:`~mister_smith.distributed.SingletonPlaced`). Returns a ref that
        follows it wherever it runs."""
        await self.placement.declare(name, factory, args, options)
        return self.remote(name)

    async def sharded(
        self,
        kind: str,
        factory: Callable[..., Actor],
        *args: Any,
        shards: int,
        **options: Any,
    ) -> ShardRegion:
        """Declare ``shards`` singletons ``<kind>-0`` ... placed across the nodes that
        declare them (each takes about its share); messages reach one by key through
        the returned :class:`ShardRegion`."""
        check_token("shard kind", kind)
        if not 1 <= shards <= 4096:
            raise ValueError(f"shards must be in [1, 4096], got {shards!r}")
        for index in range(shards):
            await self.placement.declare(f"{kind}-{index}", factory, args, options)
        return ShardRegion(self, kind, shards)

    # -- introspection --------------------------------------------------------------------------

    def served(self) -> list[str]:
        """The names this node serves now."""
        return sorted(self._served)

    def statistics(self) -> NodeStatistics:
        """The node's counters."""
        return NodeStatistics(
            name=self.name,
            cluster=self.cluster,
            state=self.bridge.state,
            served=len(self._served),
            tells_in=self._tells_in,
            asks_in=self._asks_in,
            replies_out=self._replies_out,
            dead_letters=self._dead_lettered,
            singletons=len(self.placement.held),
            bridge=self.bridge.statistics(),
        )

    def _supervisor(self) -> Supervisor:
        if self.supervisor is None:
            raise ActorStopped(f"node {self.name!r} is not open")
        return self.supervisor

    # -- background children ------------------------------------------------------------------

    async def _refresh_registry(self) -> None:
        """Keep this node's registry entries alive: a refresh starts every third of the
        TTL, however long the previous one took (so a node owning many names still
        renews each of them well inside the TTL)."""
        async with aclosing(periodic(self.settings.registry_ttl / 3)) as ticks:
            async for _ in ticks:
                with suppress(NatsUnavailable):
                    await self.registry.refresh(declared=len(self.placement.declared))


def default_node_name() -> str:
    """``<host>-<pid>``, reduced to the characters a subject token allows."""
    raw = f"{socket.gethostname().split('.')[0]}-{os.getpid()}"
    return "".join(c if c.isalnum() or c in "_-" else "-" for c in raw)[:128]


def _host_parts(host: Host | ActorSystem) -> tuple[ActorSystem, EventBus, Supervisor]:
    if isinstance(host, ActorSystem):
        return host, host.events, host.supervisor
    return host.actor_system, host.events, host.supervision


@asynccontextmanager
async def open_node(
    host: Host | ActorSystem,
    *,
    nats_url: str | None = None,
    node_name: str | None = None,
    cluster: str | None = None,
    settings: DistributedSettings | None = None,
    wire: WireFormat | None = None,
) -> AsyncIterator[Node]:
    """Join ``host`` (a runtime, or an actor system) to a cluster on NATS.

    ``settings`` default to the runtime's ``config.distributed`` (else the defaults);
    ``nats_url``, ``node_name`` and ``cluster`` override them. ``wire`` says which
    message types cross the wire (default: ``DEFAULT_WIRE``, the process-wide wire format).

    On exit the node hands its singletons back (their leases are released, so another
    node takes them at once), withdraws its names and disconnects.

    Raises:
        BridgeClosed: the first connection to NATS failed.
    """
    if settings is None:
        config = getattr(host, "config", None)
        settings = getattr(config, "distributed", None) or DistributedSettings()
    changes: dict[str, Any] = {}
    if nats_url is not None:
        changes["nats_url"] = nats_url
    if cluster is not None:
        changes["cluster"] = cluster
    if node_name is not None:
        changes["node_name"] = node_name
    settings = attrs.evolve(settings, **changes) if changes else settings
    system, events, parent = _host_parts(host)
    health = getattr(host, "health", None)
    metrics = getattr(host, "metrics", None)
    registry = getattr(metrics, "registry", None)
    name = settings.node_name or default_node_name()
    node = Node(system, events, settings, name=name, wire=DEFAULT_WIRE if wire is None else wire)
    supervisor = await parent.start_supervisor(
        f"node-{name}",
        max_restarts=None,
        child_limit=None,
        backoff=Backoff(initial=0.05, maximum=min(5.0, settings.registry_ttl)),
    )
    node.supervisor = supervisor
    try:
        await supervisor.start_child(node.bridge.serve, name="nats")
        await node.registry.ensure()
        await node.placement.ensure()
        await node.registry.refresh()
        await supervisor.start_child(node._refresh_registry, name="registry")
        await supervisor.start_child(node.placement.run, name="placement")
        if isinstance(health, HealthMonitor):
            health.add_check(NatsHealthCheck(node.bridge, name))
        collector = NatsMetricsCollector(node.bridge, name)
        if isinstance(registry, CollectorRegistry):
            registry.register(collector)
        yield node
    finally:
        with trio.CancelScope(shield=True):
            with trio.move_on_after(5):
                await node.placement.release_all("node shutting down")
            for served in list(node._served):
                with trio.move_on_after(1), suppress(NatsUnavailable):
                    await node.withdraw(served)
            with trio.move_on_after(2), suppress(NatsUnavailable):
                await node.registry.leave()
            system.remove_termination_listener(node._actor_gone)
            if isinstance(health, HealthMonitor):
                health.remove_check(f"nats:{name}")
            if isinstance(registry, CollectorRegistry):
                with suppress(KeyError):
                    registry.unregister(collector)
            node.supervisor = None
            with suppress(LookupError):
                await parent.stop_child(supervisor.name)


_inject: Callable[[dict[str, str]], None] | bool | None = None


def _traceparent() -> str | None:
    global _inject
    if _inject is None:
        try:
            from opentelemetry.propagate import inject
        except ImportError:
            _inject = False
        else:
            _inject = inject
    if _inject is False or _inject is True:
        return None
    carrier: dict[str, str] = {}
    _inject(carrier)
    return carrier.get("traceparent")
