"""Live terminal output: events as they happen, the supervision tree, a bar per agent.

On a terminal the tree and the bars stay at the bottom and are redrawn in place (plain
ANSI escapes) while event lines scroll above them; when the output is not a terminal
(a pipe, a CI log) every line is printed once, plainly.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from typing import TextIO

import attrs

from ..agents import AgentProgress, AgentTextStreamed
from ..events import (
    AgentSpawned,
    AgentStopped,
    CircuitStateChanged,
    ComponentRecovered,
    ContextSummarized,
    DeadLetter,
    Event,
    LoopBlocked,
    SupervisionDecision,
    TaskCompleted,
    TaskFailed,
    ToolCalled,
    ToolOutcome,
)
from ..supervision import TreeSnapshot

RESET = "\x1b[0m"
BOLD = "\x1b[1m"
DIM = "\x1b[2m"
RED = "\x1b[31m"
GREEN = "\x1b[32m"
YELLOW = "\x1b[33m"
BLUE = "\x1b[34m"
CYAN = "\x1b[36m"

BAR_WIDTH = 24


@attrs.define
class AgentLine:
    """What the display knows about one agent."""

    name: str
    role: str
    progress: float = 0.0
    turn: int = 0
    tool_calls: int = 0
    tasks: int = 0
    restarts: int = 0
    folds: int = 0
    status: str = "idle"
    writing: str = ""
    """The tail of what its model is streaming now."""
    streamed: int = 0
    """Characters its model streamed so far."""


STREAM_TAIL = 40
"""Characters of an agent's streaming answer shown in its bar."""

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def fit(text: str, width: int) -> str:
    """``text`` cut to ``width`` visible characters (ANSI escapes do not count), so a
    live line never wraps and the redraw stays in place."""
    if len(_ANSI.sub("", text)) <= width:
        return text
    out: list[str] = []
    visible = 0
    position = 0
    for match in _ANSI.finditer(text):
        chunk = text[position : match.start()]
        take = chunk[: max(0, width - visible)]
        out.append(take)
        visible += len(take)
        out.append(match.group(0))
        position = match.end()
    out.append(text[position:][: max(0, width - visible)])
    return "".join(out) + (RESET if "\x1b[" in text else "")


def _short(text: str, width: int = 110) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= width else text[: width - 1] + "…"


