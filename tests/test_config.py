"""Configuration: defaults, validation, durations, TOML + environment loading, dumping."""

from __future__ import annotations

import inspect
import math
import pickle
import re
import textwrap
from pathlib import Path
from typing import Any

import attrs
import cattrs
import pytest
from mypy import api as mypy_api

import mister_smith.config as config_module
from mister_smith.config import (
    ENV_PREFIX,
    ActorSettings,
    AgentConfig,
    AgentSettings,
    AutoscalingSettings,
    ConfigValidationError,
    EventSettings,
    MonitoringSettings,
    OrchestrationConfig,
    PoolSettings,
    ProbeConfig,
    ProbeSettings,
    ReplicaSettings,
    ResourceAllocation,
    ResourceSettings,
    RuntimeConfig,
    RuntimeSettings,
    Seconds,
    SupervisionSettings,
    SupervisionStrategy,
    TaskSettings,
    ToolSettings,
    UpdateStrategy,
    config_converter,
    dump_config,
    load_config,
    loads_config,
    parse_duration,
    save_config,
)
from mister_smith.config._env import parse_env_value
from mister_smith.errors import ConfigError
from mister_smith.types import TYPED_IDS, AgentId, Restart, StrategyKind, TaskId

SETTINGS_CLASSES = [
    AgentConfig,
    RuntimeSettings,
    SupervisionSettings,
    MonitoringSettings,
    ActorSettings,
    EventSettings,
    ToolSettings,
    TaskSettings,
    PoolSettings,
    OrchestrationConfig,
    ReplicaSettings,
    ResourceSettings,
    ResourceAllocation,
    ProbeSettings,
    ProbeConfig,
    AutoscalingSettings,
    AgentSettings,
]

EXPECTED_DEFAULTS: dict[str, object] = {
    "runtime.worker_threads": None,
    "runtime.blocking_threads": 512,
    "runtime.max_memory": None,
    "runtime.thread_stack_size": 2 * 1024 * 1024,
    "supervision.max_restart_attempts": 3,
    "supervision.restart_window": 60.0,
    "supervision.escalation_timeout": 10.0,
    "supervision.strategy": SupervisionStrategy.RESTART_TRANSIENT,
    "supervision.restart_strategy": StrategyKind.ONE_FOR_ONE,
    "supervision.backoff_initial": 0.1,
    "supervision.backoff_max": 30.0,
    "supervision.backoff_factor": 2.0,
    "supervision.backoff_jitter": 0.1,
    "supervision.shutdown_timeout": 5.0,
    "supervision.max_children_per_supervisor": 100,
    "supervision.heartbeat_interval": 5.0,
    "supervision.heartbeat_timeout": 15.0,
    "supervision.breaker_failure_threshold": 5,
    "supervision.breaker_reset_timeout": 60.0,
    "supervision.breaker_half_open_calls": 3,
    "monitoring.health_check_interval": 30.0,
    "monitoring.health_check_timeout": 5.0,
    "monitoring.metrics_export_interval": 60.0,
    "monitoring.log_level": "info",
    "monitoring.trace_sampling_rate": 0.1,
    "monitoring.http_host": "127.0.0.1",
    "monitoring.http_port": 9464,
    "actors.mailbox_capacity": 1000,
    "actors.max_agents": 1000,
    "actors.ask_timeout": 30.0,
    "actors.dead_letter_log_size": 1000,
    "events.history_size": 10_000,
    "events.subscriber_buffer": 1000,
    "tools.default_timeout": 30.0,
    "tools.max_retries": 3,
    "tools.blocking_threshold": 0.1,
    "tools.default_policy": "deny",
    "tasks.timeout": 30.0,
    "tasks.queue_size": 1000,
    "tasks.max_concurrency": 100,
    "tasks.retry_max_attempts": 3,
    "tasks.retry_base_delay": 0.1,
    "tasks.retry_max_delay": 30.0,
    "tasks.retry_factor": 2.0,
    "pools.min_size": 5,
    "pools.max_size": 50,
    "pools.acquire_timeout": 10.0,
    "pools.max_idle": 300.0,
    "pools.max_lifetime": None,
    "orchestration.replicas.count": 1,
    "orchestration.replicas.update_strategy": UpdateStrategy.ROLLING_UPDATE,
    "orchestration.resources.requests.cpu": "250m",
    "orchestration.resources.requests.memory": "256Mi",
    "orchestration.resources.requests.gpu": None,
    "orchestration.resources.limits.cpu": "1",
    "orchestration.resources.limits.memory": "1Gi",
    "orchestration.resources.limits.gpu": None,
    "orchestration.probes.liveness.endpoint": "/health/live",
    "orchestration.probes.liveness.initial_delay": 0.0,
    "orchestration.probes.liveness.period": 10.0,
    "orchestration.probes.liveness.timeout": 1.0,
    "orchestration.probes.liveness.success_threshold": 1,
    "orchestration.probes.liveness.failure_threshold": 3,
    "orchestration.probes.readiness.endpoint": "/health/ready",
    "orchestration.probes.readiness.initial_delay": 0.0,
    "orchestration.probes.readiness.period": 5.0,
    "orchestration.probes.readiness.timeout": 1.0,
    "orchestration.probes.readiness.success_threshold": 1,
    "orchestration.probes.readiness.failure_threshold": 3,
    "orchestration.probes.startup": None,
    "orchestration.autoscaling.min_replicas": 1,
    "orchestration.autoscaling.max_replicas": 10,
    "orchestration.autoscaling.target_cpu_utilization": 0.8,
    "orchestration.autoscaling.target_memory_utilization": None,
    "orchestration.autoscaling.scale_up_rate": 60.0,
    "orchestration.autoscaling.scale_down_rate": 300.0,
    "agents.max_response_bytes": 4 * 1024 * 1024,
    "agents.max_tool_calls_per_turn": 32,
    "agents.max_tool_calls_per_task": 256,
    "agents.openai_model": "gpt-5-mini",
    "agents.anthropic_model": "claude-haiku-4-5",
    "persistence.path": "mister_smith.db",
    "persistence.synchronous": "normal",
    "persistence.batch_max": 256,
    "persistence.max_record_bytes": 8 * 1024 * 1024,
    "persistence.dedupe_window": 120.0,
    "persistence.dedupe_capacity": 100_000,
    "persistence.dead_letter_capacity": 10_000,
    "persistence.dead_letter_max_age": 7 * 24 * 3600.0,
    "persistence.journal_max_entries": 100_000,
    "persistence.journal_max_age": 24 * 3600.0,
    "distributed.nats_url": "nats://127.0.0.1:4222",
    "distributed.cluster": "default",
    "distributed.node_name": "",
    "distributed.registry_ttl": 10.0,
    "distributed.outbound_bytes": 8 * 1024 * 1024,
    "distributed.inbound_capacity": 1000,
    "distributed.connect_timeout": 2.0,
    "distributed.reconnect_wait": 0.5,
    "distributed.max_reconnect_attempts": 60,
    "distributed.max_payload": 1024 * 1024,
}


