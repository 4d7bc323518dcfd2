"""Deny by default: the bus, the runtime and `mister-smith run` grant nothing implicitly.

Attacks (issue 12, item 1): ``ToolBus()`` and the runtime's bus were open, so any caller
could call any tool; ``register_tool(..., roles=[...])`` was silently ignored under
``open``; ``mister-smith run`` registered ``WriteFileTool`` open to all.
"""

from __future__ import annotations

import io
import logging
from pathlib import Path
from typing import Any

import pytest
import trio

from mister_smith import (
    Actor,
    ActorContext,
    ActorCrashed,
    AgentConfig,
    EchoTool,
    InvalidGrant,
    RuntimeManager,
    ToolBus,
    ToolCalled,
    ToolOutcome,
    ToolPermissionDenied,
    ToolSettings,
    UnknownRole,
)
from mister_smith.cli._display import Display
from mister_smith.cli._run import RunOptions, general_recipe
from mister_smith.supervision import snapshot


def denied_events(bus: ToolBus) -> list[ToolCalled]:
    assert bus.events is not None
    return [e for e in bus.events.history(ToolCalled) if e.outcome is ToolOutcome.DENIED]


async def test_a_new_bus_denies_every_caller_it_was_not_told_about() -> None:
    bus = ToolBus()
    bus.register_tool(EchoTool())
    stranger = bus.identities.mint("stranger")
    for caller in ("anyone", "root", stranger):
        with pytest.raises(ToolPermissionDenied, match="may not call tool 'echo'"):
            await bus.call(caller, "echo", {"message": "hi"})
    assert bus.list_tools()[0].policy == "deny"
    assert bus.list_available_tools("anyone") == []
    assert bus.list_available_tools(stranger) == []
    stats = bus.statistics()
    assert (stats.calls, stats.tools["echo"].denied, stats.tools["echo"].succeeded) == (3, 3, 0)


class CallsEcho(Actor):
    """An actor that calls the echo tool as itself."""

    def __init__(self, bus: ToolBus) -> None:
        self.bus = bus

    async def handle(self, message: Any, ctx: ActorContext) -> Any:
        return await self.bus.call(ctx.identity, "echo", {"message": message})


async def test_the_runtime_bus_denies_by_default_and_grants_by_actor(
    autojump_clock: trio.abc.Clock,
) -> None:
    assert ToolSettings().default_policy == "deny"
    async with RuntimeManager.open() as runtime:
        bus = runtime.tool_bus
        assert bus.default_policy == "deny"
        assert bus.identities is runtime.identities is runtime.actor_system.identities
        bus.register_tool(EchoTool())
        ref = await runtime.actor_system.spawn(CallsEcho, bus, name="caller")
        with pytest.raises(ActorCrashed) as crashed:
            await ref.ask("hi")
        assert isinstance(crashed.value.__cause__, ToolPermissionDenied)
        assert "identity 'caller' (roles: none) is not granted it" in str(crashed.value.__cause__)
        bus.grant("echo", callers=[ref])  # the restarted actor keeps its identity
        assert await ref.ask("hi") == {"message": "hi"}
        [denial] = denied_events(bus)
        assert (denial.caller, denial.tool) == ("caller", "echo")
        assert denial.error is not None
        assert denial.error.startswith("ToolPermissionDenied: caller may not call tool 'echo'")


async def test_role_grants_apply_on_an_open_bus() -> None:
    """``register_tool(..., roles=[...])`` is honoured whatever the default policy."""
    bus = ToolBus(default_policy="open")
    admin = bus.identities.register_role("admin")
    spec = bus.register_tool(EchoTool(), roles=["admin"])
    assert spec.policy == "deny"
    with pytest.raises(ToolPermissionDenied):
        await bus.call("guest", "echo", {"message": "x"})
    with pytest.raises(ToolPermissionDenied):
        await bus.call(bus.identities.mint("guest"), "echo", {"message": "x"})
    holder = bus.identities.mint("ops", roles=[admin])
    assert await bus.call(holder, "echo", {"message": "x"}) == {"message": "x"}


