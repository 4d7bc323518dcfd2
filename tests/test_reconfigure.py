"""Live reconfiguration: ``RuntimeManager.reconfigure``, the ``Reload`` recovery, SIGHUP."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio

from mister_smith.actors import Actor, ActorContext
from mister_smith.config import AgentConfig, dump_config
from mister_smith.errors import ConfigError
from mister_smith.events import ConfigReloaded, SupervisionDecision
from mister_smith.runtime import FIXED_AT_OPEN, RuntimeManager
from mister_smith.supervision import Restart
from mister_smith.tools import EchoTool


class Counter(Actor):
    async def handle(self, message: Any, ctx: ActorContext) -> Any:
        if message == "boom":
            raise ValueError("boom")
        return ctx.incarnation


def evolve(config: AgentConfig, **sections: Any) -> AgentConfig:
    changes = {
        name: attrs.evolve(getattr(config, name), **fields) for name, fields in sections.items()
    }
    return attrs.evolve(config, **changes)


async def test_live_changes_apply_without_restarting_healthy_actors(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with RuntimeManager.open() as rt:
        healthy = await rt.actor_system.spawn(Counter, name="healthy")
        crashy = await rt.actor_system.spawn(Counter, name="crashy")
        new = evolve(
            rt.config,
            supervision={
                "backoff_initial": 5.0,
                "backoff_jitter": 0.0,
                "max_restart_attempts": 1,
                "breaker_failure_threshold": 9,
            },
            actors={"ask_timeout": 7.0},
            monitoring={"log_level": "error", "health_check_interval": 3.0},
            tools={"default_timeout": 2.0, "max_retries": 0},
        )
        await rt.reconfigure(new)
        assert rt.config == new
        assert await healthy.ask("x") == 1  # never restarted
        # backoff_initial 5 s from now on
        with pytest.raises(Exception, match="crashed"):
            await crashy.ask("boom")
        crashed = trio.current_time()
        assert await crashy.ask("x") == 2
        assert trio.current_time() - crashed == pytest.approx(5.0)
        # the per-actor budget is now 1 restart: the next crash stops it
        with pytest.raises(Exception, match="crashed"):
            await crashy.ask("boom")
        await trio.sleep(1)
        assert not crashy.is_alive
        assert rt.actor_system.ask_timeout == 7.0
        assert rt.supervision.max_restarts == 1
        assert logging.getLogger("mister_smith").level == logging.ERROR
        assert rt.health.interval == 3.0
        rt.tool_bus.register_tool(EchoTool(), policy="open")
        assert rt.tool_bus.list_tools()[0].timeout == 2.0
        [reloaded] = rt.events.history(ConfigReloaded)
        assert reloaded.trigger == "reconfigure"
        assert "supervision.backoff_initial" in reloaded.changed
        assert "actors.ask_timeout" in reloaded.changed
        assert list(reloaded.changed) == sorted(reloaded.changed)
    logging.getLogger("mister_smith").setLevel(logging.NOTSET)


async def test_breaker_thresholds_change_on_live_breakers(autojump_clock: trio.abc.Clock) -> None:
    async def flaky() -> None:
        await trio.sleep(1)
        raise ConnectionError("down")

    async with RuntimeManager.open() as rt:
        await rt.supervision.start_child(flaky, name="flaky", restart=Restart.PERMANENT)
        await trio.sleep(1.5)
        [breaker] = rt._breakers.breakers()
        assert breaker.failure_threshold == 5
        await rt.reconfigure(
            evolve(
                rt.config,
                supervision={"breaker_failure_threshold": 2, "breaker_reset_timeout": 9.0},
            )
        )
        assert (breaker.failure_threshold, breaker.reset_timeout) == (2, 9.0)


async def test_fields_fixed_at_open_are_refused_and_nothing_is_applied(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with RuntimeManager.open() as rt:
        before = rt.config
        bad = evolve(
            before,
            runtime={"blocking_threads": 4},
            monitoring={"http_port": 1234},
            actors={"ask_timeout": 1.0},  # live, but the whole change is refused
        )
        with pytest.raises(ConfigError) as caught:
            await rt.reconfigure(bad)
        text = str(caught.value)
        assert "runtime.blocking_threads" in text
        assert "monitoring.http_port" in text
        assert "actors.ask_timeout" not in text
        assert rt.config is before
        assert rt.actor_system.ask_timeout == before.actors.ask_timeout
        assert rt.events.history(ConfigReloaded) == []
        with pytest.raises(ConfigError, match="AgentConfig"):
            await rt.reconfigure({"actors": {}})  # type: ignore[arg-type]
    assert "tasks.queue_size" in FIXED_AT_OPEN


async def test_reconfigure_with_nothing_changed_still_announces(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with RuntimeManager.open() as rt:
        await rt.reconfigure(rt.config)
        [event] = rt.events.history(ConfigReloaded)
        assert event.changed == ()


async def test_reload_recovery_rereads_the_configuration(autojump_clock: trio.abc.Clock) -> None:
    loads: list[float] = []
    current = AgentConfig()

    def loader() -> AgentConfig:
        loads.append(1.0)  # (runs in a worker thread: no Trio clock here)
        return evolve(current, actors={"ask_timeout": 12.0})

    async def reads_config() -> None:
        await trio.sleep(1)
        if not loads:
            raise ConfigError("stale setting")  # recovery: Reload
        await trio.sleep_forever()

    async with RuntimeManager.open(current, config_loader=loader) as rt:
        await rt.supervision.start_child(reads_config, name="reader", restart=Restart.PERMANENT)
        await trio.sleep(1.5)  # it failed at 1 and the reload started
        # The loader runs in a worker thread (file I/O), which the virtual clock does
        # not wait for: stay runnable until it is done.
        while not rt.events.history(ConfigReloaded):
            await trio.sleep(0)
        await trio.sleep(1)
        assert loads == [1.0]
        assert rt.config.actors.ask_timeout == 12.0
        [event] = rt.events.history(ConfigReloaded)
        assert (event.trigger, event.changed) == ("reload", ("actors.ask_timeout",))
        decision = rt.events.history(SupervisionDecision, lambda e: e.child == "reader")
        assert [d.action.value for d in decision] == ["reload"]
        assert rt.supervision.child("reader").restarts == 1


def test_sighup_rereads_the_config_file(tmp_path: Path) -> None:
    config_file = tmp_path / "ms.toml"
    config_file.write_text("[actors]\nask_timeout = 5.0\n")
    script = tmp_path / "serve.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import sys
            import trio
            from mister_smith.events import ConfigReloaded
            from mister_smith.runtime import run

            async def main(runtime):
                print("ready", runtime.config.actors.ask_timeout, flush=True)
                async with runtime.events.subscribe(ConfigReloaded) as stream:
                    for _ in range(2):
                        event = await stream.receive()
                        print("reloaded", event.trigger, ",".join(event.changed),
                              runtime.config.actors.ask_timeout, flush=True)
                return "done"

            print(run(main, config_file={str(config_file)!r}))
            """
        )
    )
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with subprocess.Popen(
        [sys.executable, str(script)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    ) as process:
        assert process.stdout is not None
        assert process.stdout.readline().split() == ["ready", "5.0"]
        replace(config_file, "[actors]\nask_timeout = 8.0\n")
        process.send_signal(signal.SIGHUP)
        assert process.stdout.readline().split() == [
            "reloaded",
            "signal",
            "actors.ask_timeout",
            "8.0",
        ]
        # A file a running runtime cannot apply is refused; the runtime keeps its config.
        replace(config_file, "[actors]\nask_timeout = 8.0\n[runtime]\nblocking_threads = 3\n")
        process.send_signal(signal.SIGHUP)
        time.sleep(1.0)  # let it read that file before the next one replaces it
        replace(config_file, "[actors]\nask_timeout = 9.0\n")
        process.send_signal(signal.SIGHUP)
        assert process.stdout.readline().split() == [
            "reloaded",
            "signal",
            "actors.ask_timeout",
            "9.0",
        ]
        # Read through the text wrappers: ``communicate`` reads the raw pipes and would
        # miss a "done" line readline() already buffered with the last reload line.
        out = process.stdout.read()
        assert process.stderr is not None
        err = process.stderr.read()
        process.wait(timeout=30)
    assert process.returncode == 0, err
    assert out.strip() == "done"
    assert "SIGHUP reload refused" in err
    assert "runtime.blocking_threads" in err


def replace(path: Path, text: str) -> None:
    """Write ``path`` atomically, so a reader never sees it half written."""
    temporary = path.with_suffix(".tmp")
    temporary.write_text(text)
    os.replace(temporary, path)


def test_dump_of_a_reconfigured_config_round_trips(tmp_path: Path) -> None:
    new = evolve(AgentConfig(), supervision={"backoff_initial": 2.0})
    assert "backoff_initial = 2.0" in dump_config(new)
