"""Which configuration fields a running runtime can change, and what changed.

Pure: :func:`changed_paths` compares two configurations by key path, and
:data:`FIXED_AT_OPEN` names the fields that only take effect when a runtime opens
(with the reason). :meth:`RuntimeManager.reconfigure` refuses a change to any of them
with a :class:`~mister_smith.errors.ConfigError` naming them, before applying anything.
"""

from __future__ import annotations

from typing import Any

import attrs

from ..config import AgentConfig

FIXED_AT_OPEN: dict[str, str] = {
    "runtime.worker_threads": "not applicable under Trio (kept for configs written for it)",
    "runtime.blocking_threads": "sizes the blocking-thread limiter when the runtime opens",
    "runtime.max_memory": "arms (or not) the memory watchdog when the runtime opens",
    "runtime.thread_stack_size": "applies to worker threads from when the runtime opens",
    "supervision.restart_strategy": "a running supervisor keeps the strategy it opened with",
    "events.history_size": "the event history is allocated when the runtime opens",
    "events.subscriber_buffer": "subscriber queues are made with the size they open with",
    "monitoring.http_host": "the monitoring endpoint is bound when the runtime opens",
    "monitoring.http_port": "the monitoring endpoint is bound when the runtime opens",
    "tasks.timeout": "the task executor is built when the runtime opens",
    "tasks.queue_size": "the task executor is built when the runtime opens",
    "tasks.max_concurrency": "the task executor is built when the runtime opens",
    "tasks.retry_max_attempts": "the task executor is built when the runtime opens",
    "tasks.retry_base_delay": "the task executor is built when the runtime opens",
    "tasks.retry_max_delay": "the task executor is built when the runtime opens",
    "tasks.retry_factor": "the task executor is built when the runtime opens",
    **{
        f"distributed.{name}": "read by open_node when the node joins its cluster"
        for name in (
            "nats_url",
            "cluster",
            "node_name",
            "registry_ttl",
            "outbound_bytes",
            "inbound_capacity",
            "connect_timeout",
            "reconnect_wait",
            "max_reconnect_attempts",
            "max_payload",
        )
    },
    "persistence.path": "a store is opened with these settings (open it again)",
    "persistence.synchronous": "a store is opened with these settings (open it again)",
    "persistence.batch_max": "a store is opened with these settings (open it again)",
    "persistence.max_record_bytes": "a store is opened with these settings (open it again)",
    "persistence.dedupe_window": "a store is opened with these settings (open it again)",
    "persistence.dedupe_capacity": "a store is opened with these settings (open it again)",
    "persistence.dead_letter_capacity": "a store is opened with these settings (open it again)",
    "persistence.dead_letter_max_age": "a store is opened with these settings (open it again)",
    "persistence.journal_max_entries": "a store is opened with these settings (open it again)",
    "persistence.journal_max_age": "a store is opened with these settings (open it again)",
}
"""Fields a running runtime cannot change, each with why. Every other field of
:class:`~mister_smith.config.AgentConfig` is applied live by ``reconfigure``."""


def flatten(config: Any, prefix: str = "") -> dict[str, Any]:
    """Every leaf field of an attrs config, by dotted key path."""
    leaves: dict[str, Any] = {}
    for field in attrs.fields(type(config)):
        value = getattr(config, field.name)
        path = f"{prefix}{field.name}"
        if attrs.has(type(value)):
            leaves.update(flatten(value, path + "."))
        else:
            leaves[path] = value
    return leaves


def changed_paths(old: AgentConfig, new: AgentConfig) -> tuple[str, ...]:
    """The key paths whose values differ between ``old`` and ``new``, sorted."""
    before, after = flatten(old), flatten(new)
    return tuple(sorted(path for path in after if before.get(path) != after[path]))


def refused(changed: tuple[str, ...]) -> list[str]:
    """Of ``changed``, the paths a running runtime cannot apply, with why."""
    return [f"{path}: {FIXED_AT_OPEN[path]}" for path in changed if path in FIXED_AT_OPEN]