async def test_grants_that_cannot_apply_are_refused_when_made() -> None:
    bus = ToolBus()
    reader = bus.identities.register_role("reader")
    alice = bus.identities.mint("alice", roles=[reader])
    with pytest.raises(InvalidGrant, match="grants cannot apply to an open tool"):
        bus.register_tool(EchoTool(), policy="open", roles=[reader])
    with pytest.raises(InvalidGrant, match="grants cannot apply to an open tool"):
        bus.register_tool(EchoTool(), policy="open", callers=[alice])
    with pytest.raises(UnknownRole, match="role 'admin' is not registered"):
        bus.register_tool(EchoTool(), roles=["admin"])
    with pytest.raises(InvalidGrant, match="'alice' is a name, and a name is not a credential"):
        bus.register_tool(EchoTool(), callers=["alice"])  # type: ignore[list-item]
    with pytest.raises(InvalidGrant, match="must be a list"):
        bus.register_tool(EchoTool(), roles="reader")
    assert bus.list_tools() == []  # nothing half-registered
    bus.register_tool(EchoTool(), policy="open")
    with pytest.raises(InvalidGrant, match="is open"):
        bus.grant("echo", roles=[reader])
    bus.set_policy("echo", "deny")
    bus.grant("echo", roles=[reader])
    with pytest.raises(InvalidGrant, match="revoke them before opening it"):
        bus.set_policy("echo", "open")
    bus.identities.revoke(alice)
    with pytest.raises(InvalidGrant, match="revoked"):
        bus.grant("echo", callers=[alice])
    foreign = ToolBus().identities.mint("visitor")
    with pytest.raises(InvalidGrant, match=r"minted by .*share one IdentityAuthority"):
        bus.grant("echo", callers=[foreign])


async def test_open_is_explicit_and_logged_loudly_once(
    caplog: pytest.LogCaptureFixture, autojump_clock: trio.abc.Clock
) -> None:
    config = AgentConfig(tools=ToolSettings(default_policy="open"))
    with caplog.at_level(logging.WARNING, logger="mister_smith"):
        async with RuntimeManager.open(config) as runtime:
            runtime.tool_bus.register_tool(EchoTool())
            for _ in range(3):
                await runtime.tool_bus.call("anyone", "echo", {"message": "x"})
    warnings = [r for r in caplog.records if "default_policy is 'open'" in r.getMessage()]
    assert len(warnings) == 1
    assert warnings[0].levelno == logging.WARNING
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="mister_smith"):
        async with RuntimeManager.open():
            pass
    assert not [r for r in caplog.records if "open" in r.getMessage()]


@pytest.mark.parametrize("allow_write", [False, True])
async def test_run_grants_the_file_tools_to_the_team_only(
    allow_write: bool,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    autojump_clock: trio.abc.Clock,
) -> None:
    """``mister-smith run`` never registers a file tool (``write_file`` above all) open."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-fake-for-tests")
    options = RunOptions(
        "Write a short report about this folder",
        model="openai",
        workspace=tmp_path,
        allow_write=allow_write,
    )
    async with RuntimeManager.open() as runtime:
        display = Display(
            io.StringIO(),
            color=False,
            live=False,
            tree=lambda: snapshot(runtime.supervision),
            started=0.0,
        )
        recipe = general_recipe(runtime, display, options)
        try:
            bus = runtime.tool_bus
            specs = {spec.name: spec.policy for spec in bus.list_tools()}
            expected = {"list_directory", "read_file"} | ({"write_file"} if allow_write else set())
            assert specs == dict.fromkeys(expected, "deny")
            writer = runtime.identities.mint("member", roles=recipe.bind_roles)
            outsider = runtime.identities.mint("outsider")
            assert {s.name for s in bus.list_available_tools(writer)} == expected
            assert bus.list_available_tools(outsider) == []
            assert bus.list_available_tools("writer") == []
            if allow_write:
                args = {"path": "pwned.txt", "content": "x"}
                with pytest.raises(ToolPermissionDenied):
                    await bus.call("writer", "write_file", args)
                with pytest.raises(ToolPermissionDenied):
                    await bus.call(outsider, "write_file", args)
                assert not (tmp_path / "pwned.txt").exists()
        finally:
            assert recipe.close is not None
            await recipe.close()
