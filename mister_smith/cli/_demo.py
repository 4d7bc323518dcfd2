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
from ._survey import (
    LIST_TOOL,
    PACKAGE_SUBJECT,
    READ_TOOL,
    SURVEY_TASK,
    survey_model,
    survey_roles,
    survey_task,
)

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
        mcp: Serve the file tools from an MCP server subprocess (``mcp serve``) instead
            of in-process; with faults on, that server is killed during the survey.
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
    mcp: bool = False


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


MCP_TOOL_TIMEOUT = 15.0
"""Deadline of the MCP file tools in the demo: room for the server to be restarted."""

MCP_KILL_ON = 5
"""The read of the MCP file server during which it is killed (with faults on)."""


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


READER_ROLES = ("surveyor", "coordinator")
"""The roles granted the file tools (the coordinator reads through its surveyors, so it
holds reading too)."""


def survey_subject(workspace: Path) -> str:
    """What a survey of ``workspace`` is of: this package, or the directory's path."""
    resolved = workspace.resolve()
    return PACKAGE_SUBJECT if resolved == PACKAGE_ROOT else str(resolved)


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
    local_tools: bool = True,
) -> TeamRecipe:
    """Register the workspace tools (with faults if asked) and plan the survey team.

    With ``local_tools=False`` the file tools are left to the caller (the MCP mode
    registers them from a server, granted to the same roles by name).
    """
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
    readers = [bound[name] for name in READER_ROLES if name in bound]
    if local_tools:
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
        chosen: Model = (
            http
            if http is not None
            else survey_model(role.name, latency=latency, subject=survey_subject(workspace))
        )
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


async def serve_files_over_mcp(
    runtime: RuntimeManager, display: Display, options: DemoOptions
) -> None:
    """Start ``mcp serve`` as a supervised stdio MCP server and register its file tools
    (under their usual names, granted to the readers); with faults on, the server is
    killed during the survey."""
    from ._mcp import connect_file_server

    kill_on = MCP_KILL_ON if options.faults else None
    roles = [name for name in READER_ROLES if runtime.identities.has_role(name)]
    connection = await connect_file_server(
        runtime,
        options.workspace,
        roles=roles,
        read_tool=READ_TOOL,
        timeout=MCP_TOOL_TIMEOUT,
        kill_on=kill_on,
    )
    stats = connection.statistics()
    display.line(
        f"file tools     from MCP server {connection.name!r} (stdio, pid {stats.pid}): "
        + ", ".join(stats.tools)
    )
    if options.faults:
        display.line(
            "faults         surveyor-1 crashes on its 3rd model call; the MCP file server "
            f"is killed on read {MCP_KILL_ON} (its supervisor restarts it)"
        )


async def run_demo(
    options: DemoOptions,
    out: TextIO,
    config: AgentConfig | None = None,
    summary_out: TextIO | None = None,
) -> int:
    """Run the demo; print progress and the summary to ``out`` (and the summary as JSON
    to ``summary_out``, if given); return the exit code."""
    task = survey_task(survey_subject(options.workspace))

    async def prepare(runtime: RuntimeManager, display: Display) -> TeamRecipe:
        recipe = survey_recipe(
            runtime,
            display,
            workspace=options.workspace,
            model=options.model,
            latency=options.latency,
            surveyors=options.surveyors,
            faults=options.faults,
            hang_timeout=options.hang_timeout,
            task=task,
            local_tools=not options.mcp,
        )
        if options.mcp:
            await serve_files_over_mcp(runtime, display, options)
        return recipe

    return await run_team_session(
        task,
        demo_config(config),
        out,
        color=options.color,
        live=options.live,
        timeout=options.timeout,
        prepare=prepare,
        summary_out=summary_out,
    )
