"""The agent loop next to calling the same model and tools by hand in raw Trio.

Both sides use the same :class:`ScriptedModel` (no latency) and the same ``echo`` tool,
so the figures isolate what the loop adds per model turn: the actor ``ask`` and mailbox,
the context window (estimated tokens, folding bounds), building the request, the
``ToolBus`` call (permission, schema validation, deadline, metrics), events
(``AgentProgress``, ``TaskCompleted``, ``ToolCalled``) and the result record.

- *turns*: tasks of ``TURNS`` turns, each a model call asking for one ``echo`` call; the
  baseline keeps the conversation in a list and awaits ``tool.execute`` inside
  ``trio.fail_after``. The figure is model turns per second.
- *parallel*: one turn asking for ``FAN_OUT`` tool calls; the baseline runs them in a
  nursery, each under ``fail_after``.
- *task latency*: one-turn tasks (the model answers at once), ``ask`` to answer, against
  one direct ``model.complete``.
- *streamed tokens*: one streamed chat completion of ``loops`` one-token chunks (each
  its own SSE event and body chunk, over ``httpx.MockTransport``) read through
  ``OpenAICompatibleModel.stream`` (SSE decoding, strict JSON, size cap, idle deadline
  per chunk, typed events, the assembled response); the baseline reads the same stream
  by hand with httpx (``aiter_lines``, ``json.loads``, the ``content`` of each delta).
  The figure is tokens per second; the ratio is the streaming overhead per token.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

import httpx
import trio

from benchmarks import BenchCase, Latency, Throughput
from mister_smith.actors import open_actor_system
from mister_smith.agents import (
    AgentSpec,
    AgentTask,
    ContextSettings,
    Message,
    ModelRequest,
    ModelResponse,
    OpenAICompatibleModel,
    ScriptedModel,
    TextDelta,
    ToolCall,
    ToolDefinition,
    spawn_agent,
)
from mister_smith.agents.script import rule
from mister_smith.events import EventBus
from mister_smith.tools import EchoTool, ToolBus

TURNS = 10
"""Model turns per task in the turns case."""

FAN_OUT = 8
"""Tool calls in the one turn of the parallel case."""


def cases(quick: bool) -> Sequence[BenchCase]:
    """Turn throughput, a parallel tool round, and task latency."""
    turns = 2_000 if quick else 20_000
    return [
        Throughput(
            name=f"agent turns, {TURNS}-turn tasks",
            unit="turns/s",
            loops=turns,
            ours=_agent_turns(1),
            baseline=_direct_turns(1),
            baseline_label="model.complete + tool.execute in fail_after, by hand",
            description=f"each turn: scripted model call + 1 echo call; tasks of {TURNS} turns",
        ),
        Throughput(
            name=f"agent turns, {FAN_OUT} parallel tool calls",
            unit="turns/s",
            loops=turns // 4,
            ours=_agent_turns(FAN_OUT),
            baseline=_direct_turns(FAN_OUT),
            baseline_label=f"model.complete + nursery of {FAN_OUT} tool calls, by hand",
            description=f"each turn: scripted model call + {FAN_OUT} concurrent echo calls",
        ),
        Throughput(
            name="streamed tokens, OpenAI SSE",
            unit="tokens/s",
            loops=turns * 5,
            ours=_adapter_stream,
            baseline=_httpx_stream,
            baseline_label="httpx aiter_lines + json.loads of each chunk, by hand",
            description="one streamed completion of `loops` one-token SSE chunks (MockTransport)",
        ),
        Latency(
            name="one-turn task latency",
            loops=turns // 2,
            ours=_agent_latency,
            baseline=_direct_latency,
            baseline_label="one direct model.complete",
            description="ask(task) to AgentResult for a model that answers at once",
        ),
    ]


def _model(calls_per_turn: int, turns: int) -> ScriptedModel:
    """Ask for ``calls_per_turn`` echo calls until ``turns`` turns are done, then answer."""

    def respond(request: ModelRequest) -> ModelResponse:
        last = request.last_assistant_message()
        done = int(last.content) if last is not None and last.content else 0
        if done + 1 >= turns:
            return ModelResponse(text="finished")
        calls = tuple(ToolCall("", "echo", {"message": f"m{i}"}) for i in range(calls_per_turn))
        return ModelResponse(text=str(done + 1), tool_calls=calls)

    return ScriptedModel([rule(lambda request: True, respond)])


def _turns_per_task(calls_per_turn: int) -> int:
    return TURNS if calls_per_turn == 1 else 2


def _agent_turns(calls_per_turn: int) -> Callable[[int], Awaitable[float]]:
    async def run(loops: int) -> float:
        turns = _turns_per_task(calls_per_turn)
        events = EventBus(history_size=0)
        spec = AgentSpec(
            "bench",
            max_turns=turns,
            max_parallel_tools=FAN_OUT,
            context=ContextSettings(max_messages=64),
        )
        async with open_actor_system(events=events) as system:
            tools = ToolBus(events=events, identities=system.identities)  # deny by default
            role = system.identities.register_role("bench")
            tools.register_tool(EchoTool(), roles=[role])
            model = _model(calls_per_turn, turns)
            ref = await spawn_agent(system, spec, model, tools, roles=[role])
            tasks = max(1, loops // turns)
            started = time.perf_counter()
            for _ in range(tasks):
                await ref.ask(AgentTask("go"))
            elapsed = time.perf_counter() - started
            await system.shutdown()
        return elapsed * loops / (tasks * turns)

    return run


def _direct_turns(calls_per_turn: int) -> Callable[[int], Awaitable[float]]:
    async def run(loops: int) -> float:
        turns = _turns_per_task(calls_per_turn)
        model = _model(calls_per_turn, turns)
        tool = EchoTool()
        definitions = (ToolDefinition("echo", tool.description, tool.input_schema.to_dict()),)
        tasks = max(1, loops // turns)
        started = time.perf_counter()
        for _ in range(tasks):
            messages: list[Message] = [Message.user("go")]
            while True:
                response = await model.complete(ModelRequest(messages, definitions))
                messages.append(Message.assistant(response.text, response.tool_calls))
                if not response.tool_calls:
                    break
                results: list[Message | None] = [None] * len(response.tool_calls)

                async def call(index: int, call: ToolCall, results: list[Message | None]) -> None:
                    with trio.fail_after(30):
                        value = await tool.execute(call.arguments)
                    results[index] = Message.tool_result(call, str(value))

                if len(response.tool_calls) == 1:
                    await call(0, response.tool_calls[0], results)
                else:
                    async with trio.open_nursery() as nursery:
                        for index, tool_call in enumerate(response.tool_calls):
                            nursery.start_soon(call, index, tool_call, results)
                messages.extend(r for r in results if r is not None)
        elapsed = time.perf_counter() - started
        return elapsed * loops / (tasks * turns)

    return run


async def _agent_latency(loops: int) -> list[float]:
    events = EventBus(history_size=0)
    latencies = []
    async with open_actor_system(events=events) as system:
        model = ScriptedModel([rule(lambda request: True, lambda r: ModelResponse(text="ok"))])
        ref = await spawn_agent(system, AgentSpec("bench"), model)
        for _ in range(loops):
            started = time.perf_counter()
            await ref.ask(AgentTask("go"))
            latencies.append(time.perf_counter() - started)
        await system.shutdown()
    return latencies


async def _direct_latency(loops: int) -> list[float]:
    model = ScriptedModel([rule(lambda request: True, lambda r: ModelResponse(text="ok"))])
    latencies = []
    for _ in range(loops):
        started = time.perf_counter()
        await model.complete(ModelRequest([Message.user("go")]))
        latencies.append(time.perf_counter() - started)
    return latencies


# --- streaming: the adapter against reading the SSE stream by hand ------------------------


class _Events(httpx.AsyncByteStream):
    """A response body of pre-built chunks, one per SSE event."""

    def __init__(self, chunks: list[bytes]) -> None:
        self._chunks = chunks

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self._chunks:
            yield chunk


def _sse_transport(tokens: int) -> httpx.MockTransport:
    """Answers every request with a stream of ``tokens`` one-token chunks and [DONE]."""
    head = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "bench"}
    chunks = [
        b"data: "
        + json.dumps({**head, "choices": [{"index": 0, "delta": {"content": f"tok{i} "}}]}).encode()
        + b"\n\n"
        for i in range(tokens)
    ]
    chunks.append(b"data: [DONE]\n\n")

    def handle(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200, headers={"content-type": "text/event-stream"}, stream=_Events(chunks)
        )

    return httpx.MockTransport(handle)


async def _adapter_stream(loops: int) -> float:
    model = OpenAICompatibleModel(
        "bench",
        base_url="http://127.0.0.1:9/v1",
        require_api_key=False,
        transport=_sse_transport(loops),
        max_response_bytes=1 << 30,
    )
    request = ModelRequest([Message.user("stream")])
    tokens = 0
    async with model:
        started = time.perf_counter()
        async with contextlib.aclosing(model.stream(request)) as events:
            async for event in events:
                if isinstance(event, TextDelta):
                    tokens += 1
        elapsed = time.perf_counter() - started
    assert tokens == loops
    return elapsed


async def _httpx_stream(loops: int) -> float:
    tokens = 0
    async with httpx.AsyncClient(transport=_sse_transport(loops)) as client:
        started = time.perf_counter()
        async with client.stream(
            "POST", "http://127.0.0.1:9/v1/chat/completions", json={"stream": True}
        ) as response:
            async for line in response.aiter_lines():
                if not line.startswith("data: ") or line == "data: [DONE]":
                    continue
                delta = json.loads(line[6:])["choices"][0]["delta"]
                if delta.get("content"):
                    tokens += 1
        elapsed = time.perf_counter() - started
    assert tokens == loops
    return elapsed