def flatten(settings: Any, prefix: str = "") -> dict[str, object]:
    """Leaf values of a settings object by dotted key path."""
    leaves: dict[str, object] = {}
    for field in attrs.fields(type(settings)):
        value = getattr(settings, field.name)
        path = f"{prefix}{field.name}"
        if attrs.has(type(value)):
            leaves.update(flatten(value, f"{path}."))
        else:
            leaves[path] = value
    return leaves


def toml(text: str) -> str:
    return textwrap.dedent(text).strip() + "\n"


def problems_of(excinfo: pytest.ExceptionInfo[ConfigValidationError]) -> list[str]:
    return excinfo.value.problems


# --- public surface -----------------------------------------------------------------------


def test_every_exported_name_exists_and_classes_and_functions_are_documented() -> None:
    assert len(set(config_module.__all__)) == len(config_module.__all__)
    for name in config_module.__all__:
        obj = getattr(config_module, name)
        if isinstance(obj, type) or inspect.isfunction(obj):
            assert (obj.__doc__ or "").strip(), name


EXAMPLES: dict[type, object] = {
    cls: cls() for cls in SETTINGS_CLASSES if cls not in (ResourceAllocation, ProbeConfig)
} | {ResourceAllocation: ResourceAllocation("1", "1Gi"), ProbeConfig: ProbeConfig("/up")}


@pytest.mark.parametrize("cls", SETTINGS_CLASSES, ids=lambda cls: cls.__name__)
def test_every_field_is_documented_and_every_class_is_frozen(cls: type) -> None:
    attributes = (cls.__doc__ or "").split("Attributes:", 1)[1]
    for field in attrs.fields(cls):
        assert re.search(rf"^\s+{field.name}: \S", attributes, re.MULTILINE), field.name
    first = attrs.fields(cls)[0].name
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        setattr(EXAMPLES[cls], first, getattr(EXAMPLES[cls], first))


def test_runtime_config_is_the_design_docs_name_for_agent_config() -> None:
    assert RuntimeConfig is AgentConfig


# --- defaults and mappings ----------------------------------------------------------------


def test_defaults_are_exactly_the_documented_ones() -> None:
    assert flatten(AgentConfig()) == EXPECTED_DEFAULTS


def test_default_durations_and_rates_are_floats() -> None:
    for path, value in flatten(AgentConfig()).items():
        if isinstance(EXPECTED_DEFAULTS[path], float):
            assert type(value) is float, path


def test_sections_are_fresh_default_instances() -> None:
    config = AgentConfig()
    assert config.supervision == SupervisionSettings()
    assert config.orchestration.probes.liveness == ProbeConfig("/health/live")
    assert AgentConfig() == AgentConfig()
    assert hash(AgentConfig()) == hash(AgentConfig())


@pytest.mark.parametrize(
    ("strategy", "value", "restart"),
    [
        (SupervisionStrategy.RESTART_TRANSIENT, "restart_transient", Restart.TRANSIENT),
        (SupervisionStrategy.RESTART_PERMANENT, "restart_permanent", Restart.PERMANENT),
        (SupervisionStrategy.RESTART_TEMPORARY, "restart_temporary", Restart.TEMPORARY),
    ],
)
def test_supervision_strategy_values_and_restart_types(
    strategy: SupervisionStrategy, value: str, restart: Restart
) -> None:
    assert strategy.value == value
    assert SupervisionStrategy(value) is strategy
    assert strategy.restart_type is restart


def test_update_strategy_values() -> None:
    assert UpdateStrategy.ROLLING_UPDATE.value == "RollingUpdate"
    assert UpdateStrategy.RECREATE.value == "Recreate"
    assert len(UpdateStrategy) == 2


