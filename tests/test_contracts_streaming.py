"""Streaming: models stream their answers (server-sent events, tool calls assembled from
fragments), agents stream typed events with backpressure, a consumer that leaves
cancels the work and the HTTP request, and the stream is bounded in size and time."""

from __future__ import annotations

import io
from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from contextlib import aclosing
from typing import Any

import attrs
import httpx
import pytest
import trio
from fake_model_servers import FakeModelServer, Reply, error_reply
from hypothesis import given
from hypothesis import strategies as st
from wire_conformance_types import (
    anthropic_events,
    check_anthropic_request,
    check_openai_request,
    openai_chunks,
    openai_completion,
    sse,
)

from mister_smith import RuntimeManager
from mister_smith.agents import (
    Agent,
    AgentFinalResult,
    AgentSpec,
    AgentTask,
    AgentTextDelta,
    AgentToolCallFinished,
    AgentToolCallStarted,
    AgentTurnEnded,
    AnthropicModel,
    HttpRetryPolicy,
    MalformedModelResponse,
    Message,
    ModelHTTPError,
    ModelRateLimited,
    ModelRequest,
    ModelResponse,
    ModelResponseTooLarge,
    ModelStreamEvent,
    ModelTimeout,
    OpenAICompatibleModel,
    ResponseCompleted,
    ScriptedModel,
    SSEDecoder,
    StopReason,
    TextDelta,
    ToolCall,
    ToolCallStarted,
    ToolDefinition,
    Usage,
    spawn_agent,
    stream_model,
)
from mister_smith.agents.script import after_tool, answer, call_tools, first_turn, rule
from mister_smith.errors import ActorCrashed
from mister_smith.events import Event, EventBus, TaskCompleted, TaskFailed
from mister_smith.supervision import Backoff
from mister_smith.tools import EchoTool, ToolBus

EVENT_STREAM = (("content-type", "text/event-stream"),)
ECHO = ToolDefinition("echo", "Echo", {"type": "object", "properties": {}})
FAST = HttpRetryPolicy(max_attempts=2, backoff=Backoff(initial=0.01, maximum=0.01, jitter=0.0))


def streamed(chunks: list[bytes]) -> Reply:
    return Reply(200, stream=lambda: iter(chunks), headers=EVENT_STREAM)


def openai(app: FakeModelServer | None = None, **options: Any) -> OpenAICompatibleModel:
    transport = (app or FakeModelServer()).transport()
    options.setdefault("retry", FAST)
    return OpenAICompatibleModel(
        "gpt-stream", base_url="http://127.0.0.1:9/v1", api_key="sk-" + "s" * 20,
        transport=transport, **options,
    )  # fmt: skip


def anthropic(app: FakeModelServer, **options: Any) -> AnthropicModel:
    return AnthropicModel(
        "claude-stream", base_url="http://127.0.0.1:9", api_key="k" * 20,
        transport=app.transport(), retry=FAST, **options,
    )  # fmt: skip


def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "id": "chatcmpl-s",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "gpt-stream-1",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        **extra,
    }


OPENAI_TOOL_STREAM = openai_chunks(
    [
        chunk({"role": "assistant", "content": "Let "}),
        chunk({"content": "me look."}),
        chunk(
            {
                "tool_calls": [
                    {
                        "index": 0,
                        "id": "call_a",
                        "type": "function",
                        "function": {"name": "files_read", "arguments": '{"pa'},
                    }
                ]
            }
        ),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": 'th": "x"}'}}]}),
        chunk({}, "tool_calls"),
        {
            "id": "chatcmpl-s",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "gpt-stream-1",
            "choices": [],
            "usage": {
                "prompt_tokens": 30,
                "completion_tokens": 9,
                "total_tokens": 39,
                "prompt_tokens_details": {"cached_tokens": 10},
            },
        },
    ]
)


