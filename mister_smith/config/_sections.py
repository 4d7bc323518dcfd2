"""The settings sections of :class:`~mister_smith.config.AgentConfig` (orchestration aside).

Names and defaults follow the design doc's ``AgentConfig`` and its sibling pages.
Durations are ``float`` seconds; they may also be given as strings such as ``"500ms"``.
"""

import enum
from typing import ClassVar

import attrs

from mister_smith.types import Restart, StrategyKind

from ._checks import (
    OrderedPairs,
    duration,
    instance_of,
    integer,
    number,
    one_of,
    require_ordered,
    text,
    to_float,
    to_lower,
)
from ._duration import Seconds, to_optional_seconds, to_seconds
from ._thread_stack import thread_stack_size

LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
"""The accepted values of :attr:`MonitoringSettings.log_level`."""

TOOL_POLICIES = ("deny", "open", "restricted")
"""The accepted values of :attr:`ToolSettings.default_policy` (``"restricted"`` is stored
as ``"deny"``)."""


def _tool_policy(value: object) -> object:
    """attrs converter: lower case, and the old name ``"restricted"`` becomes ``"deny"``."""
    value = to_lower(value)  # type: ignore[arg-type]
    return "deny" if value == "restricted" else value


@attrs.frozen
class RuntimeSettings:
    """How the process that hosts the agents is set up.

    Attributes:
        worker_threads: The Rust design's Tokio worker-thread count. Not applicable
            under Trio, whose scheduler runs every task on one thread; kept so configs
            written for the design doc still load. ``None`` or >= 1, otherwise ignored.
        blocking_threads: How many threads may run blocking calls
            (``trio.to_thread.run_sync``) at once: the default thread limiter's size.
            >= 1.
        max_memory: Resident-set-size limit in bytes checked by the memory watchdog;
            ``None`` turns the watchdog off. ``None`` or >= 1.
        thread_stack_size: Stack size in bytes of the threads started for blocking
            calls (``threading.stack_size``); ``None`` keeps the platform's default.
            ``None`` or 32 KiB to 1 GiB, and a thread must start with it here.
    """

    worker_threads: int | None = attrs.field(
        default=None, validator=integer(minimum=1, optional=True)
    )
    blocking_threads: int = attrs.field(default=512, validator=integer(minimum=1))
    max_memory: int | None = attrs.field(default=None, validator=integer(minimum=1, optional=True))
    thread_stack_size: int | None = attrs.field(
        default=2 * 1024 * 1024, validator=thread_stack_size(optional=True)
    )


class SupervisionStrategy(enum.Enum):
    """When supervised children are restarted (the design doc's ``SupervisionStrategy``).

    ``SupervisionStrategy::RestartTransient`` is :attr:`RESTART_TRANSIENT`, and so on;
    :attr:`restart_type` gives the matching :class:`~mister_smith.types.Restart`.
    """

    RESTART_TRANSIENT = "restart_transient"
    """Restart a child only when it failed (raised)."""
    RESTART_PERMANENT = "restart_permanent"
    """Restart a child whenever it exits."""
    RESTART_TEMPORARY = "restart_temporary"
    """Never restart a child."""

    @property
    def restart_type(self) -> Restart:
        """The :class:`~mister_smith.types.Restart` type children get by default."""
        if self is SupervisionStrategy.RESTART_PERMANENT:
            return Restart.PERMANENT
        if self is SupervisionStrategy.RESTART_TEMPORARY:
            return Restart.TEMPORARY
        return Restart.TRANSIENT