# --- durations ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("500ms", 0.5),
        ("60s", 60.0),
        ("2m", 120.0),
        ("1h", 3600.0),
        ("1.5s", 1.5),
        ("1d", 86400.0),
        ("1h30m", 5400.0),
        ("1m 30s", 90.0),
        (" 2m ", 120.0),
        ("45", 45.0),
        ("0.25", 0.25),
        ("0", 0.0),
        (".5s", 0.5),
        (45, 45.0),
        (0.1, 0.1),
    ],
)
def test_parse_duration_accepts_units_and_plain_seconds(text: str | float, seconds: float) -> None:
    parsed = parse_duration(text)
    assert parsed == pytest.approx(seconds)
    assert type(parsed) is float


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("abc", "not a duration"),
        ("", "not a duration"),
        ("5 parsecs", "not a duration"),
        ("5s3", "not a duration"),
        ("s", "not a duration"),
        ("-5s", "negative"),
        ("-1", "negative"),
        (-1, "negative"),
        (-0.5, "negative"),
        ("nan", "finite"),
        ("inf", "finite"),
        (math.inf, "finite"),
        (math.nan, "finite"),
        (True, "expected a duration"),
        (None, "expected a duration"),
        ([1], "expected a duration"),
    ],
)
def test_parse_duration_rejects_bad_values(value: Any, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment) as excinfo:
        parse_duration(value)
    assert repr(value) in str(excinfo.value)


def test_durations_can_be_given_as_strings_at_construction() -> None:
    settings = SupervisionSettings(restart_window="2m", backoff_initial="250ms")
    assert settings.restart_window == 120.0
    assert settings.backoff_initial == 0.25
    assert SupervisionSettings(restart_window=60) == SupervisionSettings()
    assert PoolSettings(max_lifetime="1h").max_lifetime == 3600.0
    assert PoolSettings(max_lifetime="none").max_lifetime is None


# --- validation at construction ------------------------------------------------------------


@pytest.mark.parametrize(
    ("cls", "field", "value"),
    [
        (RuntimeSettings, "worker_threads", 0),
        (RuntimeSettings, "worker_threads", True),
        (RuntimeSettings, "blocking_threads", 0),
        (RuntimeSettings, "blocking_threads", True),
        (RuntimeSettings, "blocking_threads", 2.0),
        (RuntimeSettings, "blocking_threads", "8"),
        (RuntimeSettings, "max_memory", 0),
        (RuntimeSettings, "thread_stack_size", 1024),
        (SupervisionSettings, "max_restart_attempts", -1),
        (SupervisionSettings, "restart_window", 0),
        (SupervisionSettings, "restart_window", -5.0),
        (SupervisionSettings, "restart_window", "soon"),
        (SupervisionSettings, "escalation_timeout", "-1s"),
        (SupervisionSettings, "strategy", "restart_transient"),
        (SupervisionSettings, "restart_strategy", "one_for_one"),
        (SupervisionSettings, "backoff_factor", 0.5),
        (SupervisionSettings, "backoff_factor", True),
        (SupervisionSettings, "backoff_jitter", 1.5),
        (SupervisionSettings, "backoff_jitter", math.nan),
        (SupervisionSettings, "max_children_per_supervisor", 0),
        (SupervisionSettings, "breaker_failure_threshold", 0),
        (SupervisionSettings, "breaker_half_open_calls", 0),
        (MonitoringSettings, "log_level", "loud"),
        (MonitoringSettings, "log_level", 10),
        (MonitoringSettings, "trace_sampling_rate", -0.1),
        (MonitoringSettings, "trace_sampling_rate", 1.01),
        (MonitoringSettings, "http_host", ""),
        (MonitoringSettings, "http_host", "local host"),
        (MonitoringSettings, "http_port", 65536),
        (MonitoringSettings, "http_port", -1),
        (ActorSettings, "mailbox_capacity", 0),
        (ActorSettings, "max_agents", 0),
        (ActorSettings, "ask_timeout", 0.0),
        (ActorSettings, "dead_letter_log_size", -1),
        (EventSettings, "history_size", -1),
        (EventSettings, "subscriber_buffer", 0),
        (ToolSettings, "default_policy", "closed"),
        (ToolSettings, "max_retries", -1),
        (TaskSettings, "max_concurrency", 0),
        (TaskSettings, "retry_factor", 0.9),
        (PoolSettings, "max_size", 0),
        (PoolSettings, "max_lifetime", 0),
        (ReplicaSettings, "count", -1),
        (ReplicaSettings, "update_strategy", "Recreate"),
        (AutoscalingSettings, "target_cpu_utilization", 0.0),
        (AutoscalingSettings, "target_memory_utilization", 1.5),
        (AutoscalingSettings, "min_replicas", 0),
    ],
)
def test_invalid_values_at_construction_name_the_field_and_value(
    cls: type, field: str, value: object
) -> None:
    with pytest.raises(ConfigValidationError) as excinfo:
        cls(**{field: value})
    message = str(excinfo.value)
    assert f"{cls.__name__}.{field}" in message
    assert repr(value) in message
    assert isinstance(excinfo.value, ConfigError)
    assert isinstance(excinfo.value, ValueError)