async def events_of(model: Any, request: ModelRequest) -> list[ModelStreamEvent]:
    async with aclosing(stream_model(model, request)) as events:
        return [event async for event in events]


# --- HTTP adapters: SSE streams built from the SDKs' types --------------------------------


async def test_openai_stream_assembles_text_and_tool_call_fragments() -> None:
    app = FakeModelServer()
    app.push(streamed(OPENAI_TOOL_STREAM))
    request = ModelRequest([Message.user("read x")], [ToolDefinition("files.read")])
    async with openai(app) as model:
        events = await events_of(model, request)
    texts = [e.text for e in events if isinstance(e, TextDelta)]
    assert texts == ["Let ", "me look."]
    assert ToolCallStarted(0, "call_a", "files.read") in events
    final = events[-1]
    assert isinstance(final, ResponseCompleted)
    assert final.response.text == "Let me look."
    assert final.response.tool_calls == (ToolCall("call_a", "files.read", {"path": "x"}),)
    assert final.response.usage == Usage(30, 9, 1, cache_read_tokens=10)
    assert final.response.stop_reason is StopReason.TOOL_USE
    body = app.requests[0].body
    check_openai_request(body)
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}


async def test_openai_streamed_refusal_and_length_cut() -> None:
    app = FakeModelServer()
    app.push(
        streamed(openai_chunks([chunk({"refusal": "I can't."}), chunk({}, "stop")])),
        streamed(openai_chunks([chunk({"content": "The answer is"}), chunk({}, "length")])),
    )
    async with openai(app) as model:
        refused = (await events_of(model, ModelRequest([Message.user("x")])))[-1]
        cut = (await events_of(model, ModelRequest([Message.user("y")])))[-1]
    assert isinstance(refused, ResponseCompleted)
    assert isinstance(cut, ResponseCompleted)
    assert (refused.response.stop_reason, refused.response.refusal) == (
        StopReason.REFUSAL,
        "I can't.",
    )
    assert cut.response.stop_reason is StopReason.MAX_TOKENS


def delta(index: int, **fields: str) -> dict[str, Any]:
    return {"type": "content_block_delta", "index": index, "delta": fields}


ANTHROPIC_STREAM = anthropic_events(
    [
        {
            "type": "message_start",
            "message": {
                "id": "msg_s",
                "type": "message",
                "role": "assistant",
                "model": "claude-stream-1",
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": {
                    "input_tokens": 20,
                    "output_tokens": 1,
                    "cache_read_input_tokens": 100,
                    "cache_creation_input_tokens": 5,
                },
            },
        },
        {
            "type": "content_block_start",
            "index": 0,
            "content_block": {"type": "thinking", "thinking": "", "signature": ""},
        },
        delta(0, type="thinking_delta", thinking="hmm"),
        delta(0, type="signature_delta", signature="sig"),
        {"type": "content_block_stop", "index": 0},
        {"type": "ping"},
        {"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}},
        delta(1, type="text_delta", text="Checking"),
        {"type": "content_block_stop", "index": 1},
        {
            "type": "content_block_start",
            "index": 2,
            "content_block": {
                "type": "tool_use",
                "id": "toolu_s",
                "name": "files_read",
                "input": {},
            },
        },
        delta(2, type="input_json_delta", partial_json='{"path"'),
        delta(2, type="input_json_delta", partial_json=': "y"}'),
        {"type": "content_block_stop", "index": 2},
        {
            "type": "message_delta",
            "delta": {"stop_reason": "tool_use", "stop_sequence": None},
            "usage": {"output_tokens": 42},
        },
        {"type": "message_stop"},
    ]
)


