"""What ``demo`` and ``run`` share: models by name, signal handling, the event feed into
the display, the record of what happened, and the closing summary."""

from __future__ import annotations

import contextlib
import functools
import math
import os
import signal
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TextIO

import attrs
import trio

from ..actors import ActorSystemStatistics, DeadLetterRecord, SpawnController
from ..agents import (
    AgentRole,
    AgentSpec,
    AnthropicModel,
    CoordinationMode,
    HttpModel,
    Model,
    OpenAICompatibleModel,
    TeamResult,
    create_dynamic_team,
)
from ..config import AgentConfig, AgentSettings, load_config
from ..errors import ConfigError
from ..events import (
    ComponentRecovered,
    ContextSummarized,
    Event,
    EventBus,
    SupervisionDecision,
    TaskCompleted,
    TaskFailed,
)
from ..runtime import RuntimeManager, reload_on_sighup
from ..supervision import snapshot
from ..tools import ToolBusStatistics
from ..types import Role
from ._approve import LineReader, prompt_approvals
from ._display import GREEN, RED, YELLOW, Display
from ._summary_json import write_summary_json

MODEL_KINDS = ("scripted", "openai", "anthropic")
"""What ``--model`` accepts."""

EXIT_OK = 0
EXIT_TASK_FAILED = 1
EXIT_USAGE = 2
EXIT_INVARIANT = 3
EXIT_INTERRUPTED = 130


def http_model(
    kind: str, events: EventBus | None = None, settings: AgentSettings | None = None
) -> HttpModel:
    """The HTTP model for ``--model openai|anthropic``, configured from the environment.

    ``OPENAI_API_KEY`` / ``ANTHROPIC_API_KEY`` hold the keys; ``OPENAI_BASE_URL`` /
    ``ANTHROPIC_BASE_URL`` optionally change the endpoint. The model is the config's
    ``agents.openai_model`` / ``agents.anthropic_model`` unless
    ``MISTER_SMITH_OPENAI_MODEL`` / ``MISTER_SMITH_ANTHROPIC_MODEL`` name another.
    ``settings`` (the config's ``[agents]`` section) also caps the size of its answers.

    Raises:
        MissingApiKey: the key's variable is not set.
    """
    settings = settings or AgentSettings()
    if kind == "openai":
        return OpenAICompatibleModel(
            os.environ.get("MISTER_SMITH_OPENAI_MODEL") or settings.openai_model,
            base_url=os.environ.get("OPENAI_BASE_URL") or None,
            events=events,
            max_response_bytes=settings.max_response_bytes,
            streaming=True,  # the attempt timeout bounds silences, not long answers
        )
    if kind == "anthropic":
        return AnthropicModel(
            os.environ.get("MISTER_SMITH_ANTHROPIC_MODEL") or settings.anthropic_model,
            base_url=os.environ.get("ANTHROPIC_BASE_URL") or None,
            events=events,
            max_response_bytes=settings.max_response_bytes,
            streaming=True,
        )
    raise ValueError(f"not an HTTP model kind: {kind!r}")


def limited_member_spec(
    customize: Callable[[AgentRole, AgentSpec], AgentSpec] | None,
    settings: AgentSettings,
    role: AgentRole,
    spec: AgentSpec,
) -> AgentSpec:
    """A team member's spec: adjusted by the recipe's ``customize``, then given the
    tool-call limits of ``settings`` (the config's ``[agents]`` section)."""
    if customize is not None:
        spec = customize(role, spec)
    return attrs.evolve(
        spec,
        max_tool_calls_per_turn=settings.max_tool_calls_per_turn,
        max_tool_calls_per_task=settings.max_tool_calls_per_task,
    )


ModelFor = Callable[[AgentRole], Model]


@attrs.define
class Record:
    """What happened during a run, collected from the event bus."""

    decisions: list[SupervisionDecision] = attrs.field(factory=list)
    recoveries: list[ComponentRecovered] = attrs.field(factory=list)
    failed_tasks: list[TaskFailed] = attrs.field(factory=list)
    completed_tasks: int = 0
    folds: int = 0
    tokens: int = 0
    model_calls: int = 0

    def note(self, event: Event) -> None:
        """Keep what the summary needs from ``event``."""
        if isinstance(event, SupervisionDecision):
            self.decisions.append(event)
        elif isinstance(event, ComponentRecovered):
            self.recoveries.append(event)
        elif isinstance(event, TaskFailed):
            self.failed_tasks.append(event)
        elif isinstance(event, TaskCompleted):
            self.completed_tasks += 1
            self.tokens += event.usage.get("total_tokens", 0)
            self.model_calls += event.usage.get("model_calls", 0)
        elif isinstance(event, ContextSummarized):
            self.folds += 1