@pytest.mark.parametrize(
    ("factory", "message"),
    [
        (lambda: ResourceAllocation(cpu="lots", memory="1Gi"), "ResourceAllocation.cpu"),
        (lambda: ResourceAllocation(cpu="1", memory="1 GB"), "ResourceAllocation.memory"),
        (lambda: ResourceAllocation(cpu="1", memory="1Gi", gpu="two"), "ResourceAllocation.gpu"),
        (lambda: ProbeConfig("health"), "ProbeConfig.endpoint"),
        (lambda: ProbeConfig("/h", period=0), "ProbeConfig.period"),
        (lambda: ProbeConfig("/h", failure_threshold=0), "ProbeConfig.failure_threshold"),
        (lambda: ProbeSettings(startup="/up"), "ProbeSettings.startup"),  # type: ignore[arg-type]
        (lambda: AgentConfig(runtime=3), "AgentConfig.runtime"),  # type: ignore[arg-type]
    ],
)
def test_invalid_nested_values_at_construction(factory: Any, message: str) -> None:
    with pytest.raises(ConfigValidationError, match=re.escape(message)):
        factory()


@pytest.mark.parametrize(
    ("factory", "lower", "upper"),
    [
        (lambda: PoolSettings(min_size=10, max_size=5), "min_size", "max_size"),
        (lambda: AutoscalingSettings(min_replicas=3, max_replicas=2), "min_replicas", "max"),
        (lambda: SupervisionSettings(backoff_initial=40), "backoff_initial", "backoff_max"),
        (
            lambda: SupervisionSettings(heartbeat_interval=20),
            "heartbeat_interval",
            "heartbeat_timeout",
        ),
        (lambda: TaskSettings(retry_base_delay="1m"), "retry_base_delay", "retry_max_delay"),
    ],
)
def test_ordered_fields_are_checked_at_construction(factory: Any, lower: str, upper: str) -> None:
    with pytest.raises(ConfigValidationError, match=rf"\.{lower}: must be <= {upper}"):
        factory()


def test_equal_bounds_are_fine() -> None:
    assert PoolSettings(min_size=7, max_size=7).min_size == 7
    assert AutoscalingSettings(min_replicas=4, max_replicas=4).max_replicas == 4


def test_case_insensitive_choices_are_stored_lowercase() -> None:
    assert MonitoringSettings(log_level="DEBUG").log_level == "debug"
    assert ToolSettings(default_policy="OPEN").default_policy == "open"
    # "restricted", the old name of "deny", still loads (configs already written).
    assert ToolSettings(default_policy="Restricted").default_policy == "deny"


def test_ints_given_for_float_fields_are_stored_as_floats() -> None:
    settings = MonitoringSettings(trace_sampling_rate=1)
    assert type(settings.trace_sampling_rate) is float
    assert type(SupervisionSettings(backoff_factor=3).backoff_factor) is float


def test_gpu_none_text_means_no_gpu() -> None:
    assert ResourceAllocation(cpu="1", memory="1Gi", gpu="none").gpu is None
    assert ResourceAllocation(cpu="500m", memory="2e9", gpu="1").gpu == "1"


def test_construction_type_checks_for_durations_as_numbers_and_strings(tmp_path: Path) -> None:
    snippet = tmp_path / "construct.py"
    snippet.write_text(
        textwrap.dedent(
            """\
            from mister_smith.config import AgentConfig, SupervisionSettings

            a = SupervisionSettings(restart_window=60.0)
            b = SupervisionSettings(restart_window="60s", max_restart_attempts=5)
            reveal_type(AgentConfig().supervision.restart_window)
            c = SupervisionSettings(max_restart_attempts="3")
            """
        )
    )
    stdout, stderr, status = mypy_api.run(
        [
            "--strict",
            "--cache-dir",
            str(tmp_path / "mypy_cache"),
            "--no-error-summary",
            "--config-file",
            "",
            str(snippet),
        ]
    )
    assert status == 1, (stdout, stderr)
    errors = [line for line in stdout.splitlines() if ": error:" in line]
    assert len(errors) == 1, stdout
    assert "construct.py:6:" in errors[0]
    assert 'Revealed type is "float"' in stdout


# --- loading: precedence -------------------------------------------------------------------


def test_no_file_and_no_environment_gives_the_defaults() -> None:
    assert load_config(env={}) == AgentConfig()
    assert loads_config("") == AgentConfig()


def test_a_file_changes_only_the_keys_it_names(tmp_path: Path) -> None:
    path = tmp_path / "agent.toml"
    path.write_text(
        toml(
            """
            [supervision]
            restart_window = "2m"
            strategy = "restart_permanent"
            restart_strategy = "one_for_all"

            [monitoring]
            log_level = "WARNING"

            [orchestration.probes.liveness]
            period = 3

            [orchestration.probes.startup]
            endpoint = "/health/startup"
            failure_threshold = 30

            [orchestration.resources.limits]
            gpu = "1"
            """
        )
    )
    config = load_config(path, env={})
    assert config.supervision.restart_window == 120.0
    assert config.supervision.strategy is SupervisionStrategy.RESTART_PERMANENT
    assert config.supervision.restart_strategy is StrategyKind.ONE_FOR_ALL
    assert config.supervision.max_restart_attempts == 3
    assert config.monitoring.log_level == "warning"
    liveness = config.orchestration.probes.liveness
    assert liveness == ProbeConfig("/health/live", period=3.0)
    assert config.orchestration.probes.readiness.endpoint == "/health/ready"
    assert config.orchestration.probes.startup == ProbeConfig(
        "/health/startup", failure_threshold=30
    )
    assert config.orchestration.resources.limits == ResourceAllocation("1", "1Gi", gpu="1")
    assert config.orchestration.resources.requests == ResourceAllocation("250m", "256Mi")
    assert config.pools == PoolSettings()