async def test_anthropic_stream_assembles_thinking_text_and_tool_input() -> None:
    app = FakeModelServer()
    app.push(streamed(ANTHROPIC_STREAM))
    request = ModelRequest([Message.user("read y")], [ToolDefinition("files.read")])
    async with anthropic(app) as model:
        events = await events_of(model, request)
    final = events[-1]
    assert isinstance(final, ResponseCompleted)
    response = final.response
    assert response.text == "Checking"
    assert response.tool_calls == (ToolCall("toolu_s", "files.read", {"path": "y"}),)
    assert response.reasoning == ({"type": "thinking", "thinking": "hmm", "signature": "sig"},)
    assert response.usage == Usage(125, 42, 1, cache_read_tokens=100, cache_write_tokens=5)
    assert response.model == "claude-stream-1"
    body = app.requests[0].body
    check_anthropic_request(body)
    assert body["stream"] is True


async def test_an_error_event_mid_stream_is_typed_and_not_retried() -> None:
    app = FakeModelServer()
    overloaded = {"type": "error", "error": {"type": "overloaded_error", "message": "busy"}}
    app.push(streamed(anthropic_events([overloaded])), streamed(ANTHROPIC_STREAM))
    async with anthropic(app) as model:
        with pytest.raises(ModelRateLimited, match="busy"):
            await events_of(model, ModelRequest([Message.user("x")]))
    assert len(app.requests) == 1
    app = FakeModelServer()
    app.push(streamed(list(sse([(None, {"error": {"message": "bad thing"}})]))))
    async with openai(app) as model:
        with pytest.raises(ModelHTTPError, match="bad thing"):
            await events_of(model, ModelRequest([Message.user("x")]))


async def test_retried_until_the_stream_starts() -> None:
    app = FakeModelServer()
    app.push(error_reply(503), streamed(OPENAI_TOOL_STREAM))
    async with openai(app) as model:
        events = await events_of(model, ModelRequest([Message.user("x")], [ECHO]))
    assert isinstance(events[-1], ResponseCompleted)
    assert len(app.requests) == 2


async def test_a_server_that_ignores_stream_is_read_as_json() -> None:
    app = FakeModelServer()
    app.push(openai_completion("whole answer"))
    async with openai(app) as model:
        events = await events_of(model, ModelRequest([Message.user("x")]))
    assert events[0] == TextDelta("whole answer")
    assert isinstance(events[-1], ResponseCompleted)


async def test_complete_can_go_through_the_stream() -> None:
    app = FakeModelServer()
    app.push(streamed(OPENAI_TOOL_STREAM))
    async with openai(app, streaming=True) as model:
        response = await model.complete(ModelRequest([Message.user("x")], [ECHO]))
    assert response.tool_calls[0].arguments == {"path": "x"}
    check_openai_request(app.requests[0].body)


# --- bounded in size and time --------------------------------------------------------------


def endless_text() -> Iterator[bytes]:
    while True:
        yield b'data: {"choices": [{"index": 0, "delta": {"content": "spam "}}]}\n\n'


async def test_an_endless_stream_is_cut_at_max_response_bytes() -> None:
    app = FakeModelServer()
    app.push(Reply(200, stream=endless_text, headers=EVENT_STREAM))
    async with openai(app, max_response_bytes=4096) as model:
        with pytest.raises(ModelResponseTooLarge, match="4096"):
            await events_of(model, ModelRequest([Message.user("x")]))


async def test_an_endless_line_is_refused_at_the_cap() -> None:
    app = FakeModelServer()
    app.push(Reply(200, stream=lambda: iter([b"data: " + b"x" * 5000]), headers=EVENT_STREAM))
    async with openai(app, max_response_bytes=2048) as model:
        with pytest.raises(MalformedModelResponse):
            await events_of(model, ModelRequest([Message.user("x")]))


async def test_a_compressed_stream_is_refused() -> None:
    app = FakeModelServer()
    app.push(
        Reply(
            200,
            stream=lambda: iter([b"\x1f\x8b"]),
            headers=(*EVENT_STREAM, ("content-encoding", "gzip")),
        )
    )
    async with openai(app) as model:
        with pytest.raises(MalformedModelResponse, match="compressed"):
            await events_of(model, ModelRequest([Message.user("x")]))


