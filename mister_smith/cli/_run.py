"""``mister-smith run TASK``: a team composed for the user's own task."""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import TextIO

import attrs

from ..agents import (
    AgentRole,
    Model,
    analyze_requirements,
    choose_coordination,
)
from ..config import AgentConfig
from ..runtime import RuntimeManager
from ..tools import ListDirectoryTool, ReadFileTool, Tool, Workspace, WriteFileTool
from ._demo import member_spec, survey_recipe
from ._display import Display
from ._session import EXIT_USAGE, TeamRecipe, http_model, run_team_session


@attrs.frozen
class RunOptions:
    """How ``run`` runs.

    Attributes:
        task: The user's task.
        model: ``"scripted"`` or ``"openai"``/``"anthropic"``.
        color: ANSI colours.
        live: Redraw the tree and bars in place.
        workspace: The directory the file tools are confined to.
        timeout: Seconds the team gets.
        allow_write: Also register ``write_file`` (granted to the team's roles only).
        config_file: The ``--config`` file: re-read on SIGHUP and applied live.
    """

    task: str
    model: str = "scripted"
    color: bool = False
    live: bool = False
    workspace: Path = attrs.field(factory=Path.cwd)
    timeout: float = 45.0
    allow_write: bool = False
    config_file: Path | None = None


def general_recipe(runtime: RuntimeManager, display: Display, options: RunOptions) -> TeamRecipe:
    """A team of the analysed roles on a real model, with the workspace file tools.

    Deny by default: the team's roles are registered with the runtime's identities and
    the file tools are granted to them alone (every role: a lead's delegates act on its
    behalf, so the lead must hold what they use); ``write_file`` only with
    ``allow_write``, never open to all.
    """
    roles = analyze_requirements(options.task)
    mode = choose_coordination(options.task, roles)
    names = [role.name for role in roles]
    composition = f"{mode.value} mode: {', '.join(names)}"
    display.heading(f"mister-smith: {options.task}")
    display.line(f"workspace      {options.workspace}")
    display.line(f"requirements   {', '.join(names)} -> {composition}")
    display.line(f"model          {options.model}")
    workspace = Workspace(options.workspace)
    tools: list[Tool] = [ListDirectoryTool(workspace), ReadFileTool(workspace)]
    if options.allow_write:
        tools.append(WriteFileTool(workspace))
    bound = tuple(runtime.identities.register_role(name) for name in names)
    for tool in tools:
        runtime.tool_bus.register_tool(tool, policy="deny", roles=bound)
    model = http_model(options.model, runtime.events, runtime.config.agents)

    def model_for(role: AgentRole) -> Model:
        return model

    return TeamRecipe(
        roles=tuple(roles),
        mode=mode,
        model_for=model_for,
        composition=composition,
        customize=functools.partial(member_spec, embedded=False),
        name="run",
        close=model.aclose,
        bind_roles=bound,
    )


async def run_task(
    options: RunOptions,
    out: TextIO,
    config: AgentConfig | None = None,
    summary_out: TextIO | None = None,
) -> int:
    """Run the user's task; print progress and the summary (as JSON to ``summary_out``
    too, if given); return the exit code.

    The embedded scripted model only knows the survey (list, read, count, report); any
    other task needs ``--model openai`` or ``--model anthropic``.
    """
    config = AgentConfig() if config is None else config
    surveying = "surveyor" in [role.name for role in analyze_requirements(options.task)]
    if options.model == "scripted" and not surveying:
        print(
            "mister-smith: the embedded scripted model can only survey a source tree "
            "(e.g. 'survey the source tree and write a report'); use --model openai or "
            "--model anthropic for other tasks",
            file=sys.stderr,
        )
        return EXIT_USAGE

    async def prepare(runtime: RuntimeManager, display: Display) -> TeamRecipe:
        if options.model == "scripted":
            return survey_recipe(
                runtime,
                display,
                workspace=options.workspace,
                model=options.model,
                latency=0.0,
                surveyors=2,
                faults=False,
                hang_timeout=config.tools.default_timeout,
                task=options.task,
            )
        return general_recipe(runtime, display, options)

    return await run_team_session(
        options.task,
        config,
        out,
        color=options.color,
        live=options.live,
        timeout=options.timeout,
        prepare=prepare,
        config_file=options.config_file,
        approve_prompt=input if sys.stdin is not None and sys.stdin.isatty() else None,
        summary_out=summary_out,
    )