def test_environment_overrides_file_overrides_defaults(tmp_path: Path) -> None:
    path = tmp_path / "agent.toml"
    path.write_text(
        toml(
            """
            [supervision]
            max_restart_attempts = 7
            restart_window = 30

            [pools]
            max_size = 80
            """
        )
    )
    env = {
        "MISTER_SMITH__SUPERVISION__RESTART_WINDOW": "90s",
        "MISTER_SMITH__ACTORS__MAILBOX_CAPACITY": "64",
        "UNRELATED": "ignored",
    }
    config = load_config(path, env=env)
    assert config.supervision.max_restart_attempts == 7  # file
    assert config.supervision.restart_window == 90.0  # environment beats file
    assert config.pools.max_size == 80  # file
    assert config.actors.mailbox_capacity == 64  # environment
    assert config.supervision.escalation_timeout == 10.0  # default


def test_environment_names_are_case_insensitive_and_nest() -> None:
    env = {
        "mister_smith__orchestration__autoscaling__max_replicas": "20",
        "Mister_Smith__Orchestration__Replicas__Update_Strategy": "Recreate",
        "MISTER_SMITH__ORCHESTRATION__PROBES__STARTUP__ENDPOINT": "/health/startup",
        "MISTER_SMITH__ORCHESTRATION__PROBES__STARTUP__PERIOD": "500ms",
    }
    config = load_config(env=env)
    assert config.orchestration.autoscaling.max_replicas == 20
    assert config.orchestration.replicas.update_strategy is UpdateStrategy.RECREATE
    assert config.orchestration.probes.startup == ProbeConfig("/health/startup", period=0.5)


def test_environment_values_are_parsed_per_field_type() -> None:
    env = {
        "MISTER_SMITH__RUNTIME__WORKER_THREADS": "4",
        "MISTER_SMITH__RUNTIME__THREAD_STACK_SIZE": "none",
        "MISTER_SMITH__RUNTIME__MAX_MEMORY": "1_000_000_000",
        "MISTER_SMITH__SUPERVISION__BACKOFF_FACTOR": "1.5",
        "MISTER_SMITH__SUPERVISION__STRATEGY": "RESTART_TEMPORARY",
        "MISTER_SMITH__MONITORING__TRACE_SAMPLING_RATE": "1",
        "MISTER_SMITH__MONITORING__LOG_LEVEL": "Debug",
        "MISTER_SMITH__POOLS__MAX_LIFETIME": "1h",
        "MISTER_SMITH__ORCHESTRATION__AUTOSCALING__TARGET_CPU_UTILIZATION": "NONE",
        "MISTER_SMITH__ORCHESTRATION__AUTOSCALING__TARGET_MEMORY_UTILIZATION": "0.75",
        "MISTER_SMITH__ORCHESTRATION__RESOURCES__REQUESTS__GPU": "1",
    }
    config = load_config(env=env)
    assert config.runtime.worker_threads == 4
    assert config.runtime.thread_stack_size is None
    assert config.runtime.max_memory == 1_000_000_000
    assert config.supervision.backoff_factor == 1.5
    assert config.supervision.strategy is SupervisionStrategy.RESTART_TEMPORARY
    assert config.monitoring.trace_sampling_rate == 1.0
    assert config.monitoring.log_level == "debug"
    assert config.pools.max_lifetime == 3600.0
    assert config.orchestration.autoscaling.target_cpu_utilization is None
    assert config.orchestration.autoscaling.target_memory_utilization == 0.75
    assert config.orchestration.resources.requests.gpu == "1"


def test_environment_can_clear_an_optional_section(tmp_path: Path) -> None:
    path = tmp_path / "agent.toml"
    path.write_text('[orchestration.probes.startup]\nendpoint = "/health/startup"\n')
    assert load_config(path, env={}).orchestration.probes.startup is not None
    env = {"MISTER_SMITH__ORCHESTRATION__PROBES__STARTUP": "none"}
    assert load_config(path, env=env).orchestration.probes.startup is None


def test_load_config_reads_os_environ_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MISTER_SMITH__EVENTS__HISTORY_SIZE", "5")
    assert load_config().events.history_size == 5
    assert load_config(env={}).events.history_size == 10_000


@pytest.mark.parametrize(
    ("text", "annotation", "expected"),
    [
        ("true", bool, True),
        ("Yes", bool, True),
        ("1", bool, True),
        ("on", bool, True),
        ("false", bool, False),
        ("NO", bool, False),
        ("0", bool, False),
        ("off", bool, False),
        ("maybe", bool, "maybe"),
        ("42", int, 42),
        (" 42 ", int, 42),
        ("4.5", int, "4.5"),
        ("4.5", float, 4.5),
        ("7", float, 7.0),
        ("none", int | None, None),
        ("None", bool | None, None),
        ("none", int, "none"),
        ("30s", Seconds, "30s"),
        ("text", str, "text"),
    ],
)
def test_environment_text_is_read_per_type(text: str, annotation: Any, expected: object) -> None:
    parsed = parse_env_value(text, annotation)
    assert parsed == expected
    assert type(parsed) is type(expected)


