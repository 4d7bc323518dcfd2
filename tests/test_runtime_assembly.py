"""The runtime's assembly: pure functions from configuration to each part's options.

Each is checked field by field on a configuration whose every value differs from the
defaults (a field read from the wrong place shows), and the option records are checked
against the constructors they are spread into (a renamed parameter shows here, not as
a ``TypeError`` at start-up).
"""

from __future__ import annotations

import inspect
from typing import get_type_hints

import attrs
import trio

from mister_smith.actors import ActorSystem
from mister_smith.config import AgentConfig
from mister_smith.events import EventBus
from mister_smith.runtime import _assembly
from mister_smith.supervision import Backoff, OneForAll, RestartLimit, Supervisor
from mister_smith.tools import ToolBus
from mister_smith.types import Restart, StrategyKind


def _config() -> AgentConfig:
    config = AgentConfig()
    return attrs.evolve(
        config,
        supervision=attrs.evolve(
            config.supervision,
            restart_strategy=StrategyKind.ONE_FOR_ALL,
            max_restart_attempts=7,
            restart_window=42.0,
            escalation_timeout=3.5,
            backoff_initial=0.25,
            backoff_max=9.0,
            backoff_factor=3.0,
            backoff_jitter=0.0,
            shutdown_timeout=1.5,
            max_children_per_supervisor=11,
            heartbeat_interval=2.0,
            heartbeat_timeout=8.0,
            breaker_failure_threshold=9,
            breaker_reset_timeout=13.0,
            breaker_half_open_calls=2,
        ),
        actors=attrs.evolve(
            config.actors,
            mailbox_capacity=17,
            ask_timeout=4.0,
            dead_letter_log_size=23,
            max_agents=31,
        ),
        tools=attrs.evolve(config.tools, default_timeout=6.0, default_policy="open", max_retries=2),
        runtime=attrs.evolve(config.runtime, blocking_threads=5),
        tasks=attrs.evolve(
            config.tasks,
            retry_max_attempts=4,
            retry_base_delay=0.5,
            retry_max_delay=7.0,
            retry_factor=2.5,
        ),
    )


def test_restart_limit_and_backoff_come_from_supervision() -> None:
    settings = _config().supervision
    assert _assembly.restart_limit(settings) == RestartLimit(7, 42.0)
    assert _assembly.backoff(settings) == Backoff(initial=0.25, maximum=9.0, factor=3.0, jitter=0.0)


def test_root_supervisor_config() -> None:
    root = _assembly.root_supervisor_config(_config().supervision)
    assert root.name == "root"
    assert isinstance(root.strategy, OneForAll)
    assert (root.max_restarts, root.restart_window) == (7, 42.0)
    assert root.backoff == Backoff(initial=0.25, maximum=9.0, factor=3.0, jitter=0.0)
    assert root.escalation_timeout == 3.5
    assert root.shutdown_timeout == 1.5
    assert root.default_restart is Restart.PERMANENT
    assert root.keep_alive  # the root outlives its last child: it owns the runtime


def test_actor_system_options() -> None:
    config = _config()
    options = _assembly.actor_system_options(config)
    assert options == {
        "mailbox_capacity": 17,
        "ask_timeout": 4.0,
        "dead_letter_log_size": 23,
        "default_restart": config.supervision.strategy.restart_type,
        "restart_limit": RestartLimit(7, 42.0),
        "backoff": Backoff(initial=0.25, maximum=9.0, factor=3.0, jitter=0.0),
        "escalation_timeout": 3.5,
        "max_actors": 31,
        "max_children_per_supervisor": 11,
        "heartbeat_interval": 2.0,
        "heartbeat_timeout": 8.0,
    }


def test_tool_bus_options() -> None:
    assert _assembly.tool_bus_options(_config()) == {
        "default_timeout": 6.0,
        "default_policy": "open",
        "max_retries": 2,
        "blocking_threads": 5,
    }


def test_task_retry_policy() -> None:
    policy = _assembly.task_retry_policy(_config().tasks)
    assert (policy.max_attempts, policy.base_delay, policy.max_delay, policy.factor) == (
        4,
        0.5,
        7.0,
        2.5,
    )


def test_option_records_name_real_constructor_parameters() -> None:
    for record, constructor in (
        (_assembly.ActorSystemOptions, ActorSystem.__init__),
        (_assembly.ToolBusOptions, ToolBus.__init__),
    ):
        parameters = inspect.signature(constructor).parameters
        for key in get_type_hints(record):
            assert key in parameters, f"{record.__name__}.{key} is not a parameter"
            assert parameters[key].kind is inspect.Parameter.KEYWORD_ONLY


async def test_breaker_factory_applies_new_settings_to_live_breakers() -> None:
    settings = _assembly.BreakerSettings.of(_config().supervision)
    assert settings == _assembly.BreakerSettings(9, 13.0, 2)
    factory = _assembly.BreakerFactory(settings, EventBus())
    breaker = factory("child")
    assert breaker.failure_threshold == 9
    factory.reconfigure(_assembly.BreakerSettings(1, 2.0, 1))
    assert breaker.failure_threshold == 1
    assert factory("other").failure_threshold == 1
    live = factory.breakers()
    assert live
    assert all(b.failure_threshold == 1 for b in live)


async def test_the_root_built_from_config_runs() -> None:
    config = _assembly.root_supervisor_config(_config().supervision)
    async with Supervisor(config) as root:
        child = await root.start_child(trio.sleep_forever, name="idle")
        assert root.config is config
        assert child.restart is Restart.PERMANENT
        await root.stop()
