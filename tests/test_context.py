"""Windowed context: bounds, folding into the summary, summarizers, events."""

from __future__ import annotations

import tracemalloc
from collections.abc import Sequence

import attrs
import pytest
import trio
import trio.testing
from hypothesis import given
from hypothesis import strategies as st

from mister_smith.agents import (
    ContextWindow,
    ExtractiveSummarizer,
    Message,
    MessageRole,
    ModelError,
    ModelRequest,
    ModelResponse,
    ModelSummarizer,
    ScriptedModel,
    ToolCall,
    estimate_tokens,
)
from mister_smith.agents._context import SUMMARY_HEADER
from mister_smith.agents.script import answer, rule
from mister_smith.events import ContextSummarized, EventBus


@attrs.define
class RecordingSummarizer:
    """Remembers every message it was given (and delegates to the extractive one)."""

    seen: list[Message] = attrs.field(factory=list)
    inner: ExtractiveSummarizer = attrs.field(factory=ExtractiveSummarizer)

    async def summarize(self, summary: str, messages: Sequence[Message], *, max_tokens: int) -> str:
        self.seen.extend(messages)
        return await self.inner.summarize(summary, messages, max_tokens=max_tokens)


def tag(message: Message) -> str:
    return message.content.split(" ", 1)[0]


async def test_overflow_folds_the_oldest_half_and_emits_an_event() -> None:
    bus = EventBus()
    recorder = RecordingSummarizer()
    window = ContextWindow(max_messages=4, max_tokens=10_000, summarizer=recorder, events=bus)
    window.owner = "agent-1"
    async with bus.subscribe(ContextSummarized) as events:
        for i in range(5):
            await window.add(Message.user(f"m{i} hello"))
        event = events.receive_nowait()
    assert [tag(m) for m in recorder.seen] == ["m0", "m1"]
    assert [tag(m) for m in window.messages()] == ["m2", "m3", "m4"]
    assert event.agent == "agent-1"
    assert event.summarized_messages == 2
    assert event.summary == window.summary
    assert "m0 hello" in window.summary
    assert "m1 hello" in window.summary
    stats = window.statistics()
    assert (stats.added, stats.summarized, stats.messages, stats.folds) == (5, 2, 3, 1)


async def test_token_budget_folds_too() -> None:
    window = ContextWindow(max_messages=100, max_tokens=100)
    for i in range(10):
        await window.add(Message.user(f"m{i} " + "x" * 60))  # ~20 tokens each
    assert window.tokens <= 100
    assert window.statistics().summarized > 0


async def test_fold_never_leaves_orphan_tool_results() -> None:
    window = ContextWindow(max_messages=4, max_tokens=10_000)
    calls = tuple(ToolCall(f"c{i}", "echo", {}) for i in range(3))
    await window.add(Message.user("go"))
    await window.add(Message.assistant("", calls))
    for call in calls:
        await window.add(Message.tool_result(call, "ok"))
    kept = window.messages()
    assert [m.role for m in kept] == [
        MessageRole.ASSISTANT,
        MessageRole.TOOL,
        MessageRole.TOOL,
        MessageRole.TOOL,
    ]
    assert window.statistics().summarized == 1


async def test_huge_message_is_clipped_to_fit() -> None:
    window = ContextWindow(max_messages=10, max_tokens=200)
    await window.add(Message.user("y" * 10_000))
    [message] = window.messages()
    assert message.tokens <= 100
    assert "characters truncated" in message.content
    assert window.statistics().truncated == 1


async def test_render_puts_prompt_and_summary_first() -> None:
    window = ContextWindow(max_messages=2, max_tokens=1000)
    for i in range(3):
        await window.add(Message.user(f"m{i}"))
    rendered = window.render("You are terse.")
    assert rendered[0] == Message.system("You are terse.")
    assert rendered[1].role is MessageRole.SYSTEM
    assert rendered[1].content.startswith(SUMMARY_HEADER)
    assert [m.content for m in rendered[2:]] == [m.content for m in window.messages()]


async def test_clear_counts_what_it_dropped() -> None:
    window = ContextWindow(max_messages=3, max_tokens=1000)
    await window.extend(Message.user(str(i)) for i in range(5))
    window.clear()
    stats = window.statistics()
    assert stats.added == stats.messages + stats.summarized + stats.cleared
    assert window.summary == ""


async def test_model_summarizer_and_its_fallback() -> None:
    model = ScriptedModel(
        [rule(lambda r: "(none)" in r.messages[-1].content, answer("They said m0 and m1."))]
    )
    summarizer = ModelSummarizer(model)
    window = ContextWindow(max_messages=2, max_tokens=1000, summarizer=summarizer)
    for i in range(3):
        await window.add(Message.user(f"m{i}"))
    assert window.summary == "They said m0 and m1."
    # the model knows no rule for the next fold: the extractive fallback takes over
    for i in range(3, 6):
        await window.add(Message.user(f"m{i}"))
    assert summarizer.failures >= 1
    assert "m2" in window.summary


