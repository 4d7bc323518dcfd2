"""Property tests: any valid config survives dump -> load; any single bad leaf is named."""

from __future__ import annotations

import math
from typing import Any

import attrs
import tomli_w
from hypothesis import given
from hypothesis import strategies as st

from mister_smith.config import (
    LOG_LEVELS,
    SYNCHRONOUS_MODES,
    TOOL_POLICIES,
    AgentConfig,
    ConfigValidationError,
    OrchestrationConfig,
    ProbeConfig,
    ProbeSettings,
    SupervisionStrategy,
    UpdateStrategy,
    config_converter,
    dump_config,
    load_config,
    loads_config,
    parse_duration,
)
from mister_smith.config._structure import settings_class
from mister_smith.types import StrategyKind


@attrs.frozen
class Leaf:
    """How to make a valid value of one leaf field, and values that are never valid."""

    valid: st.SearchStrategy[Any]
    invalid: tuple[object, ...]

    def maybe_none(self) -> Leaf:
        return Leaf(st.none() | self.valid, self.invalid)


WRONG_TYPES = ([1], {"nested": 1})


def integers(minimum: int, maximum: int | None = None) -> Leaf:
    """An integer field whose valid range is ``[minimum, maximum]``."""
    too_big = () if maximum is None else (maximum + 1,)
    return Leaf(
        st.integers(minimum, maximum if maximum is not None else minimum + 10**9),
        (minimum - 1, *too_big, True, "3", 1.5, *WRONG_TYPES),
    )


def numbers(minimum: float, maximum: float | None = None, *, open_low: bool = False) -> Leaf:
    upper = maximum if maximum is not None else 1e6
    too_big = () if maximum is None else (maximum + 0.5,)
    too_small = (minimum,) if open_low else (minimum - 0.5,)
    whole = st.integers(math.floor(minimum) + 1 if open_low else math.ceil(minimum), 1)
    return Leaf(
        st.floats(minimum, upper, exclude_min=open_low) | whole,
        (*too_small, *too_big, math.nan, True, "0.5", *WRONG_TYPES),
    )


def durations(*, positive: bool) -> Leaf:
    seconds = st.floats(0.0, 1e7, exclude_min=positive)
    texts = st.integers(1 if positive else 0, 10**6).flatmap(
        lambda amount: st.sampled_from([f"{amount}ms", f"{amount}s", f"{amount}m", f"{amount}"])
    )
    zero = (0, "0s") if positive else ()
    return Leaf(seconds | texts, (-1, -0.5, "-2s", "soon", "5 parsecs", True, *zero, *WRONG_TYPES))


def choices(options: tuple[str, ...]) -> Leaf:
    cased = st.sampled_from(options).flatmap(
        lambda option: st.sampled_from([option, option.upper(), option.title()])
    )
    return Leaf(cased, ("bogus", "", 3, True, *WRONG_TYPES))


def members(kind: Any) -> Leaf:
    return Leaf(st.sampled_from(list(kind)), ("bogus", 3, True, *WRONG_TYPES))


QUANTITY = st.from_regex(
    r"(?:[1-9]\d{0,3}(?:\.\d{1,3})?)(?:m|k|M|G|Ki|Mi|Gi|e[1-9])?", fullmatch=True
)
QUANTITY_LEAF = Leaf(QUANTITY, ("lots", "1 GB", "-1", "", 2, True, *WRONG_TYPES))
HOST = st.from_regex(r"[A-Za-z0-9.:\-\[\]_]{1,30}", fullmatch=True) | st.text(
    st.characters(blacklist_categories=("Z", "Cc", "Cs")), min_size=1, max_size=10
)
MODEL_NAME = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._:/@-]{0,40}", fullmatch=True)
FILE_PATH = st.from_regex(r"[A-Za-z0-9_./\-]{1,40}", fullmatch=True) | st.text(
    st.characters(codec="utf-8", blacklist_characters="\x00"),
    min_size=1,
    max_size=10,
)
TOKEN = st.from_regex(r"[A-Za-z0-9_-]{1,30}", fullmatch=True)
ENDPOINT = st.from_regex(r"/[A-Za-z0-9/_\-.]{0,20}", fullmatch=True)


