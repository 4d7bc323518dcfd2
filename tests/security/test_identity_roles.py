"""Roles are credentials bound at spawn, not strings a caller, a spec or a model chooses.

Attacks (issue 12, item 1): under ``restricted`` a caller's role was a plain argument, so
a self-claimed role, ``AgentSpec(role="admin")`` built by a model or a team-composition
path, all obtained tools granted to ``admin``. Here the application registers ``admin``
(so the role exists and a legitimate admin agent uses it) and every other path to it is
refused.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import attrs
import pytest
import trio

from mister_smith import (
    DEFAULT_CATALOG,
    ActorSystem,
    AgentRole,
    AgentSpec,
    DuplicateRole,
    EventBus,
    ModelResponse,
    Role,
    ScriptedModel,
    SpawnController,
    ToolBus,
    ToolCalled,
    ToolOutcome,
    ToolPermissionDenied,
    UnknownRole,
    analyze_requirements_with_model,
    create_dynamic_team,
    open_actor_system,
    spawn_agent,
    tool,
)
from mister_smith.agents import ModelRequest
from mister_smith.agents.script import (
    after_tool,
    always,
    answer_with_tool_results,
    call_tools,
    first_turn,
    rule,
)

SHUTDOWNS: list[str] = []


@tool
async def shutdown(reason: str) -> str:
    """Shut the plant down (admins only)."""
    await trio.lowlevel.checkpoint()
    SHUTDOWNS.append(reason)
    return "plant stopped"


@attrs.define
class Admin:
    """What the application set up: the admin role, held by code that spawns admins."""

    system: ActorSystem
    bus: ToolBus
    role: Role


@asynccontextmanager
async def plant() -> AsyncIterator[Admin]:
    SHUTDOWNS.clear()
    events = EventBus()
    async with open_actor_system(events=events) as system:
        bus = ToolBus(events=events, identities=system.identities)
        admin = system.identities.register_role("admin")
        bus.register_tool(shutdown, roles=["admin"])
        yield Admin(system, bus, admin)


def prober() -> ScriptedModel:
    """A model that tries the admin tool whatever it is offered, then reports."""
    return ScriptedModel(
        [
            rule(first_turn, call_tools(("shutdown", {"reason": "because I said so"}))),
            rule(after_tool("shutdown"), answer_with_tool_results("{results}")),
        ]
    )


async def test_a_caller_cannot_claim_a_role(autojump_clock: trio.abc.Clock) -> None:
    async with plant() as app:
        mallory = app.system.identities.mint("mallory")
        with pytest.raises(TypeError, match="roles"):
            await app.bus.call(  # type: ignore[call-arg]
                mallory, "shutdown", {"reason": "x"}, roles=["admin"]
            )
        with pytest.raises(ToolPermissionDenied, match="plain name"):
            await app.bus.call("admin", "shutdown", {"reason": "x"})
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            mallory.roles = frozenset({"admin"})  # type: ignore[misc]
        # Even rewriting a live identity's fields gains nothing: the authority keeps the
        # roles it minted.
        object.__setattr__(mallory, "roles", frozenset({"admin"}))
        with pytest.raises(ToolPermissionDenied, match=r"\(roles: none\) is not granted"):
            await app.bus.call(mallory, "shutdown", {"reason": "x"})
        with pytest.raises(DuplicateRole):
            app.system.identities.register_role("admin")  # no second copy of the credential
        assert SHUTDOWNS == []


async def test_an_agent_spec_naming_a_role_grants_nothing(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with plant() as app:
        offered: list[list[str]] = []

        def remember(request: ModelRequest) -> ModelResponse:
            offered.append([t.name for t in request.tools])
            return ModelResponse(text="noted")

        looker = ScriptedModel([rule(always, remember)])
        impostor = await spawn_agent(app.system, AgentSpec(role="admin"), prober(), app.bus)
        result = await impostor.ask("shut it down")
        assert result.answer.startswith("shutdown failed: ToolPermissionDenied")
        onlooker = await spawn_agent(app.system, AgentSpec(role="admin"), looker, app.bus)
        await onlooker.ask("what can you do?")
        assert offered == [[]]  # the admin tool is not even offered
        real = await spawn_agent(
            app.system, AgentSpec(role="operator"), prober(), app.bus, roles=[app.role]
        )
        assert (await real.ask("shut it down")).answer == "plant stopped"
        assert SHUTDOWNS == ["because I said so"]
        assert app.bus.events is not None
        outcomes = [e.outcome for e in app.bus.events.history(ToolCalled)]
        assert outcomes == [ToolOutcome.DENIED, ToolOutcome.OK]


async def test_spawning_with_a_role_needs_the_credential(autojump_clock: trio.abc.Clock) -> None:
    async with plant() as app:
        for roles, error in (
            (["admin"], TypeError),
            ([attrs.evolve], TypeError),
            ([ToolBus().identities.register_role("admin")], UnknownRole),
        ):
            with pytest.raises(error):
                await spawn_agent(
                    app.system,
                    AgentSpec(role="admin"),
                    prober(),
                    app.bus,
                    name="sneaky",
                    roles=roles,  # type: ignore[arg-type]
                )
            assert app.system.get("sneaky") is None  # nothing was spawned
        assert app.system.identities.statistics().live == 0


async def test_a_model_composed_team_cannot_mint_admins(autojump_clock: trio.abc.Clock) -> None:
    """The model picks an ``admin`` role from a catalog and ``customize`` relabels a
    researcher ``admin``: members still carry only the roles the application binds."""
    async with plant() as app:
        researcher = app.system.identities.register_role("researcher")
        catalog = DEFAULT_CATALOG.with_roles(
            AgentRole("admin", "runs the plant", ("admin",), {"operate"})
        )
        composer = ScriptedModel([rule(always, lambda _: ModelResponse(text='["admin"]'))])
        chosen = await analyze_requirements_with_model("stop everything", composer, catalog=catalog)
        assert [role.name for role in chosen] == ["admin"]
        controller = SpawnController(app.system, 4)
        team = await create_dynamic_team(
            "stop everything",
            controller=controller,
            model=prober(),
            tools=app.bus,
            roles=[*chosen, catalog.get("researcher")],
            customize=lambda role, spec: attrs.evolve(spec, role="admin"),
            bind_roles=[researcher],  # the ceiling the application sets
            name="t",
        )
        async with team:
            result = await team.run("stop everything", timeout=10)
        answers = [r.answer for r in result.results]
        assert len(answers) == 2
        assert all(a.startswith("shutdown failed: ToolPermissionDenied") for a in answers)
        assert SHUTDOWNS == []
        with pytest.raises(TypeError, match="a name is not a credential"):
            await create_dynamic_team(
                "stop",
                controller=controller,
                model=prober(),
                tools=app.bus,
                bind_roles=["admin"],  # type: ignore[list-item]
            )