async def test_model_summarizer_falls_back_on_model_errors() -> None:
    class Broken:
        name = "broken"

        async def complete(self, request: ModelRequest) -> ModelResponse:
            await trio.lowlevel.checkpoint()
            raise ModelError("endpoint down")

    summarizer = ModelSummarizer(Broken())
    text = await summarizer.summarize("", [Message.user("keep me")], max_tokens=50)
    assert "keep me" in text
    assert summarizer.failures == 1


def test_extractive_summary_stays_bounded_and_counts_omissions() -> None:
    summarizer = ExtractiveSummarizer(line_width=40)
    summary = ""
    for i in range(200):
        summary = summarizer.summarize_sync(summary, [Message.user(f"point {i}")], max_tokens=40)
        assert estimate_tokens(summary) <= 40
    assert summary.startswith("(")
    assert "earlier points omitted" in summary
    assert "point 199" in summary


async def test_memory_stays_bounded_over_100_000_messages() -> None:
    window = ContextWindow(max_messages=40, max_tokens=2_000, max_summary_tokens=300)

    def text(i: int) -> str:
        return f"message {i} " + "lorem ipsum " * (i % 7)

    for i in range(100_000):
        await window.add(Message.user(text(i)))
    stats = window.statistics()
    assert stats.messages <= 40
    assert stats.tokens <= 2_000
    assert stats.summary_tokens <= 300
    assert stats.added == 100_000 == stats.messages + stats.summarized
    assert "message 99999" in window.messages()[-1].content
    # and it stays flat: another 5,000 messages allocate nothing that is kept
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(100_000, 105_000):
            await window.add(Message.user(text(i)))
        after, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert after - before < 20_000
    assert peak - before < 100_000


rounds_strategy = st.lists(
    st.tuples(
        st.sampled_from(["user", "assistant", "tools"]),
        st.integers(min_value=0, max_value=400),
        st.integers(min_value=1, max_value=4),
    ),
    max_size=40,
)
"""Conversation rounds: a user or assistant message, or a call with its 1-4 results."""


@given(
    max_messages=st.integers(min_value=2, max_value=12),
    max_tokens=st.integers(min_value=16, max_value=400),
    max_summary_tokens=st.integers(min_value=8, max_value=120),
    script=rounds_strategy,
)
def test_window_and_summary_stay_bounded_and_nothing_is_lost(
    max_messages: int,
    max_tokens: int,
    max_summary_tokens: int,
    script: list[tuple[str, int, int]],
) -> None:
    async def main() -> None:
        recorder = RecordingSummarizer()
        window = ContextWindow(
            max_messages=max_messages,
            max_tokens=max_tokens,
            max_summary_tokens=max_summary_tokens,
            summarizer=recorder,
        )
        added: list[str] = []
        messages: list[Message] = []
        for index, (kind, size, calls) in enumerate(script):
            body = "z" * size
            if kind == "user":
                messages.append(Message.user(f"#{len(messages)} {body}"))
            elif kind == "assistant":
                messages.append(Message.assistant(f"#{len(messages)} {body}"))
            else:
                round_calls = tuple(
                    ToolCall(f"c{index}-{k}", "echo", {"k": k}) for k in range(calls)
                )
                messages.append(Message.assistant(f"#{len(messages)} {body}", round_calls))
                for call in round_calls:
                    messages.append(Message.tool_result(call, f"#{len(messages)} {body}"))
        for message in messages:
            await window.add(message)
            added.append(tag(message))
            # bounds hold after every add
            assert len(window) <= max_messages
            assert window.tokens <= max_tokens
            assert estimate_tokens(window.summary) <= max_summary_tokens
            # a fold never leaves tool results without the call they answer
            kept = window.messages()
            assert not kept or kept[0].role is not MessageRole.TOOL
            # nothing dropped unsummarised, order kept
            assert [tag(m) for m in recorder.seen] + [tag(m) for m in kept] == added
            stats = window.statistics()
            assert stats.added == stats.messages + stats.summarized

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))


def test_invalid_bounds_are_refused() -> None:
    with pytest.raises(ValueError):
        ContextWindow(max_messages=1)
    with pytest.raises(ValueError):
        ContextWindow(max_tokens=4)


async def test_pinned_messages_are_not_folded_until_unpinned() -> None:
    recorder = RecordingSummarizer()
    window = ContextWindow(max_messages=3, max_tokens=1000, summarizer=recorder)
    await window.add(Message.user("task do it"), pin=True)
    for i in range(6):
        await window.add(Message.assistant(f"m{i} step"))
    kept = [tag(m) for m in window.messages()]
    assert kept[0] == "task"
    assert len(kept) <= 3
    assert "task" not in [tag(m) for m in recorder.seen]
    window.unpin_all()
    for i in range(6, 9):
        await window.add(Message.assistant(f"m{i} step"))
    assert "task" in [tag(m) for m in recorder.seen]
    stats = window.statistics()
    assert stats.added == stats.messages + stats.summarized
