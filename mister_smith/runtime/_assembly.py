"""Small pure functions turning configuration into the runtime's parts' options.

Each is a plain function of settings (no I/O, no clock), unit-tested on its own, so
what a config field does is readable in one place and the runtime's builder stays a
list of steps.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import TypedDict, cast

import attrs

from ..async_patterns import RetryPolicy
from ..config import AgentConfig, SupervisionSettings, TaskSettings
from ..events import EventBus
from ..supervision import Backoff, CircuitBreaker, RestartLimit, SupervisorConfig
from ..tools import ToolPolicy
from ..types import Restart


def restart_limit(settings: SupervisionSettings) -> RestartLimit:
    """``max_restart_attempts`` within ``restart_window``: the root's intensity, and
    each actor's own restart budget."""
    return RestartLimit(settings.max_restart_attempts, settings.restart_window)


def backoff(settings: SupervisionSettings) -> Backoff:
    """The delay between restarts of actors, domains and the root's children."""
    return Backoff(
        initial=settings.backoff_initial,
        maximum=settings.backoff_max,
        factor=settings.backoff_factor,
        jitter=settings.backoff_jitter,
    )


def root_supervisor_config(settings: SupervisionSettings) -> SupervisorConfig:
    """The root supervisor: ``restart_strategy`` over its children, the intensity and
    backoff of ``supervision.*``, every child permanent, and kept alive when its last
    child is gone (it owns the runtime's lifetime, not its children's)."""
    limit = restart_limit(settings)
    return SupervisorConfig(
        name="root",
        strategy=settings.restart_strategy,
        max_restarts=limit.max_restarts,
        restart_window=limit.window,
        backoff=backoff(settings),
        escalation_timeout=settings.escalation_timeout,
        default_restart=Restart.PERMANENT,
        shutdown_timeout=settings.shutdown_timeout,
        keep_alive=True,
    )


class ActorSystemOptions(TypedDict):
    """The :class:`~mister_smith.actors.ActorSystem` options a configuration sets."""

    mailbox_capacity: int
    ask_timeout: float
    dead_letter_log_size: int
    default_restart: Restart
    restart_limit: RestartLimit
    backoff: Backoff
    escalation_timeout: float | None
    max_actors: int | None
    max_children_per_supervisor: int | None
    heartbeat_interval: float
    heartbeat_timeout: float


def actor_system_options(config: AgentConfig) -> ActorSystemOptions:
    """``actors.*`` and the per-actor side of ``supervision.*``: each actor's restart
    budget is the root's intensity (``max_restart_attempts`` in ``restart_window``),
    of its own, so a crashing actor never spends its siblings' budget."""
    supervision = config.supervision
    return ActorSystemOptions(
        mailbox_capacity=config.actors.mailbox_capacity,
        ask_timeout=config.actors.ask_timeout,
        dead_letter_log_size=config.actors.dead_letter_log_size,
        default_restart=supervision.strategy.restart_type,
        restart_limit=restart_limit(supervision),
        backoff=backoff(supervision),
        escalation_timeout=supervision.escalation_timeout,
        max_actors=config.actors.max_agents,
        max_children_per_supervisor=supervision.max_children_per_supervisor,
        heartbeat_interval=supervision.heartbeat_interval,
        heartbeat_timeout=supervision.heartbeat_timeout,
    )


class ToolBusOptions(TypedDict):
    """The :class:`~mister_smith.tools.ToolBus` options a configuration sets."""

    default_timeout: float
    default_policy: ToolPolicy
    max_retries: int
    blocking_threads: int


def tool_bus_options(config: AgentConfig) -> ToolBusOptions:
    """``tools.*`` and ``runtime.blocking_threads`` (the limiter blocking tools run under)."""
    return ToolBusOptions(
        default_timeout=config.tools.default_timeout,
        # ToolSettings stores "deny" or "open" (validated there); "open" is logged as a
        # warning by the bus.
        default_policy=cast(ToolPolicy, config.tools.default_policy),
        max_retries=config.tools.max_retries,
        blocking_threads=config.runtime.blocking_threads,
    )


def task_retry_policy(settings: TaskSettings) -> RetryPolicy:
    """The task executor's default retry policy (``tasks.retry_*``)."""
    return RetryPolicy(
        max_attempts=settings.retry_max_attempts,
        base_delay=settings.retry_base_delay,
        max_delay=settings.retry_max_delay,
        factor=settings.retry_factor,
    )


@attrs.frozen
class BreakerSettings:
    """What a circuit breaker made by the runtime is configured with."""

    failure_threshold: int
    reset_timeout: float
    half_open_max_calls: int

    @classmethod
    def of(cls, settings: SupervisionSettings) -> BreakerSettings:
        """The ``supervision.breaker_*`` fields."""
        return cls(
            settings.breaker_failure_threshold,
            settings.breaker_reset_timeout,
            settings.breaker_half_open_calls,
        )


class BreakerFactory:
    """Makes the circuit breakers supervisors gate restarts with (``breaker_*``).

    It remembers the breakers it made (weakly), so :meth:`reconfigure` changes the
    thresholds of the live ones too.
    """

    def __init__(self, settings: BreakerSettings, events: EventBus) -> None:
        self.settings = settings
        self.events = events
        self._made: weakref.WeakSet[CircuitBreaker] = weakref.WeakSet()

    def __call__(self, name: str) -> CircuitBreaker:
        """A new breaker called ``name`` with the current settings."""
        breaker = CircuitBreaker(
            name,
            failure_threshold=self.settings.failure_threshold,
            reset_timeout=self.settings.reset_timeout,
            half_open_max_calls=self.settings.half_open_max_calls,
            events=self.events,
        )
        self._made.add(breaker)
        return breaker

    def breakers(self) -> list[CircuitBreaker]:
        """The live breakers it made."""
        return list(self._made)

    def reconfigure(self, settings: BreakerSettings) -> None:
        """Use ``settings`` for new breakers and apply them to the live ones."""
        self.settings = settings
        for breaker in self._made:
            breaker.reconfigure(
                failure_threshold=settings.failure_threshold,
                reset_timeout=settings.reset_timeout,
                half_open_max_calls=settings.half_open_max_calls,
            )


BreakerFactoryLike = Callable[[str], CircuitBreaker]