async def feed_display(bus: EventBus, display: Display, record: Record) -> None:
    """Show every event as it happens and record it; redraw the live block regularly."""
    async with bus.subscribe(Event) as stream:

        async def redraw() -> None:
            while True:
                await trio.sleep(0.1)
                display.redraw()

        async with trio.open_nursery() as nursery:
            if display.live:
                nursery.start_soon(redraw)
            async for event in stream:
                record.note(event)
                display.event(event)


@asynccontextmanager
async def cancel_on_signals() -> AsyncIterator[list[int]]:
    """Run the block until it ends or SIGINT/SIGTERM arrives; a signal cancels the block
    (and is recorded in the yielded list) instead of raising ``KeyboardInterrupt``.

    Outside the main thread, where signals cannot be caught, the block just runs.
    """
    received: list[int] = []
    with contextlib.ExitStack() as stack:
        try:
            signals = stack.enter_context(trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM))
        except (RuntimeError, ValueError):  # not the main thread
            signals = None
        with trio.CancelScope() as scope:
            async with trio.open_nursery() as nursery:
                if signals is not None:

                    async def watch(signals: AsyncIterator[int]) -> None:
                        async for signum in signals:
                            received.append(signum)
                            scope.cancel()
                            return

                    nursery.start_soon(watch, signals)
                try:
                    yield received
                finally:
                    nursery.cancel_scope.cancel()


@attrs.frozen
class Outcome:
    """How a run ended, for the summary and the exit code."""

    result: TeamResult | None
    error: BaseException | None
    interrupted: bool
    tools: ToolBusStatistics | None
    actors: ActorSystemStatistics
    dead_letters: tuple[DeadLetterRecord, ...]
    record: Record
    team: str
    composition: str
    duration: float

    @property
    def invariant_holds(self) -> bool:
        """Every message accepted was handled or dead-lettered."""
        stats = self.actors
        return stats.accepted == stats.handled + stats.dead_lettered

    @property
    def exit_code(self) -> int:
        """0 done, 1 task failed, 2 configuration error (e.g. a missing API key),
        3 invariant broken, 130 interrupted."""
        if self.interrupted:
            return EXIT_INTERRUPTED
        if isinstance(self.error, ConfigError):
            return EXIT_USAGE
        if not self.invariant_holds:
            return EXIT_INVARIANT
        return EXIT_OK if self.result is not None else EXIT_TASK_FAILED


def print_summary(outcome: Outcome, out: TextIO, *, color: bool) -> None:
    """The closing summary: result, restarts and causes, tool calls, dead letters, and the
    invariant line ``messages accepted = handled + dead-lettered``."""

    def paint(text: str, style: str) -> str:
        return f"{style}{text}\x1b[0m" if color else text

    def say(text: str = "") -> None:
        out.write(text + "\n")

    say()
    say(paint("== summary " + "=" * 60, "\x1b[1m"))
    if outcome.result is not None:
        say(
            f"task        {paint('completed', GREEN)} in {outcome.duration:.2f} s by team "
            f"{outcome.team!r} ({outcome.composition})"
        )
        say("result")
        for row in outcome.result.answer.splitlines():
            say(f"  {row}")
    elif outcome.interrupted:
        say(f"task        {paint('interrupted', YELLOW)} after {outcome.duration:.2f} s")
    else:
        error = outcome.error
        say(
            f"task        {paint('FAILED', RED)} after {outcome.duration:.2f} s: "
            f"{type(error).__name__}: {error}"
        )
    restarts = [d for d in outcome.record.decisions if d.error_type]
    say(f"restarts    {len(outcome.record.recoveries)}")
    for decision in restarts:
        say(
            f"  {decision.child}: {decision.error_type}: {decision.error} "
            f"→ {decision.action.value} (by {decision.supervisor})"
        )
    tools = outcome.tools
    if tools is not None:
        per_tool = sorted(tools.tools.values(), key=lambda t: t.name)
        ok = sum(t.succeeded for t in per_tool)
        failed = sum(t.failures for t in per_tool)
        timeouts = sum(t.timeouts for t in per_tool)
        denied = sum(t.denied for t in per_tool)
        say(
            f"tool calls  {tools.calls}: ok {ok}, failed {failed}, timeouts {timeouts}, "
            f"denied {denied}"
        )
        for stats in per_tool:
            if stats.calls:
                say(
                    f"  {stats.name:<16} {stats.calls:>4} calls  ok {stats.succeeded:<4} "
                    f"failed {stats.failures:<3} timeouts {stats.timeouts}"
                )
    say(f"dead letters {len(outcome.dead_letters)}")
    groups: list[tuple[str, str, int]] = []
    for letter in outcome.dead_letters:
        if groups and groups[-1][:2] == (letter.actor, letter.reason):
            groups[-1] = (letter.actor, letter.reason, groups[-1][2] + 1)
        else:
            groups.append((letter.actor, letter.reason, 1))
    for actor, reason, count in groups:
        say(f"  {actor}: {reason}" + (f" (x{count})" if count > 1 else ""))
    say(
        f"agents      {outcome.record.completed_tasks} tasks done, "
        f"{len(outcome.record.failed_tasks)} failed, {outcome.record.folds} context folds, "
        f"{outcome.record.tokens} tokens over {outcome.record.model_calls} model calls"
    )
    totals = outcome.actors
    verdict = paint("OK", GREEN) if outcome.invariant_holds else paint("FAILED", RED)
    say(
        f"messages accepted = handled + dead-lettered: {totals.accepted} = {totals.handled} + "
        f"{totals.dead_lettered}  {verdict}"
    )