def probe_leaves(prefix: str) -> dict[str, Leaf]:
    return {
        f"{prefix}.endpoint": Leaf(ENDPOINT, ("health", "", "/a b", 5, *WRONG_TYPES)),
        f"{prefix}.initial_delay": durations(positive=False),
        f"{prefix}.period": durations(positive=True),
        f"{prefix}.timeout": durations(positive=True),
        f"{prefix}.success_threshold": integers(1),
        f"{prefix}.failure_threshold": integers(1),
    }


LEAVES: dict[str, Leaf] = {
    "runtime.worker_threads": integers(1).maybe_none(),
    "runtime.blocking_threads": integers(1),
    "runtime.max_memory": integers(1).maybe_none(),
    "runtime.thread_stack_size": integers(32 * 1024).maybe_none(),
    "supervision.max_restart_attempts": integers(0),
    "supervision.restart_window": durations(positive=True),
    "supervision.escalation_timeout": durations(positive=True),
    "supervision.strategy": members(SupervisionStrategy),
    "supervision.restart_strategy": members(StrategyKind),
    "supervision.backoff_initial": durations(positive=False),
    "supervision.backoff_max": durations(positive=False),
    "supervision.backoff_factor": numbers(1.0),
    "supervision.backoff_jitter": numbers(0.0, 1.0),
    "supervision.shutdown_timeout": durations(positive=False),
    "supervision.max_children_per_supervisor": integers(1),
    "supervision.heartbeat_interval": durations(positive=True),
    "supervision.heartbeat_timeout": durations(positive=True),
    "supervision.breaker_failure_threshold": integers(1),
    "supervision.breaker_reset_timeout": durations(positive=True),
    "supervision.breaker_half_open_calls": integers(1),
    "monitoring.health_check_interval": durations(positive=True),
    "monitoring.health_check_timeout": durations(positive=True),
    "monitoring.metrics_export_interval": durations(positive=True),
    "monitoring.log_level": choices(LOG_LEVELS),
    "monitoring.trace_sampling_rate": numbers(0.0, 1.0),
    "monitoring.http_host": Leaf(HOST, ("", "a host", 80, *WRONG_TYPES)),
    "monitoring.http_port": integers(0, 65535),
    "actors.mailbox_capacity": integers(1),
    "actors.max_agents": integers(1),
    "actors.ask_timeout": durations(positive=True),
    "actors.dead_letter_log_size": integers(0),
    "events.history_size": integers(0),
    "events.subscriber_buffer": integers(1),
    "tools.default_timeout": durations(positive=True),
    "tools.max_retries": integers(0),
    "tools.blocking_threshold": durations(positive=True),
    "tools.default_policy": choices(TOOL_POLICIES),
    "tasks.timeout": durations(positive=True),
    "tasks.queue_size": integers(0),
    "tasks.max_concurrency": integers(1),
    "tasks.retry_max_attempts": integers(1),
    "tasks.retry_base_delay": durations(positive=False),
    "tasks.retry_max_delay": durations(positive=False),
    "tasks.retry_factor": numbers(1.0),
    "pools.min_size": integers(0),
    "pools.max_size": integers(1),
    "pools.acquire_timeout": durations(positive=True),
    "pools.max_idle": durations(positive=True),
    "pools.max_lifetime": durations(positive=True).maybe_none(),
    "orchestration.replicas.count": integers(0),
    "orchestration.replicas.update_strategy": members(UpdateStrategy),
    "orchestration.resources.requests.cpu": QUANTITY_LEAF,
    "orchestration.resources.requests.memory": QUANTITY_LEAF,
    "orchestration.resources.requests.gpu": QUANTITY_LEAF.maybe_none(),
    "orchestration.resources.limits.cpu": QUANTITY_LEAF,
    "orchestration.resources.limits.memory": QUANTITY_LEAF,
    "orchestration.resources.limits.gpu": QUANTITY_LEAF.maybe_none(),
    **probe_leaves("orchestration.probes.liveness"),
    **probe_leaves("orchestration.probes.readiness"),
    **probe_leaves("orchestration.probes.startup"),
    "orchestration.autoscaling.min_replicas": integers(1),
    "orchestration.autoscaling.max_replicas": integers(1),
    "orchestration.autoscaling.target_cpu_utilization": numbers(
        0.0, 1.0, open_low=True
    ).maybe_none(),
    "orchestration.autoscaling.target_memory_utilization": numbers(
        0.0, 1.0, open_low=True
    ).maybe_none(),
    "orchestration.autoscaling.scale_up_rate": durations(positive=True),
    "orchestration.autoscaling.scale_down_rate": durations(positive=True),
    "agents.max_response_bytes": integers(1024, 1 << 30),
    "agents.max_tool_calls_per_turn": integers(1, 10_000),
    "agents.max_tool_calls_per_task": integers(1, 1_000_000),
    "agents.openai_model": Leaf(MODEL_NAME, ("", "a model", " gpt", 5, *WRONG_TYPES)),
    "agents.anthropic_model": Leaf(MODEL_NAME, ("", "claude 4", 5, *WRONG_TYPES)),
    "persistence.path": Leaf(FILE_PATH, ("", "a\x00b", 3, True, *WRONG_TYPES)),
    "persistence.synchronous": choices(SYNCHRONOUS_MODES),
    "persistence.batch_max": integers(1, 100_000),
    "persistence.max_record_bytes": integers(1, 1 << 30),
    "persistence.dedupe_window": durations(positive=True),
    "persistence.dedupe_capacity": integers(1),
    "persistence.dead_letter_capacity": integers(1),
    "persistence.dead_letter_max_age": durations(positive=True).maybe_none(),
    "persistence.journal_max_entries": integers(1),
    "persistence.journal_max_age": durations(positive=True).maybe_none(),
    "distributed.nats_url": Leaf(
        st.from_regex(r"(nats|tls)://[a-z0-9.]{1,20}:[0-9]{1,5}", fullmatch=True),
        ("http://x", "", "nats://a b", "127.0.0.1:4222", 5, *WRONG_TYPES),
    ),
    "distributed.cluster": Leaf(TOKEN, ("", "a.b", "a b", "*", "a/b", 5, *WRONG_TYPES)),
    "distributed.node_name": Leaf(st.just("") | TOKEN, ("a.b", ">", 5, *WRONG_TYPES)),
    "distributed.registry_ttl": Leaf(
        st.floats(1.0, 1e6) | st.integers(1, 10**5).map(lambda amount: f"{amount}s"),
        (0.5, "500ms", 0, -1, "soon", True, *WRONG_TYPES),
    ),
    "distributed.outbound_bytes": integers(1024),
    "distributed.inbound_capacity": integers(1),
    "distributed.connect_timeout": durations(positive=True),
    "distributed.reconnect_wait": durations(positive=True),
    "distributed.max_reconnect_attempts": integers(1),
    "distributed.max_payload": integers(1),
}

