"""``mister-smith run TASK``: a team composed for the user's own task."""

from __future__ import annotations

import functools
import hashlib
import json
import sys
import time
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
from ..errors import CheckpointUnreadable
from ..persistence import open_sqlite_store
from ..runtime import RuntimeManager
from ..tools import ListDirectoryTool, ReadFileTool, Tool, Workspace, WriteFileTool
from ._demo import member_spec, survey_recipe
from ._display import Display
from ._session import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    TeamRecipe,
    http_model,
    run_team_session,
)


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
        durable: Record the task in the store (``persistence.path``) from its start
            until it finished or failed, so that a ``--resume`` run takes it up if this
            process ends first (killed, crashed, interrupted).
        resume: Ignore ``task``: run the tasks recorded by ``durable`` runs that did
            not finish, each with the options it was started with, oldest first.
    """

    task: str
    model: str = "scripted"
    color: bool = False
    live: bool = False
    workspace: Path = attrs.field(factory=Path.cwd)
    timeout: float = 45.0
    allow_write: bool = False
    config_file: Path | None = None
    durable: bool = False
    resume: bool = False


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
    if options.resume:
        return await resume_tasks(options, out, config)
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

    record = UnfinishedRun.of(options) if options.durable else None
    if record is not None:
        await record.save(config)
    code = await run_team_session(
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
    if record is not None and code != EXIT_INTERRUPTED:
        await record.delete(config)  # finished (or failed for good): nothing to resume
    return code


RUN_PREFIX = "run/"
"""Checkpoint keys of the tasks ``run --durable`` recorded and did not finish."""


@attrs.frozen
class UnfinishedRun:
    """A ``run --durable`` task as recorded in the store until it ends."""

    task: str
    model: str
    workspace: str
    timeout: float
    allow_write: bool
    started_at: float

    @classmethod
    def of(cls, options: RunOptions) -> UnfinishedRun:
        """The record of ``options``' task, started now."""
        return cls(
            options.task,
            options.model,
            str(Path(options.workspace).resolve()),
            options.timeout,
            options.allow_write,
            time.time(),
        )

    @property
    def key(self) -> str:
        """Its checkpoint key: the task and workspace, hashed."""
        digest = hashlib.sha256(f"{self.workspace}\0{self.task}".encode()).hexdigest()[:24]
        return f"{RUN_PREFIX}{digest}"

    async def save(self, config: AgentConfig) -> None:
        """Record it (the store is opened and closed around the write)."""
        data = json.dumps(attrs.asdict(self)).encode()
        async with open_sqlite_store(config.persistence) as store:
            await store.put_checkpoint(self.key, data)

    async def delete(self, config: AgentConfig) -> None:
        """Forget it (the task ended)."""
        async with open_sqlite_store(config.persistence) as store:
            await store.delete_checkpoint(self.key)


async def resume_tasks(options: RunOptions, out: TextIO, config: AgentConfig) -> int:
    """Run every recorded unfinished task again, oldest first; the worst exit code.

    The task starts over with a new team (the team's members are not durable agents):
    what ``--resume`` guarantees is that a task accepted by ``run --durable`` is not
    forgotten because its process ended.
    """
    found: list[UnfinishedRun] = []
    async with open_sqlite_store(config.persistence) as store:
        for key in await store.checkpoint_keys(RUN_PREFIX):
            saved = await store.get_checkpoint(key)
            if saved is None:
                continue
            try:
                found.append(UnfinishedRun(**json.loads(saved.data)))
            except (ValueError, TypeError) as exc:
                raise CheckpointUnreadable(f"{key!r} is not a recorded run: {exc}") from exc
    if not found:
        out.write("mister-smith: no unfinished task to resume\n")
        return EXIT_OK
    worst = EXIT_OK
    for record in sorted(found, key=lambda r: r.started_at):
        out.write(f"mister-smith: resuming unfinished task {record.task!r}\n")
        code = await run_task(
            attrs.evolve(
                options,
                task=record.task,
                model=record.model,
                workspace=Path(record.workspace),
                timeout=record.timeout,
                allow_write=record.allow_write,
                durable=True,
                resume=False,
            ),
            out,
            config,
        )
        worst = max(worst, code)
    return worst