def elapsed_since(start: float) -> float:
    """Seconds on the Trio clock since ``start``."""
    now = trio.current_time()
    return now - start if math.isfinite(start) else 0.0


@attrs.frozen
class TeamRecipe:
    """How a session composes its team (see :func:`create_dynamic_team`).

    Attributes:
        roles: The roles, from the requirements analysis.
        mode: The coordination mode.
        model_for: Each role's model.
        composition: One line describing the team (for the output).
        replicas: Members per role name.
        customize: Adjusts each member's spec.
        name: The team's name.
        close: Called at the end (e.g. to close an HTTP model's client).
        bind_roles: The role credentials the members' identities may carry (the
            recipe registered them and granted its tools to them).
    """

    roles: tuple[AgentRole, ...]
    mode: CoordinationMode
    model_for: ModelFor
    composition: str
    replicas: Mapping[str, int] = attrs.field(factory=dict)
    customize: Callable[[AgentRole, AgentSpec], AgentSpec] | None = None
    name: str = "team"
    close: Callable[[], Awaitable[None]] | None = None
    bind_roles: tuple[Role, ...] = ()


Prepare = Callable[[RuntimeManager, Display], Awaitable[TeamRecipe]]
"""Registers a session's tools and says how to compose its team."""


async def run_team_session(
    task: str,
    config: AgentConfig,
    out: TextIO,
    *,
    color: bool,
    live: bool,
    timeout: float,
    prepare: Prepare,
    config_file: Path | None = None,
    approve_prompt: LineReader | None = None,
    summary_out: TextIO | None = None,
) -> int:
    """Start a runtime, compose a team with ``prepare``, run ``task`` with live progress,
    shut down gracefully (also on SIGINT/SIGTERM), print the summary, return the exit
    code. With ``config_file``, SIGHUP re-reads it and applies it live. With
    ``approve_prompt``, tool calls waiting for approval are asked about with it. With
    ``summary_out``, the summary is also written there as JSON (``--json``)."""
    started = trio.current_time()
    record = Record()
    result: TeamResult | None = None
    error: BaseException | None = None
    tool_stats: ToolBusStatistics | None = None
    recipe: TeamRecipe | None = None
    signals: list[int] = []
    loader = None if config_file is None else functools.partial(load_config, config_file)
    async with RuntimeManager.open(config, config_loader=loader) as runtime:
        display = Display(
            out, color=color, live=live, tree=lambda: snapshot(runtime.supervision), started=started
        )
        bus = runtime.tool_bus
        controller = SpawnController(runtime.actor_system, config.actors.max_agents)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(feed_display, runtime.events, display, record)
            if approve_prompt is not None:
                nursery.start_soon(prompt_approvals, runtime.approvals, display, approve_prompt)
            if loader is not None and threading.current_thread() is threading.main_thread():
                await nursery.start(reload_on_sighup, runtime)
            async with cancel_on_signals() as signals:
                try:
                    recipe = await prepare(runtime, display)
                    team = await create_dynamic_team(
                        task,
                        controller=controller,
                        model=recipe.model_for,
                        tools=bus,
                        supervisor=runtime.supervision,
                        roles=recipe.roles,
                        mode=recipe.mode,
                        replicas=recipe.replicas,
                        name=recipe.name,
                        customize=functools.partial(
                            limited_member_spec, recipe.customize, config.agents
                        ),
                        retries=0,
                        bind_roles=recipe.bind_roles,
                    )
                    async with team:
                        try:
                            result = await team.run(task, timeout=timeout)
                        finally:
                            tool_stats = bus.statistics()
                            await trio.sleep(0.02)  # let the last events reach the display
                            display.finish()
                except Exception as exc:
                    error = exc
            nursery.cancel_scope.cancel()
        display.finish()
        if recipe is not None and recipe.close is not None:
            with trio.CancelScope(shield=True):
                await recipe.close()
    outcome = Outcome(
        result=result,
        error=error,
        interrupted=bool(signals),
        tools=tool_stats,
        actors=runtime.actor_system.statistics(),
        dead_letters=tuple(runtime.actor_system.dead_letters()),
        record=record,
        team=recipe.name if recipe is not None else "",
        composition=recipe.composition if recipe is not None else "",
        duration=elapsed_since(started),
    )
    print_summary(outcome, out, color=color)
    if summary_out is not None:
        write_summary_json(task, outcome, summary_out)
    return outcome.exit_code
