"""The blocking detector: a Trio instrument naming every task step that holds the loop."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import attrs
import trio

from ..errors import RuntimeFault
from ..events import EventBus, LoopBlocked
from ._context import CURRENT_TOOL_CALL, STEP_STATE

DEFAULT_THRESHOLD = 0.1
"""Seconds a task step may hold the loop before it counts as blocking (100 ms)."""

MAX_OFFENDERS = 1_000
"""Blocked steps a detector remembers (the oldest are forgotten first)."""


@attrs.frozen
class BlockedStep:
    """One task step that held the loop too long.

    Attributes:
        task: The Trio task's name.
        duration: Wall-clock seconds the step took.
        tool: The tool being called, when the step ran inside a :class:`ToolBus` call.
    """

    task: str
    duration: float
    tool: str | None = None

    def __str__(self) -> str:
        where = f" in tool {self.tool!r}" if self.tool else ""
        return f"task {self.task!r}{where} blocked the loop for {self.duration * 1000:.0f} ms"


class LoopBlockedError(RuntimeFault):
    """Strict blocking detection found task steps that blocked the loop.

    Attributes:
        offenders: The blocked steps, oldest first.
    """

    def __init__(self, offenders: list[BlockedStep] | tuple[BlockedStep, ...]) -> None:
        self.offenders = tuple(offenders)
        listing = "; ".join(map(str, self.offenders[:10]))
        more = f" (and {len(self.offenders) - 10} more)" if len(self.offenders) > 10 else ""
        super().__init__(f"{len(self.offenders)} task step(s) blocked the loop: {listing}{more}")


@attrs.frozen
class BlockingStatistics:
    """A snapshot of a :class:`BlockingDetector`.

    Attributes:
        steps: Task steps measured.
        blocked: Steps over the threshold.
        worst: Longest step seen, in seconds.
        threshold: The threshold in seconds.
    """

    steps: int
    blocked: int
    worst: float
    threshold: float


class BlockingDetector(trio.abc.Instrument):
    """Times every task step; reports steps longer than ``threshold`` as blocking.

    Each blocking step is counted, remembered (see :attr:`offenders`) and, when
    ``events`` is given, announced as ``LoopBlocked`` naming the task, the duration and
    the tool being called (when the step ran inside a :class:`ToolBus` call).

    Install it with :func:`monitor_blocking`, ``trio.lowlevel.add_instrument`` or
    ``trio.run(..., instruments=[detector])``. Steps are timed with
    ``time.perf_counter``: blocking is about real time, whatever Trio's clock.

    Args:
        events: Where ``LoopBlocked`` events go (optional).
        threshold: Seconds a step may take (default 0.1 s, ``ToolSettings.blocking_threshold``).
        source: Source name of the events.
        clock: Wall clock to time steps with.
    """

    def __init__(
        self,
        events: EventBus | None = None,
        *,
        threshold: float = DEFAULT_THRESHOLD,
        source: str = "blocking_detector",
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        if not threshold > 0:
            raise ValueError(f"threshold must be > 0 seconds, got {threshold!r}")
        self.events = events
        self.threshold = threshold
        self.source = source
        self._clock = clock
        self._step_started: float | None = None
        self._steps = 0
        self._worst = 0.0
        self._blocked = 0
        self._offenders: list[BlockedStep] = []

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        """Start timing ``task``'s step."""
        STEP_STATE.last_tool = None
        self._step_started = self._clock()

    def after_task_step(self, task: trio.lowlevel.Task) -> None:
        """Stop timing; report the step if it took longer than the threshold."""
        if self._step_started is None:
            return  # added in the middle of this step: it was not timed
        duration = self._clock() - self._step_started
        self._steps += 1
        if duration > self._worst:
            self._worst = duration
        if duration <= self.threshold:
            return
        call = task.context.get(CURRENT_TOOL_CALL)
        tool = call.tool if call is not None else STEP_STATE.last_tool
        self._record(BlockedStep(task.name, duration, tool))

    def _record(self, step: BlockedStep) -> None:
        self._blocked += 1
        self._offenders.append(step)
        if len(self._offenders) > MAX_OFFENDERS:
            del self._offenders[0]
        if self.events is not None:
            self.events.emit(
                LoopBlocked(
                    source=self.source, task=step.task, duration=step.duration, tool=step.tool
                )
            )

    @property
    def offenders(self) -> tuple[BlockedStep, ...]:
        """Blocked steps seen so far (the last :data:`MAX_OFFENDERS`), oldest first."""
        return tuple(self._offenders)

    def check(self) -> None:
        """Raise :class:`LoopBlockedError` listing the blocked steps seen, if any, and
        forget them (so each is reported once)."""
        if self._offenders:
            offenders, self._offenders = self._offenders, []
            raise LoopBlockedError(offenders)

    def statistics(self) -> BlockingStatistics:
        """Counters (see :class:`BlockingStatistics`)."""
        return BlockingStatistics(self._steps, self._blocked, self._worst, self.threshold)


@asynccontextmanager
async def monitor_blocking(
    events: EventBus | None = None,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    strict: bool = False,
    source: str = "blocking_detector",
) -> AsyncIterator[BlockingDetector]:
    """Detect blocking task steps while the block runs; yield the :class:`BlockingDetector`.

    The instrument is added on entry and removed on exit. With ``strict=True`` leaving
    the block raises :class:`LoopBlockedError` if any step blocked (unless the block is
    already raising): the test-suite mode that turns blocking into a failure.
    """
    detector = BlockingDetector(events, threshold=threshold, source=source)
    task = trio.lowlevel.current_task()
    trio.lowlevel.add_instrument(detector)
    # Time the rest of the current step too, from here to the block's exit.
    detector.before_task_step(task)
    try:
        yield detector
    finally:
        detector.after_task_step(task)
        trio.lowlevel.remove_instrument(detector)
    if strict:
        detector.check()