def test_env_prefix() -> None:
    assert ENV_PREFIX == "MISTER_SMITH__"


# --- loading: errors -------------------------------------------------------------------------


def test_unknown_keys_in_a_file_are_errors_naming_the_path() -> None:
    with pytest.raises(ConfigValidationError) as excinfo:
        loads_config("[supervision]\nrestart_windw = 5\n[telemetry]\nx = 1\n")
    telemetry, window = sorted(problems_of(excinfo), reverse=True)
    assert window.startswith("supervision.restart_windw: unknown key")
    assert "did you mean 'restart_window'" in window
    assert telemetry.startswith("telemetry: unknown key (expected one of: runtime, supervision")


@pytest.mark.parametrize(
    ("document", "path", "value"),
    [
        ("[supervision]\nrestart_window = -1", "supervision.restart_window", "-1"),
        ("[supervision]\nrestart_window = '-5s'", "supervision.restart_window", "'-5s'"),
        ("[supervision]\nrestart_window = 'soon'", "supervision.restart_window", "'soon'"),
        ("[supervision]\nrestart_window = true", "supervision.restart_window", "True"),
        ("[supervision]\nmax_restart_attempts = '3'", "supervision.max_restart_attempts", "'3'"),
        ("[supervision]\nmax_restart_attempts = 3.0", "supervision.max_restart_attempts", "3.0"),
        ("[supervision]\nmax_restart_attempts = true", "supervision.max_restart_attempts", "True"),
        ("[supervision]\nstrategy = 'sometimes'", "supervision.strategy", "'sometimes'"),
        ("[supervision]\nbackoff_jitter = 2", "supervision.backoff_jitter", "2"),
        ("[monitoring]\ntrace_sampling_rate = 1.5", "monitoring.trace_sampling_rate", "1.5"),
        ("[monitoring]\ntrace_sampling_rate = -0.5", "monitoring.trace_sampling_rate", "-0.5"),
        ("[monitoring]\ntrace_sampling_rate = nan", "monitoring.trace_sampling_rate", "nan"),
        ("[monitoring]\nlog_level = 'verbose'", "monitoring.log_level", "'verbose'"),
        ("[monitoring]\nhttp_port = 70000", "monitoring.http_port", "70000"),
        ("[tools]\ndefault_policy = 'closed'", "tools.default_policy", "'closed'"),
        ("[pools]\nmax_lifetime = 0", "pools.max_lifetime", "0"),
        ("[pools]\nmax_size = [1, 2]", "pools.max_size", "[1, 2]"),
        ("supervision = 3", "supervision", "3"),
        ("[orchestration]\nprobes = 'all'", "orchestration.probes", "'all'"),
        (
            "[orchestration.replicas]\nupdate_strategy = 'Blue'",
            "orchestration.replicas.update_strategy",
            "'Blue'",
        ),
        (
            "[orchestration.resources.requests]\ncpu = 2",
            "orchestration.resources.requests.cpu",
            "2",
        ),
        (
            "[orchestration.probes.liveness]\nendpoint = 'live'",
            "orchestration.probes.liveness.endpoint",
            "'live'",
        ),
        (
            "[orchestration.autoscaling]\ntarget_cpu_utilization = 0",
            "orchestration.autoscaling.target_cpu_utilization",
            "0",
        ),
    ],
)
def test_bad_values_in_a_file_name_the_path_and_the_value(
    document: str, path: str, value: str
) -> None:
    with pytest.raises(ConfigValidationError) as excinfo:
        loads_config(document)
    (problem,) = problems_of(excinfo)
    assert problem.startswith(f"{path}: ")
    assert problem.endswith(f"got {value}")
    assert path in str(excinfo.value)


@pytest.mark.parametrize(
    ("document", "path", "upper"),
    [
        ("[pools]\nmin_size = 10\nmax_size = 5", "pools.min_size", "max_size (5)"),
        ("[pools]\nmin_size = 60", "pools.min_size", "max_size (50)"),
        (
            "[orchestration.autoscaling]\nmin_replicas = 4\nmax_replicas = 2",
            "orchestration.autoscaling.min_replicas",
            "max_replicas (2)",
        ),
        (
            "[tasks]\nretry_base_delay = '1m'",
            "tasks.retry_base_delay",
            "retry_max_delay (30.0)",
        ),
    ],
)
def test_fields_out_of_order_in_a_file_are_errors(document: str, path: str, upper: str) -> None:
    with pytest.raises(ConfigValidationError) as excinfo:
        loads_config(document)
    (problem,) = problems_of(excinfo)
    assert problem.startswith(f"{path}: must be <= {upper}")