ORDERED = [
    ("supervision", "backoff_initial", "backoff_max"),
    ("supervision", "heartbeat_interval", "heartbeat_timeout"),
    ("tasks", "retry_base_delay", "retry_max_delay"),
    ("pools", "min_size", "max_size"),
    ("orchestration.autoscaling", "min_replicas", "max_replicas"),
    ("agents", "max_tool_calls_per_turn", "max_tool_calls_per_task"),
]

STARTUP = "orchestration.probes.startup"


def leaf_paths(settings: Any, prefix: str = "") -> list[str]:
    paths = []
    for field in attrs.fields(type(settings)):
        value = getattr(settings, field.name)
        path = f"{prefix}{field.name}"
        paths.extend(leaf_paths(value, f"{path}.") if attrs.has(type(value)) else [path])
    return paths


WITH_STARTUP = AgentConfig(
    orchestration=OrchestrationConfig(probes=ProbeSettings(startup=ProbeConfig("/startup")))
)


def test_the_leaf_table_covers_every_field() -> None:
    assert sorted(LEAVES) == sorted(leaf_paths(WITH_STARTUP))


def build(cls: type, values: dict[str, Any], prefix: str = "") -> Any:
    """Construct ``cls`` from dotted leaf values (sections recursively)."""
    kwargs = {}
    for field in attrs.fields(cls):
        path = f"{prefix}{field.name}"
        section = settings_class(field.type)
        if section is None:
            kwargs[field.name] = values[path]
        elif path == STARTUP and values[STARTUP] is None:
            kwargs[field.name] = None
        else:
            kwargs[field.name] = build(section, values, f"{path}.")
    return cls(**kwargs)


