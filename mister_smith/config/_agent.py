"""``AgentConfig``: the whole configuration, one section per subsystem."""

import attrs

from ._agents import AgentSettings
from ._checks import instance_of
from ._distributed import DistributedSettings
from ._orchestration import OrchestrationConfig
from ._persistence import PersistenceSettings
from ._sections import (
    ActorSettings,
    EventSettings,
    MonitoringSettings,
    PoolSettings,
    RuntimeSettings,
    SupervisionSettings,
    TaskSettings,
    ToolSettings,
)


@attrs.frozen
class AgentConfig:
    """The configuration of an agent system (the design doc's ``AgentConfig``).

    ``AgentConfig()`` holds every default. Load one with
    :func:`~mister_smith.config.load_config` (defaults < TOML file < environment) and
    write one with :func:`~mister_smith.config.dump_config`. Change a copy with
    ``attrs.evolve(config, supervision=attrs.evolve(config.supervision, ...))``.

    Attributes:
        runtime: The hosting process (threads for blocking calls, memory watchdog).
        supervision: Restart limits, backoff, failure detection, circuit breakers.
        monitoring: Health checks, metrics, logging, tracing, the HTTP endpoint.
        actors: Mailboxes, agent limit, ``ask`` timeout, dead letters.
        events: The event bus's history and subscriber buffers.
        tools: Tool-call timeouts, retries and the default access policy.
        tasks: The task executor's limits and retry policy.
        pools: Connection and resource pools.
        orchestration: Deployment: replicas, resources, probes, autoscaling.
        agents: Bounds on agents and their models (answer size, tool calls).
        persistence: The embedded store of durable state (file, commits, retention).
        distributed: How a node joins a cluster over NATS (see
            :func:`mister_smith.distributed.open_node`).
    """

    runtime: RuntimeSettings = attrs.field(
        factory=RuntimeSettings, validator=instance_of(RuntimeSettings)
    )
    supervision: SupervisionSettings = attrs.field(
        factory=SupervisionSettings, validator=instance_of(SupervisionSettings)
    )
    monitoring: MonitoringSettings = attrs.field(
        factory=MonitoringSettings, validator=instance_of(MonitoringSettings)
    )
    actors: ActorSettings = attrs.field(factory=ActorSettings, validator=instance_of(ActorSettings))
    events: EventSettings = attrs.field(factory=EventSettings, validator=instance_of(EventSettings))
    tools: ToolSettings = attrs.field(factory=ToolSettings, validator=instance_of(ToolSettings))
    tasks: TaskSettings = attrs.field(factory=TaskSettings, validator=instance_of(TaskSettings))
    pools: PoolSettings = attrs.field(factory=PoolSettings, validator=instance_of(PoolSettings))
    orchestration: OrchestrationConfig = attrs.field(
        factory=OrchestrationConfig, validator=instance_of(OrchestrationConfig)
    )
    agents: AgentSettings = attrs.field(factory=AgentSettings, validator=instance_of(AgentSettings))
    persistence: PersistenceSettings = attrs.field(
        factory=PersistenceSettings, validator=instance_of(PersistenceSettings)
    )
    distributed: DistributedSettings = attrs.field(
        factory=DistributedSettings, validator=instance_of(DistributedSettings)
    )


RuntimeConfig = AgentConfig
"""The design doc's prelude name (``core::RuntimeConfig``) for :class:`AgentConfig`."""


def _settings_classes(root: type) -> frozenset[type]:
    found = {root}
    for field in attrs.fields(root):
        for candidate in (field.type, *getattr(field.type, "__args__", ())):
            if isinstance(candidate, type) and attrs.has(candidate):
                found |= _settings_classes(candidate)
    return frozenset(found)


SETTINGS_CLASSES: frozenset[type] = _settings_classes(AgentConfig)
"""Every settings class reachable from :class:`AgentConfig` (for converter hooks)."""