def test_every_problem_of_a_file_is_reported_at_once(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text(
        toml(
            """
            [runtime]
            blocking_threads = 0
            surprise = true

            [supervision]
            restart_window = "-1s"
            backoff_factor = "fast"

            [monitoring]
            trace_sampling_rate = 3.0

            [pools]
            min_size = 9
            max_size = 3

            [orchestration.autoscaling]
            min_replicas = 5
            max_replicas = 1
            target_memory_utilization = 2

            [orchestration.probes.startup]
            period = 5
            """
        )
    )
    with pytest.raises(ConfigValidationError) as excinfo:
        load_config(path, env={"MISTER_SMITH__EVENTS__HISTORY_SIZE": "many"})
    problems = problems_of(excinfo)
    expected = [
        "runtime.surprise",
        "runtime.blocking_threads",
        "supervision.restart_window",
        "supervision.backoff_factor",
        "monitoring.trace_sampling_rate",
        "MISTER_SMITH__EVENTS__HISTORY_SIZE (events.history_size)",
        "pools.min_size",
        "orchestration.probes.startup.endpoint: missing required key",
        "orchestration.autoscaling.target_memory_utilization",
        "orchestration.autoscaling.min_replicas",
    ]
    assert len(problems) == len(expected), problems
    for fragment in expected:
        assert any(problem.startswith(fragment) for problem in problems), fragment
    message = str(excinfo.value)
    assert f"({path} + environment), {len(expected)} problems" in message
    assert all(problem in message for problem in problems)


@pytest.mark.parametrize(
    ("env", "fragments"),
    [
        (
            {"MISTER_SMITH__SUPERVISION__RESTART_WINDOW": "-3s"},
            ["MISTER_SMITH__SUPERVISION__RESTART_WINDOW", "supervision.restart_window", "'-3s'"],
        ),
        (
            {"MISTER_SMITH__SUPERVISION__MAX_RESTART_ATTEMPTS": "three"},
            ["MISTER_SMITH__SUPERVISION__MAX_RESTART_ATTEMPTS", "integer", "'three'"],
        ),
        (
            {"MISTER_SMITH__MONITORING__TRACE_SAMPLING_RATE": "1.5"},
            ["MISTER_SMITH__MONITORING__TRACE_SAMPLING_RATE", "1.5"],
        ),
        (
            {"mister_smith__supervision__bogus": "1"},
            ["mister_smith__supervision__bogus", "unknown setting 'supervision.bogus'"],
        ),
        ({"MISTER_SMITH__NOPE": "1"}, ["MISTER_SMITH__NOPE", "unknown setting 'nope'"]),
        ({"MISTER_SMITH__": "1"}, ["MISTER_SMITH__", "unknown setting"]),
        (
            {"MISTER_SMITH__SUPERVISION__RESTART_WINDOW__UNIT": "s"},
            ["'supervision.restart_window' is a setting, not a table"],
        ),
        (
            {"MISTER_SMITH__SUPERVISION": "fast"},
            ["MISTER_SMITH__SUPERVISION (supervision): is a table", "'fast'"],
        ),
        (
            {"MISTER_SMITH__ORCHESTRATION__PROBES__LIVENESS": "none"},
            ["MISTER_SMITH__ORCHESTRATION__PROBES__LIVENESS", "is a table"],
        ),
        (
            {"MISTER_SMITH__POOLS__MIN_SIZE": "none"},
            ["MISTER_SMITH__POOLS__MIN_SIZE (pools.min_size)", "'none'"],
        ),
        (
            {"MISTER_SMITH__POOLS__MIN_SIZE": "90"},
            ["MISTER_SMITH__POOLS__MIN_SIZE (pools.min_size): must be <= max_size", "90"],
        ),
        (
            {
                "MISTER_SMITH__ORCHESTRATION__PROBES__STARTUP": "none",
                "MISTER_SMITH__ORCHESTRATION__PROBES__STARTUP__PERIOD": "5",
            },
            ["STARTUP__PERIOD", "conflicts with MISTER_SMITH__ORCHESTRATION__PROBES__STARTUP"],
        ),
        (
            {"MISTER_SMITH__EVENTS__HISTORY_SIZE": "1", "mister_smith__events__history_size": "2"},
            ["set twice"],
        ),
    ],
)
def test_bad_environment_variables_are_named(env: dict[str, str], fragments: list[str]) -> None:
    with pytest.raises(ConfigValidationError) as excinfo:
        load_config(env=env)
    (problem,) = problems_of(excinfo)
    for fragment in fragments:
        assert fragment in problem
    assert excinfo.value.source == "environment"


def test_bad_toml_syntax_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "agent.toml"
    path.write_text("[supervision\nrestart_window = 5\n")
    with pytest.raises(ConfigValidationError, match="invalid TOML") as excinfo:
        load_config(path, env={})
    assert str(path) in str(excinfo.value)
    with pytest.raises(ConfigValidationError, match=r"<string>: invalid TOML"):
        loads_config("= 1")


def test_a_missing_file_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "absent.toml"
    with pytest.raises(ConfigValidationError, match="file not found") as excinfo:
        load_config(path, env={})
    assert problems_of(excinfo) == [f"{path}: file not found"]


def test_a_directory_or_non_utf8_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigValidationError, match="cannot read"):
        load_config(tmp_path, env={})
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b"\xff\xfe[x]")
    with pytest.raises(ConfigValidationError, match="not UTF-8"):
        load_config(binary, env={})


def test_loads_config_needs_text() -> None:
    with pytest.raises(ConfigValidationError, match="expected TOML text"):
        loads_config(b"[supervision]")  # type: ignore[arg-type]


def test_config_validation_error_survives_pickling() -> None:
    with pytest.raises(ConfigValidationError) as excinfo:
        loads_config("[pools]\nmax_size = 0\nmin_size = -1")
    copy = pickle.loads(pickle.dumps(excinfo.value))
    assert type(copy) is ConfigValidationError
    assert copy.problems == excinfo.value.problems
    assert copy.source == "<string>"
    assert str(copy) == str(excinfo.value)