class Display:
    """Renders the demo's progress to ``out``.

    Args:
        out: Where to write.
        color: Use ANSI colours.
        live: Redraw the tree and bars in place (a terminal); else plain lines.
        tree: Returns the current supervision tree.
        started: Trio time the run started (event times are shown relative to it).
    """

    def __init__(
        self,
        out: TextIO,
        *,
        color: bool,
        live: bool,
        tree: Callable[[], TreeSnapshot],
        started: float,
    ) -> None:
        self.out = out
        self.color = color
        self.live = live
        self.tree = tree
        self.started = started
        self.agents: dict[str, AgentLine] = {}
        self._drawn = 0
        self._finished = False

    # -- text helpers -------------------------------------------------------------------

    def paint(self, text: str, *styles: str) -> str:
        """``text`` in ``styles`` when colours are on."""
        return f"{''.join(styles)}{text}{RESET}" if self.color and styles else text

    def _write(self, text: str) -> None:
        self.out.write(text)
        self.out.flush()

    def _erase(self) -> None:
        if self._drawn:
            self._write(f"\x1b[{self._drawn}F\x1b[J")
            self._drawn = 0

    def line(self, text: str = "") -> None:
        """Print a line above the live block (or plainly)."""
        self._erase()
        self._write(text + "\n")
        self.redraw()

    def heading(self, text: str) -> None:
        """Print a section heading."""
        self.line(self.paint(text, BOLD))

    # -- the live block -----------------------------------------------------------------

    def bar(self, agent: AgentLine) -> str:
        """One agent's progress line."""
        filled = round(agent.progress * BAR_WIDTH)
        if self.color:
            bar = self.paint("█" * filled, GREEN) + self.paint("░" * (BAR_WIDTH - filled), DIM)
        else:
            bar = "#" * filled + "." * (BAR_WIDTH - filled)
        extra = f"  restarts {agent.restarts}" if agent.restarts else ""
        if agent.writing and agent.status == "working":
            extra += "  " + self.paint(f"> {agent.writing.strip()[-STREAM_TAIL:]}", DIM)
        return (
            f"  {agent.name:<22} [{bar}] {agent.progress:4.0%}  {agent.status:<9} "
            f"tasks {agent.tasks:<3} turn {agent.turn:<3} tools {agent.tool_calls:<3} "
            f"folds {agent.folds:<3}{extra}"
        )

    def block(self) -> list[str]:
        """The live block: the supervision tree, then one bar per agent."""
        lines = [self.paint("supervision tree", BOLD)]
        lines += ["  " + row for row in self.tree().render().splitlines()]
        if self.agents:
            lines.append(self.paint("agents", BOLD))
            lines += [self.bar(agent) for agent in self.agents.values()]
        return lines

    def redraw(self) -> None:
        """Redraw the live block (terminal only)."""
        if not self.live:
            return
        self._erase()
        width = max(20, shutil.get_terminal_size().columns - 1)
        lines = [fit(line, width) for line in self.block()]
        self._write("\n".join(lines) + "\n")
        self._drawn = len(lines)

    def finish(self) -> None:
        """Leave the final tree and bars on screen (printed once when not live); later
        events are no longer shown (the summary accounts for them)."""
        if self._finished:
            return
        self._erase()
        self._write("\n".join(self.block()) + "\n")
        self._finished = True
        self.live = False

    # -- events -------------------------------------------------------------------------

    def _stamp(self, event: Event) -> str:
        return self.paint(f"{event.timestamp - self.started:6.2f}s", DIM)

    def _agent(self, name: str, role: str | None = None) -> AgentLine:
        agent = self.agents.get(name)
        if agent is None:
            agent = self.agents[name] = AgentLine(name, role or "")
        return agent

    def event(self, event: Event) -> None:
        """Update the bars and print a line for the events worth a line."""
        text = self.describe(event)
        if text is not None and not self._finished:
            self.line(f"{self._stamp(event)}  {text}")

    def describe(self, event: Event) -> str | None:
        """The line for ``event`` (``None``: not shown), updating agent state."""
        if isinstance(event, AgentTextStreamed):
            agent = self._agent(event.agent)
            agent.writing = " ".join((agent.writing + event.text).split())[-STREAM_TAIL:]
            agent.streamed += len(event.text)
            return None
        if isinstance(event, AgentProgress):
            agent = self._agent(event.agent, event.role)
            agent.progress, agent.turn, agent.tool_calls = (
                event.progress,
                event.turn,
                event.tool_calls,
            )
            agent.status = "working" if event.status == "working" else event.status
            return None
        if isinstance(event, AgentSpawned):
            if event.role is None:
                return None
            self._agent(event.name, event.role)
            return self.paint("spawned", CYAN) + f" {event.name} ({event.role})"
        if isinstance(event, AgentStopped):
            if event.name in self.agents:
                self.agents[event.name].status = "stopped"
            return None
        if isinstance(event, TaskCompleted):
            streamed = ""
            if event.agent in self.agents:
                agent = self.agents[event.agent]
                agent.tasks += 1
                agent.status = "idle"
                if agent.streamed:
                    streamed = f", {agent.streamed} characters streamed"
                agent.streamed, agent.writing = 0, ""
            tokens = event.usage.get("total_tokens", 0)
            return (
                self.paint("done", GREEN)
                + f"    {event.agent} finished a task in {event.duration:.2f}s "
                f"({tokens} tokens{streamed})"
            )
        if isinstance(event, TaskFailed):
            if event.agent in self.agents:
                self.agents[event.agent].status = "failed"
            return (
                self.paint("failed", RED)
                + f"  {event.agent}: {event.error_type}: "
                + _short(event.error, 80)
            )
        if isinstance(event, SupervisionDecision):
            return (
                self.paint("supervise", YELLOW)
                + f" {event.supervisor}: {event.child} crashed with {event.error_type}: "
                + _short(event.error, 60)
                + f" → {event.action.value}"
            )
        if isinstance(event, ComponentRecovered):
            if event.child in self.agents:
                agent = self.agents[event.child]
                agent.restarts = max(agent.restarts, event.restarts)
                agent.status = "restarted"
            return self.paint("recovered", GREEN) + (
                f" {event.child} is running again ({event.action.value} #{event.restarts})"
            )
        if isinstance(event, ToolCalled):
            if event.outcome is ToolOutcome.OK:
                if event.tool.startswith("ask_"):
                    return (
                        self.paint("delegated", BLUE)
                        + f" {event.caller} → {event.tool} answered in {event.duration:.2f}s"
                    )
                return None
            style = YELLOW if event.outcome is ToolOutcome.TIMEOUT else RED
            return (
                self.paint(f"tool {event.outcome.value}", style)
                + f" {event.tool} for {event.caller}: "
                + _short(event.error or "", 80)
            )
        if isinstance(event, ContextSummarized):
            agent = self._agent(event.agent)
            agent.folds += 1
            if agent.folds > 1:
                return None  # the first fold is shown; the bars count the rest
            return (
                self.paint("context", CYAN)
                + f"  {event.agent} folded {event.summarized_messages} old messages into "
                "its summary (further folds are counted in its bar)"
            )
        if isinstance(event, DeadLetter):
            return self.paint("dead letter", RED) + f" {event.actor}: " + _short(event.reason, 80)
        if isinstance(event, CircuitStateChanged):
            return self.paint("breaker", YELLOW) + (
                f" {event.breaker}: {event.old_state} → {event.new_state}"
            )
        if isinstance(event, LoopBlocked):
            return self.paint("blocked", RED) + f" {event.task} held the loop {event.duration:.3f}s"
        return None