class Slow(httpx.AsyncByteStream):
    """An SSE body: ``count`` text chunks ``every`` seconds apart, then [DONE] (or a
    stall); records whether it was closed before the end."""

    def __init__(self, count: int, every: float, *, stall: bool = False) -> None:
        self.count, self.every, self.stall = count, every, stall
        self.closed_early = False
        self.sent = 0
        self._iterator: AsyncGenerator[bytes, None] | None = None

    def __aiter__(self) -> AsyncIterator[bytes]:
        self._iterator = self._generate()
        return self._iterator

    async def _generate(self) -> AsyncGenerator[bytes, None]:
        try:
            for _ in range(self.count):
                self.sent += 1
                yield b'data: {"choices": [{"index": 0, "delta": {"content": "w "}}]}\n\n'
                await trio.sleep(self.every)
            if self.stall:
                await trio.sleep_forever()
            yield b"data: [DONE]\n\n"
        except BaseException:
            self.closed_early = True
            raise

    async def aclose(self) -> None:
        if self.sent < self.count or self.stall:
            self.closed_early = True
        if self._iterator is not None:
            await self._iterator.aclose()


def slow_model(body: Slow, **options: Any) -> tuple[OpenAICompatibleModel, list[int]]:
    requests: list[int] = []

    async def handle(request: httpx.Request) -> httpx.Response:
        requests.append(1)
        await trio.lowlevel.checkpoint()
        return httpx.Response(200, headers=list(EVENT_STREAM), stream=body)

    model = OpenAICompatibleModel(
        "gpt", base_url="http://127.0.0.1:9/v1", require_api_key=False,
        transport=httpx.MockTransport(handle), retry=FAST, **options,
    )  # fmt: skip
    return model, requests


