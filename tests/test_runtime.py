"""RuntimeManager: wiring, settings taking effect, graceful shutdown, root escalation."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio

import mister_smith
from mister_smith import prelude
from mister_smith.actors import Actor, ActorContext
from mister_smith.config import (
    ActorSettings,
    AgentConfig,
    MonitoringSettings,
    RuntimeSettings,
    SupervisionSettings,
)
from mister_smith.errors import (
    EscalatedError,
    RecoveryStrategy,
    ResourceError,
    RestartIntensityExceeded,
)
from mister_smith.events import AgentStopped, DeadLetter, SupervisorStopped
from mister_smith.runtime import RuntimeConfig, RuntimeManager, run
from mister_smith.supervision import Restart, snapshot


class Echo(Actor):
    async def handle(self, message: Any, ctx: ActorContext) -> Any:
        if message == "crash":
            raise ValueError("crash requested")
        if isinstance(message, float):
            await trio.sleep(message)
        return message


async def test_runtime_wires_the_components(autojump_clock: trio.abc.Clock) -> None:
    async with RuntimeManager.open() as runtime:
        assert runtime.config == AgentConfig()
        assert runtime.supervision.state == "running"
        assert [c.name for c in runtime.supervision.children()] == [
            "persistence",
            "actors",
            "health",
            "tasks",
        ]
        assert runtime.actor_system.supervisor.name == "actors"
        assert runtime.tool_bus.events is runtime.events
        assert runtime.blocking_limiter.total_tokens == 512
        ref = await runtime.actor_system.spawn(Echo, name="echo")
        assert await ref.ask("hi") == "hi"
        tree = snapshot(runtime.supervision)
        assert [node.name for node in tree.walk()] == [
            "root",
            "persistence",
            "actors",
            "echo",
            "health",
            "tasks",
        ]
        stats = runtime.statistics()
        assert stats.actors.live_actors == 1
        assert stats.supervision.name == "root"
        assert stats.tasks is not None
    assert runtime.supervision.state == "stopped"
    assert not ref.is_alive


async def test_settings_take_effect(autojump_clock: trio.abc.Clock) -> None:
    config = AgentConfig(
        runtime=RuntimeSettings(blocking_threads=3, thread_stack_size=4 * 1024 * 1024),
        actors=ActorSettings(mailbox_capacity=2, ask_timeout=5.0),
    )
    previous = threading.stack_size()
    try:
        async with RuntimeManager.open(config) as runtime:
            assert threading.stack_size() == 4 * 1024 * 1024
            assert runtime.blocking_limiter.total_tokens == 3
            ref = await runtime.actor_system.spawn(Echo)
            assert ref.statistics().capacity == 2
            started = trio.current_time()
            await ref.tell(100.0)  # busy for 100 s
            with pytest.raises(TimeoutError):
                await ref.ask("late")
            assert trio.current_time() - started == pytest.approx(5.0)
    finally:
        threading.stack_size(previous)


async def test_graceful_shutdown_dead_letters_queued_messages(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with RuntimeManager.open() as runtime:
        ref = await runtime.actor_system.spawn(Echo, name="busy")
        await ref.tell(10.0)
        for i in range(3):
            await ref.tell(i)
        await trio.sleep(1)
        await runtime.graceful_shutdown(timeout=2)
    letters = runtime.events.history(DeadLetter)
    assert [letter.message for letter in letters] == [10.0, 0, 1, 2]
    stats = runtime.actor_system.statistics()
    assert stats.accepted == stats.handled + stats.dead_lettered == 4
    assert [e.name for e in runtime.events.history(AgentStopped)] == ["busy"]
    assert {e.supervisor for e in runtime.events.history(SupervisorStopped)} >= {"root"}


async def test_root_escalation_ends_in_orderly_shutdown_with_cause(
    autojump_clock: trio.abc.Clock,
) -> None:
    # Repeated crashes of an ordinary actor only stop that actor; the root gives up
    # when a failure climbs to it more often than its intensity allows: here an actor
    # that asks for escalation makes the actors domain give up twice.
    config = AgentConfig(supervision=SupervisionSettings(max_restart_attempts=1))
    with pytest.raises(RestartIntensityExceeded) as caught:
        async with RuntimeManager.open(config) as runtime:
            bystander = await runtime.actor_system.spawn(Echo, name="bystander")
            crasher = await runtime.actor_system.spawn(
                Echo, name="crasher", recovery=RecoveryStrategy.Escalate()
            )
            for _ in range(2):
                await crasher.tell("crash")
                await trio.sleep(1)
            await trio.sleep_forever()  # the escalation ends the block
    assert "supervisor 'root' exceeded 1 restarts" in str(caught.value)
    assert "ValueError: crash requested" in str(caught.value)
    domain_failure = caught.value.__cause__
    assert isinstance(domain_failure, EscalatedError)
    assert domain_failure.child == "crasher"
    assert not bystander.is_alive
    stops = [e.supervisor for e in runtime.events.history(SupervisorStopped)]
    assert stops[:1] == ["actors"]
    assert stops[-1] == "root"


async def test_memory_watchdog_raises_a_resource_error_through_supervision(
    autojump_clock: trio.abc.Clock,
) -> None:
    config = AgentConfig(runtime=RuntimeSettings(max_memory=1024))
    with pytest.raises(EscalatedError) as caught:
        async with RuntimeManager.open(config):
            await trio.sleep_forever()
    assert isinstance(caught.value.__cause__, ResourceError)
    assert "max_memory" in str(caught.value.__cause__)


def test_run_returns_the_result() -> None:
    async def main(runtime: RuntimeManager) -> str:
        ref = await runtime.actor_system.spawn(Echo)
        return str(await ref.ask("done"))

    assert run(main, handle_signals=False) == "done"


def test_sigterm_shuts_the_runtime_down_gracefully(tmp_path: Path) -> None:
    script = tmp_path / "serve.py"
    script.write_text(
        textwrap.dedent(
            """
            import sys
            import trio
            from mister_smith import run
            from mister_smith.events import SupervisorStopped

            async def main(runtime):
                runtime.events.add_handler(
                    SupervisorStopped, lambda e: print("stopped", e.supervisor, flush=True)
                )
                print("ready", flush=True)
                await trio.sleep_forever()

            result = run(main)
            print("result", result, flush=True)
            """
        )
    )
    process = subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, text=True, env=dict(os.environ)
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "ready"
    process.send_signal(signal.SIGTERM)
    out, _ = process.communicate(timeout=30)
    assert process.returncode == 0
    assert "stopped root" in out
    assert "result None" in out


def test_runtime_config_is_agent_config_and_prelude_exports() -> None:
    assert RuntimeConfig is AgentConfig
    for name in (
        "RuntimeManager",
        "RuntimeConfig",
        "Actor",
        "ActorSystem",
        "ActorRef",
        "ToolBus",
        "Tool",
        "ToolSchema",
        "TaskExecutor",
        "StreamProcessor",
        "AsyncTask",
        "AgentId",
        "MisterSmithError",
    ):
        assert hasattr(prelude, name), name
        assert name in prelude.__all__
    assert mister_smith.RuntimeManager is RuntimeManager
    assert attrs.has(AgentConfig)
    assert Restart.TRANSIENT is mister_smith.Restart.TRANSIENT


async def test_monitoring_endpoints_over_loopback() -> None:
    httpx = pytest.importorskip("httpx")
    config = AgentConfig(
        monitoring=MonitoringSettings(http_port=0, health_check_interval=0.05),
    )
    async with RuntimeManager.open(config, serve_http=True) as runtime:
        assert runtime.http_port is not None
        ref = await runtime.actor_system.spawn(Echo, name="echo")
        await ref.ask("warm up")
        base = f"http://127.0.0.1:{runtime.http_port}"
        async with httpx.AsyncClient(base_url=base) as client:
            live = await client.get("/health/live")
            assert live.status_code == 200
            assert live.json()["status"] == "healthy"
            with trio.fail_after(5):
                while (await client.get("/health/ready")).status_code != 200:
                    await trio.sleep(0.05)
            metrics = await client.get("/metrics")
            assert metrics.status_code == 200
            assert metrics.headers["content-type"].startswith("text/plain")
            assert "mister_smith_" in metrics.text
            await runtime.graceful_shutdown(timeout=5)