@attrs.frozen
class SupervisionSettings:
    """How supervisors restart, back off, detect failures and shut down.

    Attributes:
        max_restart_attempts: Most restarts a supervisor performs within
            ``restart_window`` before it gives up and fails itself (escalates). >= 0.
        restart_window: Length in seconds of the sliding window restarts are counted
            in. > 0.
        escalation_timeout: Seconds a supervisor waits for its parent to take over an
            escalated failure before the failure is treated as fatal. > 0.
        strategy: Which exits of a child lead to a restart by default.
        restart_strategy: Which siblings are restarted with a failed child
            (one-for-one, one-for-all, rest-for-one).
        backoff_initial: Delay in seconds before the first restart of a child. >= 0.
        backoff_max: Upper bound in seconds of the restart delay. >= ``backoff_initial``.
        backoff_factor: Each further restart waits this many times longer. >= 1.
        backoff_jitter: Random spread of each delay, as a fraction of it
            (``0.1`` = +/-10 %). In [0, 1].
        shutdown_timeout: Seconds a child gets to finish after it is asked to stop,
            before it is cancelled. 0 cancels at once.
        max_children_per_supervisor: Most children one supervisor may hold. >= 1.
        heartbeat_interval: Seconds between heartbeats a monitored child sends. > 0.
        heartbeat_timeout: Seconds without a heartbeat after which the failure
            detector declares a child failed. >= ``heartbeat_interval``.
        breaker_failure_threshold: Consecutive failures that open a circuit breaker.
            >= 1.
        breaker_reset_timeout: Seconds an open circuit breaker waits before letting
            trial calls through (half-open). > 0.
        breaker_half_open_calls: Trial calls allowed while half-open; that many
            successes close the breaker again. >= 1.
    """

    max_restart_attempts: int = attrs.field(default=3, validator=integer(minimum=0))
    restart_window: Seconds = attrs.field(
        default=60.0, converter=to_seconds, validator=duration(positive=True)
    )
    escalation_timeout: Seconds = attrs.field(
        default=10.0, converter=to_seconds, validator=duration(positive=True)
    )
    strategy: SupervisionStrategy = attrs.field(
        default=SupervisionStrategy.RESTART_TRANSIENT,
        validator=instance_of(SupervisionStrategy),
    )
    restart_strategy: StrategyKind = attrs.field(
        default=StrategyKind.ONE_FOR_ONE, validator=instance_of(StrategyKind)
    )
    backoff_initial: Seconds = attrs.field(
        default=0.1, converter=to_seconds, validator=duration(positive=False)
    )
    backoff_max: Seconds = attrs.field(
        default=30.0, converter=to_seconds, validator=duration(positive=False)
    )
    backoff_factor: float = attrs.field(
        default=2.0, converter=to_float, validator=number(minimum=1.0)
    )
    backoff_jitter: float = attrs.field(
        default=0.1, converter=to_float, validator=number(minimum=0.0, maximum=1.0)
    )
    shutdown_timeout: Seconds = attrs.field(
        default=5.0, converter=to_seconds, validator=duration(positive=False)
    )
    max_children_per_supervisor: int = attrs.field(default=100, validator=integer(minimum=1))
    heartbeat_interval: Seconds = attrs.field(
        default=5.0, converter=to_seconds, validator=duration(positive=True)
    )
    heartbeat_timeout: Seconds = attrs.field(
        default=15.0, converter=to_seconds, validator=duration(positive=True)
    )
    breaker_failure_threshold: int = attrs.field(default=5, validator=integer(minimum=1))
    breaker_reset_timeout: Seconds = attrs.field(
        default=60.0, converter=to_seconds, validator=duration(positive=True)
    )
    breaker_half_open_calls: int = attrs.field(default=3, validator=integer(minimum=1))

    _ordered: ClassVar[OrderedPairs] = (
        ("backoff_initial", "backoff_max"),
        ("heartbeat_interval", "heartbeat_timeout"),
    )

    def __attrs_post_init__(self) -> None:
        require_ordered(self)


@attrs.frozen
class MonitoringSettings:
    """Health checks, metrics, logging, tracing and the monitoring HTTP endpoint.

    Attributes:
        health_check_interval: Seconds between health-check rounds. > 0.
        health_check_timeout: Seconds one health check may take before it counts as
            failed. > 0.
        metrics_export_interval: Seconds between metrics exports. > 0.
        log_level: Least severe log level emitted: ``debug``, ``info``, ``warning``,
            ``error`` or ``critical`` (any case; stored in lower case).
        trace_sampling_rate: Fraction of traces recorded. In [0, 1].
        http_host: Address the health and metrics HTTP endpoint listens on (no spaces).
        http_port: Port of that endpoint; 0 picks a free port. In [0, 65535].
    """

    health_check_interval: Seconds = attrs.field(
        default=30.0, converter=to_seconds, validator=duration(positive=True)
    )
    health_check_timeout: Seconds = attrs.field(
        default=5.0, converter=to_seconds, validator=duration(positive=True)
    )
    metrics_export_interval: Seconds = attrs.field(
        default=60.0, converter=to_seconds, validator=duration(positive=True)
    )
    log_level: str = attrs.field(default="info", converter=to_lower, validator=one_of(LOG_LEVELS))
    trace_sampling_rate: float = attrs.field(
        default=0.1, converter=to_float, validator=number(minimum=0.0, maximum=1.0)
    )
    http_host: str = attrs.field(
        default="127.0.0.1", validator=text(r"\S+", "a host name or address without spaces")
    )
    http_port: int = attrs.field(default=9464, validator=integer(minimum=0, maximum=65535))


@attrs.frozen
class ActorSettings:
    """Mailboxes, the actor system's size limit and request/reply timeouts.

    Attributes:
        mailbox_capacity: Messages an actor's mailbox holds; a full mailbox makes
            senders wait (``tell``) or fail with ``MailboxFull`` (``tell_nowait``). >= 1.
        max_agents: Most agents (actors) alive at once; spawning more fails. >= 1.
        ask_timeout: Default seconds ``ask`` waits for a reply. > 0.
        dead_letter_log_size: Undeliverable messages kept for inspection (oldest
            dropped first); 0 keeps none. >= 0.
    """

    mailbox_capacity: int = attrs.field(default=1000, validator=integer(minimum=1))
    max_agents: int = attrs.field(default=1000, validator=integer(minimum=1))
    ask_timeout: Seconds = attrs.field(
        default=30.0, converter=to_seconds, validator=duration(positive=True)
    )
    dead_letter_log_size: int = attrs.field(default=1000, validator=integer(minimum=0))