async def test_a_long_answer_that_keeps_coming_outlives_the_attempt_timeout(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """The bug: a 60 s attempt timeout on a non-streamed call cut long answers and
    retried them (paid twice). Streaming, it bounds silences, not the answer."""
    model, requests = slow_model(
        Slow(10, 30.0), attempt_timeout=60.0, timeout=600.0, streaming=True
    )
    started = trio.current_time()
    async with model:
        response = await model.complete(ModelRequest([Message.user("long")]))
    assert response.text == "w " * 10
    assert trio.current_time() - started == 300
    assert requests == [1]  # sent once


async def test_a_stalled_stream_times_out_and_is_not_retried(
    autojump_clock: trio.testing.MockClock,
) -> None:
    body = Slow(2, 1.0, stall=True)
    model, requests = slow_model(body, attempt_timeout=60.0)
    async with model:
        with pytest.raises(ModelTimeout, match="sent nothing for 60"):
            await events_of(model, ModelRequest([Message.user("x")]))
    assert requests == [1]
    assert body.closed_early


async def test_leaving_the_stream_early_closes_the_http_request(
    autojump_clock: trio.testing.MockClock,
) -> None:
    body = Slow(1000, 1.0)
    model, _ = slow_model(body)
    async with model, aclosing(model.stream(ModelRequest([Message.user("x")]))) as events:
        async for event in events:
            assert event == TextDelta("w ")
            break
    assert body.closed_early
    assert body.sent < 5


@given(
    events=st.lists(
        st.tuples(st.sampled_from(["", "delta", "stop"]), st.text(max_size=30)), max_size=8
    ),
    cuts=st.lists(st.integers(1, 7), max_size=30),
    newline=st.sampled_from([b"\n", b"\r\n", b"\r"]),
)
def test_sse_decoding_does_not_depend_on_how_the_bytes_are_cut(
    events: list[tuple[str, str]], cuts: list[int], newline: bytes
) -> None:
    lines: list[bytes] = []
    for name, data in events:
        if name:
            lines.append(b"event: " + name.encode())
        lines.extend(b"data: " + part.encode() for part in data.splitlines() or [""])
        lines.append(b": a comment")
        lines.append(b"")
    body = newline.join([*lines, b""])
    decoder = SSEDecoder("test", 10_000)
    decoded = []
    position = 0
    for cut in [*cuts, len(body)]:
        decoded.extend(decoder.feed(body[position : position + cut]))
        position += cut
    decoded.extend(decoder.feed(body[position:]))
    decoded.extend(decoder.flush())
    expected = [(name or "message", "\n".join(data.splitlines() or [""])) for name, data in events]
    assert [(e.event, e.data) for e in decoded] == expected


# --- agents: typed events, backpressure, cancellation --------------------------------------


def echo_bus() -> ToolBus:
    bus = ToolBus(default_policy="open")
    bus.register_tool(EchoTool())
    return bus


def tool_then_answer(**options: Any) -> ScriptedModel:
    return ScriptedModel(
        [
            rule(first_turn, call_tools(("echo", {"message": "ping"}), text="Calling echo.")),
            rule(after_tool("echo"), answer("The echo said ping, all done.")),
        ],
        **options,
    )


async def test_an_agent_streams_typed_events_in_order() -> None:
    agent = Agent(AgentSpec("w"), tool_then_answer(), echo_bus())
    async with agent.stream_task("go", "w") as stream:
        events = [event async for event in stream]
    kinds = [type(e).__name__ for e in events]
    assert kinds[:2] == ["AgentTextDelta", "AgentTextDelta"]  # "Calling", " echo."
    assert kinds[2:5] == ["AgentToolCallStarted", "AgentToolCallFinished", "AgentTurnEnded"]
    assert kinds[-1] == "AgentFinalResult"
    finished = events[3]
    assert isinstance(finished, AgentToolCallFinished)
    assert (finished.call.name, finished.is_error) == ("echo", False)
    text = "".join(e.text for e in events if isinstance(e, AgentTextDelta) and e.turn == 2)
    assert text == "The echo said ping, all done."
    final = events[-1]
    assert isinstance(final, AgentFinalResult)
    assert final.result.answer == text
    assert stream.result is final.result
    plain = await Agent(AgentSpec("w"), tool_then_answer(), echo_bus()).run_task(
        AgentTask("go"), "w", None
    )
    assert (plain.answer, plain.usage, plain.turns) == (
        final.result.answer,
        final.result.usage,
        final.result.turns,
    )


class CountingModel:
    """Streams ``words`` words and counts how many it has produced."""

    name = "counting"

    def __init__(self, words: int) -> None:
        self.words = words
        self.produced = 0

    async def complete(self, request: ModelRequest) -> ModelResponse:
        raise AssertionError("an agent streaming asks the model to stream")

    async def stream(self, request: ModelRequest) -> AsyncGenerator[ModelStreamEvent, None]:
        for _ in range(self.words):
            self.produced += 1
            await trio.lowlevel.checkpoint()
            yield TextDelta("w ")
        yield ResponseCompleted(ModelResponse(text="w " * self.words))


async def test_backpressure_the_agent_waits_for_its_consumer(
    autojump_clock: trio.testing.MockClock,
) -> None:
    model = CountingModel(1000)
    agent = Agent(AgentSpec("w"), model)
    async with agent.stream_task("go", "w") as stream:
        async for _ in stream:
            await trio.sleep(60)  # a slow consumer
            break
        assert model.produced <= 2
    assert model.produced <= 2  # leaving cancelled the rest


async def test_leaving_early_cancels_the_agent_and_emits_stream_closed(
    autojump_clock: trio.testing.MockClock,
) -> None:
    events = EventBus()
    body = Slow(1000, 1.0)
    model, _ = slow_model(body)
    async with model:
        agent = Agent(AgentSpec("w"), model)
        async with agent.stream_task("go", "w", events) as stream:
            async for event in stream:
                assert isinstance(event, AgentTextDelta)
                break
    assert body.closed_early
    [failed] = events.history(TaskFailed)
    assert failed.error_type == "StreamClosed"


async def test_an_agent_actor_streams_and_survives_an_early_exit(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with RuntimeManager.open() as runtime:
        bus = runtime.tool_bus
        bus.register_tool(EchoTool(), policy="open")
        agent = await spawn_agent(
            runtime.actor_system, AgentSpec("w"), tool_then_answer(stream_delay=1.0), bus
        )
        async with agent.stream("go", timeout=30) as stream:
            seen = [event async for event in stream]
        assert isinstance(seen[-1], AgentFinalResult)
        assert any(isinstance(e, AgentToolCallStarted) for e in seen)
        assert any(isinstance(e, AgentTurnEnded) for e in seen)
        async with agent.stream("go again") as stream:
            async for _ in stream:
                break  # leave at the first word
        result = await agent.ask("once more", timeout=30)
        assert result.answer == "The echo said ping, all done."
        await runtime.graceful_shutdown()


async def test_an_agent_failing_mid_stream_raises_when_the_block_ends() -> None:
    async with RuntimeManager.open() as runtime:
        agent = await spawn_agent(  # no rule answers after the tool call: the agent fails
            runtime.actor_system,
            AgentSpec("w"),
            ScriptedModel([rule(first_turn, call_tools(("nope", {})))]),
        )
        with pytest.raises(ActorCrashed):
            async with agent.stream("go", timeout=30) as stream:
                async for _ in stream:
                    pass
        await runtime.graceful_shutdown()


async def test_streamed_openai_agent_round_trip_conforms() -> None:
    app = FakeModelServer()
    app.push(
        streamed(OPENAI_TOOL_STREAM),
        streamed(openai_chunks([chunk({"content": "Done."}), chunk({}, "stop")])),
    )
    bus = ToolBus(default_policy="open")
    bus.register_tool(EchoTool(name="files.read"))
    async with openai(app) as model:
        agent = Agent(AgentSpec("w"), model, bus)
        async with agent.stream_task("read x", "w") as stream:
            events = [event async for event in stream]
    final = events[-1]
    assert isinstance(final, AgentFinalResult)
    assert final.result.answer == "Done."
    for request in app.requests:
        check_openai_request(request.body)
    tool_message = app.requests[1].body["messages"][-1]
    assert tool_message["tool_call_id"] == "call_a"
    assert "message" in tool_message["content"]  # echo wants a message: a tool error
    assert attrs.has(type(final))


async def test_stream_events_announce_what_a_member_writes_for_live_displays() -> None:
    """``mister-smith demo`` members stream: the bars show the tail of what each model
    writes, and each finished task says how much was streamed."""
    from mister_smith.agents import AgentRole, AgentTextStreamed
    from mister_smith.cli._demo import member_spec
    from mister_smith.cli._display import Display
    from mister_smith.supervision import TreeSnapshot

    events = EventBus()
    spec = member_spec(AgentRole("writer", "writes"), AgentSpec("writer"))
    assert spec.stream_events
    await Agent(spec, tool_then_answer(), echo_bus()).run_task(AgentTask("go"), "writer", events)
    streamed = events.history(AgentTextStreamed)
    assert "".join(e.text for e in streamed) == "Calling echo.The echo said ping, all done."
    display = Display(
        io.StringIO(),
        color=False,
        live=False,
        tree=lambda: TreeSnapshot("root", "supervisor", "running"),
        started=0.0,
    )
    history: list[Event] = events.history()
    for event in history:
        display.describe(event)
        if isinstance(event, AgentTextStreamed):
            assert display.agents["writer"].writing.endswith(event.text.strip())
    [done] = events.history(TaskCompleted)
    display.agents["writer"].streamed = 42
    assert "42 characters streamed" in (display.describe(done) or "")
