"""Dynamic teams: requirements analysis, coordination modes, bounded spawning under a
domain supervisor, delegation through agent tools."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import attrs
import pytest
import trio

from mister_smith.actors import ActorSystem, SpawnController, open_actor_system
from mister_smith.agents import (
    DEFAULT_CATALOG,
    AgentRole,
    CoordinationMode,
    ModelRequest,
    ModelResponse,
    ScriptedModel,
    TeamError,
    analyze_requirements,
    analyze_requirements_with_model,
    choose_coordination,
    create_dynamic_team,
)
from mister_smith.agents.script import after_tool, answer, call_tools, first_turn, rule
from mister_smith.errors import PoolExhausted, TaskTimeout
from mister_smith.events import EventBus
from mister_smith.supervision import open_supervision_tree
from mister_smith.tools import ToolBus


def names(roles: list[AgentRole]) -> list[str]:
    return [role.name for role in roles]


@pytest.mark.parametrize(
    ("task", "expected"),
    [
        ("Write a short report on the release notes", ["writer"]),
        ("Research the market and summarize it", ["researcher", "writer"]),
        ("Survey the source tree and count lines per package", ["surveyor"]),
        ("Implement the parser, then review it", ["engineer", "reviewer"]),
        (
            "Coordinate a survey of the source tree and write a report",
            ["coordinator", "surveyor", "writer"],
        ),
        ("Hello there", ["generalist"]),
    ],
)
def test_analyze_requirements_picks_only_what_the_task_needs(
    task: str, expected: list[str]
) -> None:
    assert names(analyze_requirements(task)) == expected


def test_no_fixed_team() -> None:
    sizes = {len(analyze_requirements(t)) for t in ("report", "research and report", "hi")}
    assert sizes == {1, 2}


def test_choose_coordination() -> None:
    catalog = DEFAULT_CATALOG
    lead = [catalog.get("coordinator"), catalog.get("surveyor")]
    assert choose_coordination("anything", lead) is CoordinationMode.LEAD
    pair = [catalog.get("researcher"), catalog.get("writer")]
    assert choose_coordination("summarize each of the files", pair) is CoordinationMode.PARALLEL
    assert choose_coordination("research then write", pair) is CoordinationMode.PIPELINE
    assert choose_coordination("for each file", pair[:1]) is CoordinationMode.PIPELINE


def test_catalog_with_roles_replaces_and_adds() -> None:
    custom = DEFAULT_CATALOG.with_roles(
        AgentRole("writer", "writes haiku", (r"haiku",), {"write"}),
        AgentRole("translator", "translates", (r"translat",)),
    )
    assert custom.get("writer").description == "writes haiku"
    assert custom.names()[-2:] == ["translator", "generalist"]
    assert names(analyze_requirements("translate a haiku", catalog=custom)) == [
        "writer",
        "translator",
    ]
    with pytest.raises(KeyError):
        custom.get("nobody")
    with pytest.raises(ValueError):
        type(custom)((custom.get("writer"), custom.get("writer")), custom.fallback)


async def test_model_backed_analysis_with_fallback() -> None:
    model = ScriptedModel(
        [
            rule(lambda r: "poem" in r.messages[-1].content, answer('["writer", "nobody"]')),
            rule(first_turn, answer("I would rather not say")),
        ]
    )
    assert names(await analyze_requirements_with_model("a poem", model)) == ["writer"]
    fallback = await analyze_requirements_with_model("research it", model)
    assert names(fallback) == ["researcher"]


def echo_role_model(role: AgentRole) -> ScriptedModel:
    """Each member answers with its role and the inputs it was given."""

    def respond(request: ModelRequest) -> ModelResponse:
        inputs = [
            m.content.split("\n", 1)[1]
            for m in request.conversation()
            if m.role.value == "user" and m.content.startswith("Input from")
        ]
        task = request.messages[-1].content
        return ModelResponse(text=f"{role.name}({task}{'; ' if inputs else ''}{'+'.join(inputs)})")

    return ScriptedModel([rule(first_turn, respond)], latency=1.0)


@asynccontextmanager
async def actor_world(max_agents: int = 10) -> AsyncIterator[tuple[ActorSystem, SpawnController]]:
    bus = EventBus()
    async with open_actor_system(events=bus, ask_timeout=60) as system:
        controller = SpawnController(system, max_agents)
        yield system, controller


async def test_pipeline_team_passes_each_answer_on(autojump_clock: trio.abc.Clock) -> None:
    async with actor_world() as (system, controller):
        team = await create_dynamic_team(
            "Research the topic and write a summary",
            controller=controller,
            model=echo_role_model,
            name="p",
        )
        async with team:
            assert team.mode is CoordinationMode.PIPELINE
            assert team.roles == ["researcher", "writer"]
            assert controller.active == 2
            tree = team.snapshot()
            assert tree.name == "team-p"
            assert [n.name for n in tree.children] == ["p.researcher", "p.writer"]
            start = trio.current_time()
            result = await team.run("topic X")
            assert trio.current_time() - start == 2.0
        assert result.answer == "writer(topic X; researcher(topic X))"
        assert [r.agent for r in result.results] == ["p.researcher", "p.writer"]
        assert result.usage.calls == 2
        assert controller.active == 0
        assert system.supervisor.children() == []


async def test_parallel_team_fans_out_and_merges(autojump_clock: trio.abc.Clock) -> None:
    async with actor_world() as (_, controller):
        team = await create_dynamic_team(
            "Research each of the parts and summarize",
            controller=controller,
            model=echo_role_model,
            replicas={"researcher": 2},
            split=lambda task: ["a", "b", "c", "d"],
            name="f",
        )
        async with team:
            assert team.mode is CoordinationMode.PARALLEL
            assert [m.name for m in team.workers] == ["f.researcher-1", "f.researcher-2"]
            assert team.merger is not None
            start = trio.current_time()
            result = await team.run("the whole")
            assert trio.current_time() - start == 3.0  # 2 rounds of 2 workers, then merge
        assert result.answer == (
            "writer(the whole; researcher(a)+researcher(b)+researcher(c)+researcher(d))"
        )


async def test_parallel_without_merger_joins(autojump_clock: trio.abc.Clock) -> None:
    async with actor_world() as (_, controller):
        researcher = DEFAULT_CATALOG.get("researcher")
        async with await create_dynamic_team(
            "x",
            controller=controller,
            model=echo_role_model,
            roles=[researcher, attrs.evolve(researcher, name="analyst")],
            mode=CoordinationMode.PARALLEL,
            name="j",
        ) as team:
            result = await team.run("q")
    assert (
        result.answer
        == "## j.researcher (researcher)\nresearcher(q)\n\n## j.analyst (analyst)\nanalyst(q)"
    )


async def test_lead_delegates_through_agent_tools(autojump_clock: trio.abc.Clock) -> None:
    def lead_model(role: AgentRole) -> ScriptedModel:
        if role.name != "coordinator":
            return echo_role_model(role)
        return ScriptedModel(
            [
                rule(
                    first_turn,
                    call_tools(
                        ("ask_surveyor", {"message": "part one"}),
                        ("ask_writer", {"message": "part two"}),
                    ),
                ),
                rule(
                    after_tool(),
                    lambda r: ModelResponse(
                        text=" & ".join(m.content for m in r.tool_results_since_last_assistant())
                    ),
                ),
            ]
        )

    bus = EventBus()
    async with open_actor_system(events=bus) as system:
        tools = ToolBus(events=bus, identities=system.identities)  # deny by default
        controller = SpawnController(system, 5)
        team = await create_dynamic_team(
            "Coordinate a survey and write a report",
            controller=controller,
            model=lead_model,
            tools=tools,
            name="l",
        )
        async with team:
            assert team.mode is CoordinationMode.LEAD
            assert team.lead.name == "l.coordinator"
            lead = system.identities.identity_of_actor(team.lead.ref.actor_id)
            assert lead is not None
            assert sorted(t.name for t in tools.list_available_tools(lead)) == [
                "ask_surveyor",
                "ask_writer",
            ]
            writer = system.identities.identity_of_actor(team.members[-1].ref.actor_id)
            assert writer is not None
            assert writer.name == "l.writer"
            assert tools.list_available_tools(writer) == []
            assert tools.list_available_tools("l.coordinator") == []  # a name is nobody
            start = trio.current_time()
            result = await team.run("go", timeout=10)
            assert trio.current_time() - start == 1.0  # the delegates ran concurrently
        assert result.answer == "surveyor(part one) & writer(part two)"
        assert tools.list_tools() == []


async def test_team_deadline(autojump_clock: trio.abc.Clock) -> None:
    async with (
        actor_world() as (_, controller),
        await create_dynamic_team(
            "research and summarize", controller=controller, model=echo_role_model
        ) as team,
    ):
        with pytest.raises(TaskTimeout):
            await team.run("slowly", timeout=1.5)


async def test_spawn_bound_is_respected_and_cleaned_up(autojump_clock: trio.abc.Clock) -> None:
    async with actor_world(max_agents=2) as (system, controller):
        with pytest.raises(PoolExhausted):
            await create_dynamic_team(
                "Research, review and write a report",
                controller=controller,
                model=echo_role_model,
            )
        assert controller.active == 0
        assert system.supervisor.children() == []


async def test_a_crashed_member_is_asked_again(autojump_clock: trio.abc.Clock) -> None:
    crashes = [1]

    def fragile(request: ModelRequest) -> ModelResponse:
        if crashes:
            crashes.pop()
            raise RuntimeError("transient model failure")
        return ModelResponse(text="recovered")

    async with actor_world() as (_, controller):
        async with await create_dynamic_team(
            "write it",
            controller=controller,
            model=ScriptedModel([rule(first_turn, fragile)]),
            retries=1,
        ) as team:
            result = await team.run("now")
            assert result.answer == "recovered"
            assert team.members[0].ref.statistics().restarts == 1
        async with await create_dynamic_team(
            "write it",
            controller=controller,
            model=ScriptedModel([rule(first_turn, fragile)]),
            retries=0,
        ) as team:
            crashes.append(1)
            with pytest.raises(TeamError, match="transient model failure"):
                await team.run("now")


async def test_team_under_a_supervision_tree(autojump_clock: trio.abc.Clock) -> None:
    async with open_supervision_tree() as tree, open_actor_system(events=tree.events) as system:
        controller = SpawnController(system, 4)
        async with await create_dynamic_team(
            "summarize", controller=controller, model=echo_role_model, supervisor=tree, name="t"
        ) as team:
            assert "team-t" in tree.domains()
            assert (await team.run("x")).answer == "writer(x)"
        await tree.root.stop()