@attrs.frozen
class EventSettings:
    """The event bus.

    Attributes:
        history_size: Past events kept for replay (oldest dropped first); 0 keeps
            none. >= 0.
        subscriber_buffer: Events buffered per subscriber before the publisher waits.
            >= 1.
    """

    history_size: int = attrs.field(default=10_000, validator=integer(minimum=0))
    subscriber_buffer: int = attrs.field(default=1000, validator=integer(minimum=1))


@attrs.frozen
class ToolSettings:
    """The tool bus.

    Attributes:
        default_timeout: Seconds a tool call may take unless the tool says otherwise.
            > 0.
        max_retries: Times a failed tool call is retried. >= 0.
        blocking_threshold: Seconds a synchronous tool may hold the event loop before
            it is reported as blocking (such tools belong in a thread). > 0.
        default_policy: Policy of tools registered without grants. ``"deny"`` (the
            default, as in the original design): a tool runs only for the caller
            identities and roles granted it. ``"open"``: every caller may call such
            tools, a plain unauthenticated name included; the runtime logs a warning
            when it starts with it. ``"restricted"``, the name of ``"deny"`` before it
            became the default, is still accepted and stored as ``"deny"``. Any case;
            stored in lower case.
    """

    default_timeout: Seconds = attrs.field(
        default=30.0, converter=to_seconds, validator=duration(positive=True)
    )
    max_retries: int = attrs.field(default=3, validator=integer(minimum=0))
    blocking_threshold: Seconds = attrs.field(
        default=0.1, converter=to_seconds, validator=duration(positive=True)
    )
    default_policy: str = attrs.field(
        default="deny", converter=_tool_policy, validator=one_of(TOOL_POLICIES)
    )


@attrs.frozen
class TaskSettings:
    """The task executor and its retry policy.

    Attributes:
        timeout: Default seconds a task may run before it is cancelled. > 0.
        queue_size: Tasks waiting to run before submitting fails with
            ``TaskQueueFull``; 0 means submitters hand over directly. >= 0.
        max_concurrency: Most tasks running at once. >= 1.
        retry_max_attempts: Attempts a retried task gets in all (the first
            included). >= 1.
        retry_base_delay: Seconds before the first retry. >= 0.
        retry_max_delay: Upper bound in seconds of a retry delay.
            >= ``retry_base_delay``.
        retry_factor: Each further retry waits this many times longer. >= 1.
    """

    timeout: Seconds = attrs.field(
        default=30.0, converter=to_seconds, validator=duration(positive=True)
    )
    queue_size: int = attrs.field(default=1000, validator=integer(minimum=0))
    max_concurrency: int = attrs.field(default=100, validator=integer(minimum=1))
    retry_max_attempts: int = attrs.field(default=3, validator=integer(minimum=1))
    retry_base_delay: Seconds = attrs.field(
        default=0.1, converter=to_seconds, validator=duration(positive=False)
    )
    retry_max_delay: Seconds = attrs.field(
        default=30.0, converter=to_seconds, validator=duration(positive=False)
    )
    retry_factor: float = attrs.field(
        default=2.0, converter=to_float, validator=number(minimum=1.0)
    )

    _ordered: ClassVar[OrderedPairs] = (("retry_base_delay", "retry_max_delay"),)

    def __attrs_post_init__(self) -> None:
        require_ordered(self)


@attrs.frozen
class PoolSettings:
    """Connection and resource pools.

    Attributes:
        min_size: Resources kept open even when idle. >= 0 and <= ``max_size``.
        max_size: Most resources open at once. >= 1.
        acquire_timeout: Seconds ``acquire`` waits for a free resource before failing
            with ``PoolExhausted``. > 0.
        max_idle: Seconds an idle resource above ``min_size`` is kept before it is
            closed. > 0.
        max_lifetime: Seconds after which a resource is replaced however healthy;
            ``None`` keeps it as long as it works. ``None`` or > 0.
    """

    min_size: int = attrs.field(default=5, validator=integer(minimum=0))
    max_size: int = attrs.field(default=50, validator=integer(minimum=1))
    acquire_timeout: Seconds = attrs.field(
        default=10.0, converter=to_seconds, validator=duration(positive=True)
    )
    max_idle: Seconds = attrs.field(
        default=300.0, converter=to_seconds, validator=duration(positive=True)
    )
    max_lifetime: Seconds | None = attrs.field(
        default=None,
        converter=to_optional_seconds,
        validator=duration(positive=True, optional=True),
    )

    _ordered: ClassVar[OrderedPairs] = (("min_size", "max_size"),)

    def __attrs_post_init__(self) -> None:
        require_ordered(self)
