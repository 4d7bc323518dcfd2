"""Windowed context: the design doc's ``SmartAgent`` (recent messages plus a summary).

A :class:`ContextWindow` keeps the most recent messages within a message count and an
estimated token budget. When either is exceeded, the oldest half is folded into a
running summary by a pluggable :class:`Summarizer` and a
:class:`~mister_smith.events.ContextSummarized` event is emitted. The summary has its own
token bound, so an agent's memory stays bounded however long the conversation runs.
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Iterable, Sequence
from typing import Protocol, runtime_checkable

import attrs
import trio

from ..events import ContextSummarized, EventBus
from ._messages import CHARS_PER_TOKEN, Message, MessageRole, estimate_tokens
from ._model import Model, ModelLimits, ModelRequest

logger = logging.getLogger("mister_smith.agents")

SUMMARY_HEADER = "Summary of the earlier conversation:"
"""First line of the system message that carries the summary to the model."""

TRUNCATION_MARK = " [... {omitted} characters truncated]"


@runtime_checkable
class Summarizer(Protocol):
    """Folds messages into a running summary of at most ``max_tokens`` (estimated)."""

    async def summarize(self, summary: str, messages: Sequence[Message], *, max_tokens: int) -> str:
        """Return the new summary: ``summary`` updated with ``messages``."""
        ...


def clip(text: str, max_tokens: int) -> str:
    """``text`` cut to at most ``max_tokens`` estimated tokens, keeping its beginning and,
    when there is room, a mark saying how much was cut."""
    limit = max(0, max_tokens * CHARS_PER_TOKEN)
    if len(text) <= limit:
        return text
    longest_mark = len(TRUNCATION_MARK.format(omitted=len(text)))
    if limit < 2 * longest_mark:
        return text[:limit]
    keep = limit - longest_mark
    return text[:keep] + TRUNCATION_MARK.format(omitted=len(text) - keep)


def _one_line(message: Message, width: int) -> str:
    text = " ".join(message.content.split())
    if message.role is MessageRole.TOOL:
        head = f"{message.name or 'tool'} {'failed' if message.is_error else 'returned'}"
    elif message.tool_calls:
        calls = ", ".join(call.name for call in message.tool_calls)
        head = f"assistant called {calls}"
    else:
        head = message.role.value
    line = f"- {head}: {text}" if text else f"- {head}"
    return line if len(line) <= width else line[: width - 1] + "…"


@attrs.define
class ExtractiveSummarizer:
    """A summarizer that needs no model: one extract line per folded message.

    Each message becomes ``- <who>: <first characters>``; lines are appended to the
    previous summary and, when the bound is reached, the oldest lines are dropped and
    counted (``(N earlier points omitted)``). Deterministic and cheap.

    Attributes:
        line_width: Characters kept per message.
    """

    line_width: int = attrs.field(default=160, validator=attrs.validators.ge(16))

    async def summarize(self, summary: str, messages: Sequence[Message], *, max_tokens: int) -> str:
        """Append one line per message; drop the oldest lines beyond ``max_tokens``."""
        await trio.lowlevel.checkpoint()
        return self.summarize_sync(summary, messages, max_tokens=max_tokens)

    def summarize_sync(self, summary: str, messages: Sequence[Message], *, max_tokens: int) -> str:
        """The same as :meth:`summarize`, synchronously."""
        omitted = 0
        lines: collections.deque[str] = collections.deque()
        for line in summary.splitlines():
            if line.startswith("(") and line.endswith(" earlier points omitted)"):
                omitted += int(line[1:].split(" ", 1)[0])
            elif line:
                lines.append(line)
        width = min(self.line_width, max(16, max_tokens * CHARS_PER_TOKEN // 2))
        for message in messages:
            lines.append(_one_line(message, width))
        limit = max_tokens * CHARS_PER_TOKEN
        size = sum(len(line) + 1 for line in lines)
        while lines and size + len(f"({omitted} earlier points omitted)\n") > limit:
            size -= len(lines.popleft()) + 1
            omitted += 1
        head = [f"({omitted} earlier points omitted)"] if omitted else []
        return clip("\n".join([*head, *lines]), max_tokens)


@attrs.define
class ModelSummarizer:
    """A summarizer that asks a model, falling back to an extractive summary on failure.

    Attributes:
        model: The model that writes the summary.
        fallback: Used when the model fails (any error but cancellation) or answers
            with nothing.
        failures: How many times the model failed and the fallback was used.
    """

    model: Model
    fallback: Summarizer = attrs.field(factory=ExtractiveSummarizer)
    failures: int = attrs.field(default=0, init=False)

    async def summarize(self, summary: str, messages: Sequence[Message], *, max_tokens: int) -> str:
        """Ask the model for an updated summary within ``max_tokens``."""
        transcript = "\n".join(_one_line(m, 2000) for m in messages)
        request = ModelRequest(
            (
                Message.system(
                    "You maintain a running summary of a conversation. Keep every fact, "
                    "file name, number and decision that may matter later. Answer with "
                    f"the updated summary only, in at most {max_tokens * 3 // 4} words."
                ),
                Message.user(
                    f"Current summary:\n{summary or '(none)'}\n\nNew messages:\n{transcript}"
                ),
            ),
            limits=ModelLimits(max_output_tokens=max(1, max_tokens)),
        )
        try:
            response = await self.model.complete(request)
        except Exception as exc:
            self.failures += 1
            logger.warning("summarizer model failed (%s); using the fallback", type(exc).__name__)
            return await self.fallback.summarize(summary, messages, max_tokens=max_tokens)
        text = response.text.strip()
        if not text:
            self.failures += 1
            return await self.fallback.summarize(summary, messages, max_tokens=max_tokens)
        return clip(text, max_tokens)


@attrs.frozen
class ContextStatistics:
    """Counters of a :class:`ContextWindow`.

    ``added == messages + summarized + cleared`` always holds: every message that left
    the window went through the summarizer, unless :meth:`ContextWindow.clear` dropped it.
    """

    messages: int
    tokens: int
    summary_tokens: int
    added: int
    summarized: int
    cleared: int
    folds: int
    truncated: int


class ContextWindow:
    """Recent messages in a bounded window plus a bounded running summary.

    Args:
        max_messages: Most messages kept verbatim (>= 2).
        max_tokens: Estimated-token budget of the kept messages.
        summarizer: Folds old messages into the summary (default: extractive).
        max_summary_tokens: Bound of the summary (default: a quarter of ``max_tokens``).
        max_message_tokens: A longer message is clipped when added (default: half of
            ``max_tokens``), so one huge tool result cannot break the budget.
        events: Where :class:`~mister_smith.events.ContextSummarized` goes.
        owner: The agent's name in events.

    When adding a message overflows either bound, the oldest half of the window (at
    least one message) goes to the summarizer; this repeats until both bounds hold. The
    cut never separates tool results from the call they answer: it moves back to before
    that call, or (when the call is the oldest message) past the results; results whose
    call was folded already (it alone broke the budget) are folded as they arrive.
    """

    def __init__(
        self,
        *,
        max_messages: int = 50,
        max_tokens: int = 8000,
        summarizer: Summarizer | None = None,
        max_summary_tokens: int | None = None,
        max_message_tokens: int | None = None,
        events: EventBus | None = None,
        owner: str = "agent",
    ) -> None:
        if max_messages < 2:
            raise ValueError(f"max_messages must be >= 2, got {max_messages!r}")
        if max_tokens < 16:
            raise ValueError(f"max_tokens must be >= 16, got {max_tokens!r}")
        self.max_messages = max_messages
        self.max_tokens = max_tokens
        self.max_summary_tokens = (
            max(16, max_tokens // 4) if max_summary_tokens is None else max_summary_tokens
        )
        if self.max_summary_tokens < 1:
            raise ValueError(f"max_summary_tokens must be >= 1, got {max_summary_tokens!r}")
        self.max_message_tokens = (
            max_tokens // 2 if max_message_tokens is None else min(max_message_tokens, max_tokens)
        )
        if self.max_message_tokens < 8:
            raise ValueError(f"max_message_tokens must be >= 8, got {max_message_tokens!r}")
        self.summarizer: Summarizer = (
            summarizer if summarizer is not None else ExtractiveSummarizer()
        )
        self.events = events
        self.owner = owner
        self._window: collections.deque[Message] = collections.deque()
        self._pins: collections.deque[bool] = collections.deque()
        self._pinned = 0
        self._tokens = 0
        self._summary = ""
        self._added = 0
        self._summarized = 0
        self._cleared = 0
        self._folds = 0
        self._truncated = 0

    @property
    def summary(self) -> str:
        """The running summary of every message folded out of the window."""
        return self._summary

    @property
    def tokens(self) -> int:
        """Estimated tokens of the messages in the window."""
        return self._tokens

    def messages(self) -> tuple[Message, ...]:
        """The messages in the window, oldest first."""
        return tuple(self._window)

    def __len__(self) -> int:
        return len(self._window)

    def _fit(self, message: Message) -> Message:
        if message.tokens <= self.max_message_tokens:
            return message
        self._truncated += 1
        overhead = message.tokens - estimate_tokens(message.content)
        budget = max(1, self.max_message_tokens - overhead)
        return attrs.evolve(message, content=clip(message.content, budget))

    async def add(self, message: Message, *, pin: bool = False) -> None:
        """Append ``message``; fold the oldest messages into the summary on overflow.

        A pinned message (e.g. the task an agent works on) is never folded while
        pinned; it still counts against the bounds, so pin few and unpin them with
        :meth:`unpin_all` when they stop mattering.
        """
        message = self._fit(message)
        self._window.append(message)
        self._pins.append(pin)
        self._pinned += pin
        self._tokens += message.tokens
        self._added += 1
        folds = self._folds
        while self._over():
            await self._fold()
        if self._folds == folds:
            await trio.lowlevel.checkpoint()

    async def extend(self, messages: Iterable[Message]) -> None:
        """Add each of ``messages`` in order."""
        for message in messages:
            await self.add(message)

    def unpin_all(self) -> None:
        """Let every pinned message be folded like the others from now on."""
        if self._pinned:
            self._pins = collections.deque(False for _ in self._pins)
            self._pinned = 0

    def _first_foldable(self) -> Message | None:
        if not self._pinned:
            return self._window[0] if self._window else None
        for message, pinned in zip(self._window, self._pins, strict=True):
            if not pinned:
                return message
        return None

    def _over(self) -> bool:
        first = self._first_foldable()
        return first is not None and (
            len(self._window) > self.max_messages
            or self._tokens > self.max_tokens
            or first.role is MessageRole.TOOL
        )

    @staticmethod
    def _cut(window: Sequence[Message]) -> int:
        """How many of the oldest (foldable) messages the next fold takes."""
        if window[0].role is MessageRole.TOOL:  # results whose call was folded already
            cut = 0
            while cut < len(window) and window[cut].role is MessageRole.TOOL:
                cut += 1
            return cut
        cut = max(1, len(window) // 2)
        if cut < len(window) and window[cut].role is MessageRole.TOOL:
            # keep a tool round together: cut before the call the results answer,
            # or after the results when that call is the oldest message
            back = cut
            while back > 0 and window[back].role is MessageRole.TOOL:
                back -= 1
            if back >= 1:
                return back
            while cut < len(window) and window[cut].role is MessageRole.TOOL:
                cut += 1
        return cut

    async def _fold(self) -> None:
        window = self._window
        if not self._pinned:
            cut = self._cut(window)
            folded = [window.popleft() for _ in range(cut)]
            for _ in range(cut):
                self._pins.popleft()
        else:
            free = [index for index, pinned in enumerate(self._pins) if not pinned]
            cut = self._cut([window[index] for index in free])
            taken = set(free[:cut])
            folded = [window[index] for index in free[:cut]]
            self._window = collections.deque(m for i, m in enumerate(window) if i not in taken)
            self._pins = collections.deque(p for i, p in enumerate(self._pins) if i not in taken)
        self._tokens -= sum(m.tokens for m in folded)
        self._summarized += len(folded)
        self._folds += 1
        summary = await self.summarizer.summarize(
            self._summary, folded, max_tokens=self.max_summary_tokens
        )
        self._summary = clip(summary, self.max_summary_tokens)
        if self.events is not None:
            self.events.emit(
                ContextSummarized(
                    source=self.owner,
                    agent=self.owner,
                    summarized_messages=len(folded),
                    summary=self._summary,
                )
            )

    def render(self, system_prompt: str = "") -> tuple[Message, ...]:
        """What the model sees: the system prompt, the summary, then the window."""
        head: list[Message] = []
        if system_prompt:
            head.append(Message.system(system_prompt))
        if self._summary:
            head.append(Message.system(f"{SUMMARY_HEADER}\n{self._summary}"))
        return (*head, *self._window)

    def pinned_indexes(self) -> tuple[int, ...]:
        """Positions of the pinned messages in :meth:`messages` (for a checkpoint)."""
        return tuple(index for index, pinned in enumerate(self._pins) if pinned)

    def restore(
        self, messages: Iterable[Message], summary: str, pinned: Iterable[int] = ()
    ) -> None:
        """Replace the window and the summary with a checkpoint's (the messages at the
        ``pinned`` positions pinned), as they were when it was taken."""
        window = list(messages)
        marks = set(pinned)
        self._window = collections.deque(window)
        self._pins = collections.deque(index in marks for index in range(len(window)))
        self._pinned = sum(self._pins)
        self._tokens = sum(message.tokens for message in window)
        self._summary = summary

    def clear(self) -> None:
        """Forget the window and the summary (counted as ``cleared``)."""
        self._cleared += len(self._window)
        self._window.clear()
        self._pins.clear()
        self._pinned = 0
        self._tokens = 0
        self._summary = ""

    def statistics(self) -> ContextStatistics:
        """Sizes and counters."""
        return ContextStatistics(
            messages=len(self._window),
            tokens=self._tokens,
            summary_tokens=estimate_tokens(self._summary),
            added=self._added,
            summarized=self._summarized,
            cleared=self._cleared,
            folds=self._folds,
            truncated=self._truncated,
        )
