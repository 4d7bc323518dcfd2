"""``mister-smith demo``: a supervised agent team surveys this package's own source tree
while faults are injected, with live progress and a closing summary."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TextIO

import attrs

from ..agents import (
    DEFAULT_CATALOG,
    AgentRole,
    AgentSpec,
    ContextSettings,
    HttpModel,
    Model,
    analyze_requirements,
    choose_coordination,
)
from ..config import AgentConfig
from ..runtime import RuntimeManager
from ..tools import ListDirectoryTool, ReadFileTool, Workspace
from ._display import Display
from ._faults import CrashingModel, FaultPlan, FaultyTool
from ._session import TeamRecipe, http_model, run_team_session
from ._survey import LIST_TOOL, READ_TOOL, SURVEY_TASK, survey_model, survey_roles

PACKAGE_ROOT = Path(__file__).resolve().parent.parent
"""The mister_smith package directory: the demo's real input."""


@attrs.frozen
class DemoOptions:
    """How the demo runs.

    Attributes:
        model: ``"scripted"`` (embedded, no network) or ``"openai"``/``"anthropic"``.
        color: ANSI colours.
        live: Redraw the tree and bars in place.
        workspace: The directory surveyed (default: the mister_smith package).
        timeout: Seconds the team gets for the task.
        hang_timeout: Deadline of the file-reading tool (the injected hang hits it).
        latency: Seconds each embedded model turn takes (so progress is visible).
        faults: Inject the crash, the hang and the flaky reads.
        surveyors: How many surveyors the team gets.
    """

    model: str = "scripted"
    color: bool = False
    live: bool = False
    workspace: Path = PACKAGE_ROOT
    timeout: float = 45.0
    hang_timeout: float = 0.5
    latency: float = 0.04
    faults: bool = True
    surveyors: int = 2


def demo_config(base: AgentConfig | None = None) -> AgentConfig:
    """Embedded defaults for the demo: deny-by-default tools and short waits.

    Tools deny by default (each is granted to the roles that need it, even when the
    given configuration says ``open``), agent tools time out after 20 s, supervisors
    back off 50 ms before a restart and give each child 2 s to stop.
    """
    config = AgentConfig() if base is None else base
    return attrs.evolve(
        config,
        tools=attrs.evolve(config.tools, default_policy="deny", default_timeout=20.0),
        supervision=attrs.evolve(config.supervision, backoff_initial=0.05, shutdown_timeout=2.0),
    )


def demo_fault_plan() -> FaultPlan:
    """The 4th read hangs; the 2nd, 11th and 23rd fail."""
    return FaultPlan(hang_on={4}, fail_on={2, 11, 23})


def member_spec(role: AgentRole, spec: AgentSpec, *, embedded: bool = True) -> AgentSpec:
    """The survey members' limits.

    With the embedded model, surveyors get a small window (10 messages, so folding into
    the summary shows) with room for whole files. The coordinator's window holds a round
    of one delegation per package plus its results, and a real model, which may read
    many files in one turn, gets that larger window everywhere.
    """
    messages = 10 if embedded and "coordinate" not in role.capabilities else 64
    return attrs.evolve(
        spec,
        stream_events=True,  # the bars show what each model is writing as it streams
        max_parallel_tools=24,
        context=ContextSettings(
            max_messages=messages, max_tokens=64_000, max_message_tokens=24_000
        ),
    )


def survey_recipe(
    runtime: RuntimeManager,
    display: Display,
    *,
    workspace: Path,
    model: str,
    latency: float,
    surveyors: int,
    faults: bool,
    hang_timeout: float,
    task: str = SURVEY_TASK,
) -> TeamRecipe:
    """Register the workspace tools (with faults if asked) and plan the survey team."""
    catalog = DEFAULT_CATALOG.with_roles(*survey_roles())
    analysed = analyze_requirements(task, catalog=catalog)
    roles = analysed
    note = ""
    if [r.name for r in roles] != ["coordinator", "surveyor", "writer"] and model == "scripted":
        # the embedded model knows one way to survey: a coordinator delegating packages
        roles = survey_roles()
        note = " (the embedded model surveys with a coordinator, surveyors and a writer)"
    mode = choose_coordination(task, roles)
    composition = f"{mode.value} mode: " + ", ".join(
        f"{r.name} x{surveyors}" if r.name == "surveyor" and surveyors > 1 else r.name
        for r in roles
    )
    display.heading(f"mister-smith: {task}")
    display.line(f"workspace      {workspace}")
    display.line(f"requirements   {', '.join(r.name for r in analysed)} -> {composition}{note}")
    display.line(f"model          {model}")
    bus = runtime.tool_bus
    ws = Workspace(workspace)
    # Deny by default: register the team's roles, grant each tool to the roles that use
    # it (the coordinator reads through its surveyors, so it holds reading too), and let
    # the team bind each member's role into its identity.
    bound = {role.name: runtime.identities.register_role(role.name) for role in roles}
    readers = [bound[name] for name in ("surveyor", "coordinator") if name in bound]
    bus.register_tool(ListDirectoryTool(ws, name=LIST_TOOL), roles=readers)
    reader: ReadFileTool | FaultyTool = ReadFileTool(ws, name=READ_TOOL)
    if faults:
        reader = FaultyTool(reader, demo_fault_plan(), timeout=hang_timeout)
        display.line(
            "faults         surveyor-1 crashes on its 3rd model call; read_file hangs on "
            f"call 4 (deadline {hang_timeout} s) and fails on calls 2, 11 and 23"
        )
    bus.register_tool(reader, roles=readers, timeout=hang_timeout)
    http: HttpModel | None = (
        None if model == "scripted" else http_model(model, runtime.events, runtime.config.agents)
    )
    made = 0

    def model_for(role: AgentRole) -> Model:
        nonlocal made
        chosen: Model = http if http is not None else survey_model(role.name, latency=latency)
        if role.name == "surveyor":
            made += 1
            if made == 1 and faults:
                return CrashingModel(chosen, crash_on=3)
        return chosen

    return TeamRecipe(
        roles=tuple(roles),
        mode=mode,
        model_for=model_for,
        composition=composition,
        replicas={"surveyor": surveyors},
        customize=functools.partial(member_spec, embedded=http is None),
        name="survey",
        close=http.aclose if http is not None else None,
        bind_roles=tuple(bound.values()),
    )


async def run_demo(options: DemoOptions, out: TextIO, config: AgentConfig | None = None) -> int:
    """Run the demo; print progress and the summary to ``out``; return the exit code."""

    async def prepare(runtime: RuntimeManager, display: Display) -> TeamRecipe:
        return survey_recipe(
            runtime,
            display,
            workspace=options.workspace,
            model=options.model,
            latency=options.latency,
            surveyors=options.surveyors,
            faults=options.faults,
            hang_timeout=options.hang_timeout,
        )

    return await run_team_session(
        SURVEY_TASK,
        demo_config(config),
        out,
        color=options.color,
        live=options.live,
        timeout=options.timeout,
        prepare=prepare,
    )