# --- dumping --------------------------------------------------------------------------------


def test_dump_names_unset_settings_in_comments_and_loads_back_equal() -> None:
    text = dump_config(AgentConfig())
    assert "[runtime]\n# worker_threads = (not set)\n" in text
    assert '"none"' not in text  # TOML has no null; no fake string stands for one
    assert 'update_strategy = "RollingUpdate"' in text
    assert 'strategy = "restart_transient"' in text
    assert "restart_window = 60.0" in text
    assert loads_config(text) == AgentConfig()


def test_save_config_then_load_config_round_trips(tmp_path: Path) -> None:
    config = AgentConfig(
        supervision=SupervisionSettings(
            restart_window="90s", restart_strategy=StrategyKind.REST_FOR_ONE
        ),
        pools=PoolSettings(max_lifetime=600),
        orchestration=OrchestrationConfig(
            probes=ProbeSettings(startup=ProbeConfig("/health/startup", initial_delay=2)),
        ),
    )
    path = tmp_path / "saved.toml"
    save_config(config, path)
    assert load_config(path, env={}) == config
    save_config(AgentConfig(), path)  # replaces the file
    assert load_config(path, env={}) == AgentConfig()
    assert [entry.name for entry in tmp_path.iterdir()] == ["saved.toml"]


def test_a_failed_save_leaves_no_temporary_file(tmp_path: Path) -> None:
    (tmp_path / "taken").mkdir()
    with pytest.raises(OSError):
        save_config(AgentConfig(), tmp_path / "taken")
    assert [entry.name for entry in tmp_path.iterdir()] == ["taken"]


def test_dump_config_needs_an_agent_config() -> None:
    with pytest.raises(ConfigError, match="needs an AgentConfig"):
        dump_config(SupervisionSettings())  # type: ignore[arg-type]


# --- the converter ----------------------------------------------------------------------------


@attrs.frozen
class _Message:
    """A stand-in for another layer's attrs message."""

    sender: AgentId
    task: TaskId | None
    strategy: SupervisionStrategy
    timeout: Seconds
    attempts: int = 1


def test_converter_round_trips_messages_with_ids_enums_and_durations() -> None:
    message = _Message(AgentId.new(), TaskId.new(), SupervisionStrategy.RESTART_PERMANENT, 1.5)
    raw = config_converter.unstructure(message)
    assert raw == {
        "sender": str(message.sender.uuid),
        "task": str(message.task.uuid) if message.task else None,
        "strategy": "restart_permanent",
        "timeout": 1.5,
        "attempts": 1,
    }
    assert config_converter.structure(raw, _Message) == message
    parsed = config_converter.structure({**raw, "task": None, "timeout": "2m"}, _Message)
    assert parsed.task is None
    assert parsed.timeout == 120.0


@pytest.mark.parametrize("id_cls", TYPED_IDS, ids=lambda cls: cls.__name__)
def test_converter_handles_every_typed_id(id_cls: Any) -> None:
    typed_id = id_cls.new()
    assert config_converter.unstructure(typed_id) == str(typed_id.uuid)
    assert config_converter.structure(str(typed_id.uuid), id_cls) == typed_id
    with pytest.raises(ConfigError):
        config_converter.structure("not-a-uuid", id_cls)
    with pytest.raises(ConfigError):
        config_converter.structure(7, id_cls)


@pytest.mark.parametrize(
    ("value", "annotation"),
    [(True, int), ("3", int), (3.5, int), ("1.0", float), (False, float), (1, str), (1, bool)],
)
def test_converter_primitives_are_strict(value: object, annotation: Any) -> None:
    with pytest.raises(ConfigError):
        config_converter.structure(value, annotation)


def test_converter_structures_enums_by_value_or_name() -> None:
    assert config_converter.structure("Recreate", UpdateStrategy) is UpdateStrategy.RECREATE
    assert config_converter.structure("recreate", UpdateStrategy) is UpdateStrategy.RECREATE
    assert (
        config_converter.structure("rolling_update", UpdateStrategy)
        is UpdateStrategy.ROLLING_UPDATE
    )
    assert config_converter.unstructure(StrategyKind.REST_FOR_ONE) == "rest_for_one"
    with pytest.raises(ConfigError, match="expected one of 'RollingUpdate', 'Recreate'"):
        config_converter.structure("Blue", UpdateStrategy)


def test_converter_forbids_extra_keys_in_messages() -> None:
    raw = {"sender": str(AgentId.new().uuid), "task": None, "strategy": "restart_transient"}
    with pytest.raises(cattrs.ClassValidationError) as excinfo:
        config_converter.structure({**raw, "timeout": 1.0, "extra": 1}, _Message)
    assert "extra fields found (extra)" in " ".join(cattrs.transform_error(excinfo.value))


def test_converter_structures_settings_reporting_every_problem() -> None:
    settings = config_converter.structure({"max_size": 10, "min_size": 2}, PoolSettings)
    assert settings == PoolSettings(min_size=2, max_size=10)
    with pytest.raises(ConfigValidationError) as excinfo:
        config_converter.structure({"max_size": 0, "acquire_timeout": "x"}, PoolSettings)
    assert [problem.split(":")[0] for problem in problems_of(excinfo)] == [
        "max_size",
        "acquire_timeout",
    ]
    assert config_converter.unstructure(AgentConfig())["pools"]["max_lifetime"] is None