@st.composite
def agent_configs(draw: st.DrawFn) -> AgentConfig:
    values = {path: draw(leaf.valid, label=path) for path, leaf in LEAVES.items()}
    values[STARTUP] = draw(st.booleans(), label="has startup probe") or None
    for section, lower, upper in ORDERED:
        pair = sorted((values[f"{section}.{lower}"], values[f"{section}.{upper}"]), key=_amount)
        values[f"{section}.{lower}"], values[f"{section}.{upper}"] = pair
    config: AgentConfig = build(AgentConfig, values)
    return config


def _amount(value: float | str) -> float:
    return parse_duration(value) if isinstance(value, str) else value


def _get(config: object, path: str) -> Any:
    for name in path.split("."):
        config = getattr(config, name)
    return config


@given(agent_configs())
def test_any_valid_config_survives_dump_and_load(config: AgentConfig) -> None:
    text = dump_config(config)
    assert loads_config(text) == config
    assert dump_config(loads_config(text)) == text


@given(agent_configs())
def test_any_valid_config_survives_the_environment(config: AgentConfig) -> None:
    raw = config_converter.unstructure(config)
    env = {}
    for path in leaf_paths(config):
        value = _lookup(raw, path)
        text = "none" if value is None else repr(value) if isinstance(value, float) else str(value)
        env["MISTER_SMITH__" + path.replace(".", "__").upper()] = text
    if config.orchestration.probes.startup is None:
        env["MISTER_SMITH__ORCHESTRATION__PROBES__STARTUP"] = "none"
    assert load_config(env=env) == config


def _lookup(raw: dict[str, Any], path: str) -> Any:
    node: Any = raw
    for name in path.split("."):
        node = node[name]
    return node


def _set(tree: dict[str, Any], path: str, value: object) -> None:
    *parents, last = path.split(".")
    for name in parents:
        tree = tree[name]
    tree[last] = value


@given(st.data())
def test_any_single_bad_leaf_is_reported_with_its_path(data: st.DataObject) -> None:
    path = data.draw(st.sampled_from(sorted(LEAVES)), label="path")
    bad = data.draw(st.sampled_from(LEAVES[path].invalid), label="bad value")
    tree = config_converter.unstructure(WITH_STARTUP)
    _set(tree, path, bad)
    document = tomli_w.dumps(_none_as_text(tree))
    try:
        loads_config(document)
    except ConfigValidationError as exc:
        (problem,) = exc.problems
        assert problem.startswith(f"{path}: "), problem
        assert problem.endswith(f"got {bad!r}"), problem
    else:
        raise AssertionError(f"{path} = {bad!r} was accepted")


FREE_TEXT = {"persistence.path": ""}
"""Leaves that take any text (a file name may hold spaces), with a value they refuse."""


@given(st.sampled_from(sorted(LEAVES)))
def test_any_single_bad_environment_variable_is_named(path: str) -> None:
    variable = "MISTER_SMITH__" + path.replace(".", "__").upper()
    bad = FREE_TEXT.get(path, "not valid")
    env = {variable: bad}
    if path.startswith(STARTUP) and path != f"{STARTUP}.endpoint":
        env["MISTER_SMITH__ORCHESTRATION__PROBES__STARTUP__ENDPOINT"] = "/startup"
    try:
        load_config(env=env)
    except ConfigValidationError as exc:
        (problem,) = exc.problems
        assert problem.startswith(f"{variable} ({path}): "), problem
        assert repr(bad) in problem
    else:
        raise AssertionError(f"{variable}={bad!r} was accepted")


def _none_as_text(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _none_as_text(item) for key, item in value.items()}
    return "none" if value is None else value
