"""Wire conformance: every request our adapters send fits the official SDKs' request
types and the APIs' rules; the answers we parse are built from the SDKs' response types.

Each bug a check of the old adapters found has a test here that fails on them: the
OpenAI adapter sending ``max_tokens``; a refusal or a cut answer passed off as an
answer, and the empty answer then sent back as ``content: null``; Anthropic getting
``temperature``; options that never reached the API (``parallel_tool_calls`` among
them); Anthropic's cache token counts ignored; an empty tool output sent as ``""``;
dotted tool names; the CLI's retired default models.
"""

from __future__ import annotations

from typing import Any

import pytest
import trio
from fake_model_servers import FakeModelServer
from hypothesis import given
from hypothesis import strategies as st
from wire_conformance_types import (
    WireViolation,
    anthropic_message,
    check_anthropic_request,
    check_openai_request,
    openai_completion,
    text_block,
    tool_use_block,
)

from mister_smith.agents import (
    Agent,
    AgentSpec,
    AgentTask,
    AnthropicModel,
    HttpModel,
    Message,
    ModelLimits,
    ModelOptions,
    ModelRefused,
    ModelRequest,
    OpenAICompatibleModel,
    OutputTruncated,
    StopReason,
    ToolCall,
    ToolDefinition,
    UnsupportedModelOption,
    Usage,
)
from mister_smith.cli._session import http_model
from mister_smith.config import AgentSettings
from mister_smith.errors import InvalidToolName
from mister_smith.tools import EchoTool, ToolBus, tool

ECHO = ToolDefinition(
    "echo",
    "Echo a message",
    {"type": "object", "properties": {"message": {"type": "string"}}, "required": ["message"]},
)
DOTTED = ToolDefinition("files.read", "Read a file", {"type": "object", "properties": {}})


def openai(app: FakeModelServer, **options: Any) -> OpenAICompatibleModel:
    return OpenAICompatibleModel(
        "gpt-conformance", base_url="http://127.0.0.1:9/v1", api_key="k" * 20,
        transport=app.transport(), **options,
    )  # fmt: skip


def anthropic(app: FakeModelServer, **options: Any) -> AnthropicModel:
    return AnthropicModel(
        "claude-conformance", base_url="http://127.0.0.1:9", api_key="k" * 20,
        transport=app.transport(), **options,
    )  # fmt: skip


def bus_with_echo(*names: str) -> ToolBus:
    bus = ToolBus(default_policy="open")
    for name in names or ("echo",):
        bus.register_tool(EchoTool(name=name))
    return bus


# --- conversations of every shape fit both APIs ----------------------------------------

_text = st.text(min_size=0, max_size=20)
_calls = st.lists(
    st.builds(
        ToolCall,
        st.from_regex(r"call_[a-z0-9]{1,8}", fullmatch=True),
        st.sampled_from(["echo", "files.read"]),
        st.dictionaries(st.sampled_from(["message", "path"]), _text, max_size=2),
    ),
    max_size=3,
)


@st.composite
def conversations(draw: st.DrawFn) -> ModelRequest:
    """System, user, then rounds of assistant turns (text, calls, reasoning, or
    nothing at all) each followed by its tool results (empty, failed or not)."""
    messages = [Message.system(draw(_text)), Message.user(draw(_text))]
    for _ in range(draw(st.integers(0, 3))):
        calls = tuple(draw(_calls))
        reasoning = draw(
            st.sampled_from([(), ({"type": "thinking", "thinking": "hm", "signature": "s1"},)])
        )
        messages.append(Message.assistant(draw(_text), calls, reasoning))
        for call in calls:
            messages.append(Message.tool_result(call, draw(_text), is_error=draw(st.booleans())))
        if not calls:
            messages.append(Message.user(draw(_text)))
    options = ModelOptions(
        tool_choice=draw(st.sampled_from([None, "auto", "required", "none", "echo"])),
        parallel_tool_calls=draw(st.sampled_from([None, True, False])),
        stop=draw(st.sampled_from([(), ("END",)])),
        cache_control=draw(st.booleans()),
        metadata=draw(st.sampled_from([{}, {"user_id": "u-1"}])),
    )
    return ModelRequest(
        messages, [ECHO, DOTTED], ModelLimits(max_output_tokens=2048, temperature=0.2), options
    )


@given(request=conversations())
def test_every_conversation_fits_the_openai_request_type(request: ModelRequest) -> None:
    check_openai_request(openai(FakeModelServer()).build_body(request))


@given(request=conversations())
def test_every_conversation_fits_the_anthropic_request_type(request: ModelRequest) -> None:
    check_anthropic_request(anthropic(FakeModelServer()).build_body(request))


def test_the_checks_catch_what_the_old_adapters_sent() -> None:
    """The checker is not a rubber stamp: the old adapters' bodies fail it."""
    old_openai = {
        "model": "m",
        "max_tokens": 64,
        "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": None}],
    }
    with pytest.raises(WireViolation, match="max_tokens"):
        check_openai_request(old_openai)
    del old_openai["max_tokens"]
    with pytest.raises(WireViolation, match="without content"):
        check_openai_request(old_openai)
    with pytest.raises(WireViolation, match="does not take"):
        check_openai_request({"model": "m", "messages": [], "max_tokns": 3})
    with pytest.raises(WireViolation, match="does not fit"):  # found only by iterating
        check_openai_request({"model": "m", "messages": [{"role": "robot", "content": "x"}]})
    old_anthropic: dict[str, Any] = {
        "model": "m",
        "max_tokens": 64,
        "temperature": 0.2,
        "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
    }
    with pytest.raises(WireViolation, match="temperature"):
        check_anthropic_request(old_anthropic)
    del old_anthropic["temperature"]
    old_anthropic["messages"][0]["content"].append(
        {"type": "tool_result", "tool_use_id": "t", "content": ""}
    )
    with pytest.raises(WireViolation, match="empty tool_result"):
        check_anthropic_request(old_anthropic)
    with pytest.raises(WireViolation, match="tool name"):
        check_anthropic_request(
            {
                "model": "m",
                "max_tokens": 9,
                "messages": [{"role": "user", "content": "x"}],
                "tools": [{"name": "files.read", "input_schema": {"type": "object"}}],
            }
        )


# --- OpenAI: the bugs, one by one -----------------------------------------------------


async def test_openai_sends_max_completion_tokens_and_options_reach_the_api() -> None:
    app = FakeModelServer()
    app.push(openai_completion("ok"))
    options = ModelOptions(
        tool_choice="files.read",
        parallel_tool_calls=False,
        response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": {}}},
        stop=("END",),
        reasoning_effort="low",
        metadata={"team": "a"},
        extra_body={"service_tier": "flex"},
    )
    async with openai(app) as model:
        await model.complete(
            ModelRequest([Message.user("hi")], [ECHO, DOTTED], ModelLimits(77), options)
        )
    body = app.requests[0].body
    check_openai_request(body)
    assert body["max_completion_tokens"] == 77
    assert body["tool_choice"] == {"type": "function", "function": {"name": "files_read"}}
    assert body["parallel_tool_calls"] is False
    assert body["response_format"]["type"] == "json_schema"
    assert (body["stop"], body["reasoning_effort"]) == (["END"], "low")
    assert (body["metadata"], body["service_tier"]) == ({"team": "a"}, "flex")
    assert [t["function"]["name"] for t in body["tools"]] == ["echo", "files_read"]


async def test_older_servers_can_still_get_max_tokens() -> None:
    app = FakeModelServer()
    app.push(openai_completion("ok"))
    async with openai(app, max_tokens_field="max_tokens") as model:
        await model.complete(ModelRequest([Message.user("hi")]))
    assert app.requests[0].body["max_tokens"] == 1024
    with pytest.raises(ValueError, match="max_tokens_field"):
        openai(app, max_tokens_field="max_output")


async def test_agent_spec_parallel_tool_calls_false_reaches_both_apis() -> None:
    spec = AgentSpec("worker", parallel_tool_calls=False)
    app = FakeModelServer()
    app.push(openai_completion("done"), anthropic_message([text_block("done")]))
    for model in (openai(app), anthropic(app)):
        async with model:
            await Agent(spec, model, bus_with_echo()).run_task(AgentTask("go"), "w", None)
    first, second = (request.body for request in app.requests)
    check_openai_request(first)
    check_anthropic_request(second)
    assert first["parallel_tool_calls"] is False
    assert second["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": True}


async def test_a_refusal_is_a_typed_outcome_and_the_next_task_still_works() -> None:
    """Before: the refusal was dropped, the task 'succeeded' with '' and, with
    persistent context, the next request carried ``content: null`` (a 400)."""
    app = FakeModelServer()
    app.push(openai_completion(None, refusal="I can't help with that."), openai_completion("ok"))
    agent = Agent(AgentSpec("w", persistent_context=True), openai(app))
    with pytest.raises(ModelRefused, match="can't help") as caught:
        await agent.run_task(AgentTask("do something bad"), "w", None)
    assert caught.value.refusal == "I can't help with that."
    result = await agent.run_task(AgentTask("say ok"), "w", None)
    assert result.answer == "ok"
    for request in app.requests:
        check_openai_request(request.body)
    assert all(m["role"] != "assistant" for m in app.requests[1].body["messages"])


async def test_a_cut_answer_is_a_typed_outcome_not_an_answer() -> None:
    app = FakeModelServer()
    app.push(openai_completion("The answer is that the", finish_reason="length"))
    agent = Agent(AgentSpec("w", limits=ModelLimits(max_output_tokens=5)), openai(app))
    with pytest.raises(OutputTruncated) as caught:
        await agent.run_task(AgentTask("explain"), "w", None)
    assert (caught.value.partial, caught.value.limit) == ("The answer is that the", 5)


async def test_an_empty_answer_is_never_sent_back_as_null_content() -> None:
    app = FakeModelServer()
    app.push(openai_completion(""), openai_completion("second"))
    agent = Agent(AgentSpec("w", persistent_context=True), openai(app))
    assert (await agent.run_task(AgentTask("one"), "w", None)).answer == ""
    await agent.run_task(AgentTask("two"), "w", None)
    check_openai_request(app.requests[1].body)


async def test_openai_tool_round_trip_with_dotted_names_and_cached_usage() -> None:
    app = FakeModelServer()
    app.push(
        openai_completion(None, [("call_1", "files_read", {"message": "x"})], cached_tokens=8),
        openai_completion("read it"),
    )
    bus = bus_with_echo("files.read")
    result = await Agent(AgentSpec("w"), openai(app), bus).run_task(AgentTask("go"), "w", None)
    assert result.answer == "read it"
    assert (result.tool_calls, result.tool_errors) == (1, 0)
    assert result.usage == Usage(22, 14, 2, cache_read_tokens=8)
    for request in app.requests:
        check_openai_request(request.body)
    tool_message = app.requests[1].body["messages"][-1]
    assert (tool_message["tool_call_id"], tool_message["content"]) == (
        "call_1",
        '{"message": "x"}',  # what echo returned, for the tool registered as files.read
    )


async def test_an_empty_tool_output_is_sent_as_text() -> None:
    @tool
    async def nothing() -> str:
        return ""

    bus = ToolBus(default_policy="open")
    bus.register_tool(nothing)
    app = FakeModelServer()
    app.push(
        openai_completion(None, [("call_1", "nothing", {})]),
        openai_completion("fine"),
        anthropic_message([tool_use_block("toolu_1", "nothing", {})]),
        anthropic_message([text_block("fine")]),
    )
    for model in (openai(app), anthropic(app)):
        async with model:
            await Agent(AgentSpec("w"), model, bus).run_task(AgentTask("go"), "w", None)
    check_openai_request(app.requests[1].body)
    check_anthropic_request(app.requests[3].body)
    assert app.requests[1].body["messages"][-1]["content"] == "(no output)"


# --- Anthropic: the bugs, one by one ---------------------------------------------------


async def test_anthropic_gets_no_temperature_unless_asked() -> None:
    app = FakeModelServer()
    app.push(anthropic_message([text_block("a")]), anthropic_message([text_block("b")]))
    request = ModelRequest([Message.user("hi")], limits=ModelLimits(64, temperature=0.3))
    async with anthropic(app) as model:
        await model.complete(request)
    async with anthropic(app, forward_temperature=True) as model:
        await model.complete(request)
    check_anthropic_request(app.requests[0].body)
    assert "temperature" not in app.requests[0].body
    assert app.requests[1].body["temperature"] == 0.3


async def test_anthropic_usage_counts_cache_reads_and_writes() -> None:
    app = FakeModelServer()
    app.push(
        anthropic_message(
            [text_block("hi")],
            input_tokens=10,
            output_tokens=4,
            cache_creation_input_tokens=100,
            cache_read_input_tokens=1000,
        )
    )
    async with anthropic(app) as model:
        response = await model.complete(ModelRequest([Message.user("hi")]))
    assert response.usage == Usage(1110, 4, 1, cache_read_tokens=1000, cache_write_tokens=100)
    assert response.usage.as_dict()["cache_read_tokens"] == 1000


async def test_anthropic_options_thinking_replay_and_cache_breakpoints() -> None:
    app = FakeModelServer()
    thinking = {"type": "thinking", "thinking": "let me see", "signature": "sig-1"}
    app.push(
        anthropic_message([thinking, tool_use_block("toolu_1", "files_read", {"message": "m"})]),
        anthropic_message([text_block("done")]),
    )
    spec = AgentSpec(
        "w",
        limits=ModelLimits(max_output_tokens=4096, temperature=0.5),
        model_options=ModelOptions(
            thinking_budget=2048,
            cache_control=True,
            stop=("END",),
            metadata={"user_id": "u-1"},
            tool_choice="auto",
            response_format={"type": "json_schema", "json_schema": {"schema": {"type": "object"}}},
        ),
    )
    model = anthropic(app, forward_temperature=True)
    agent = Agent(spec, model, bus_with_echo("files.read"))
    result = await agent.run_task(AgentTask("go"), "w", None)
    assert result.answer == "done"
    first, second = (request.body for request in app.requests)
    for body in (first, second):
        check_anthropic_request(body, temperature_allowed=True)
        assert "temperature" not in body  # never with thinking
        assert body["thinking"] == {"type": "enabled", "budget_tokens": 2048}
        assert body["stop_sequences"] == ["END"]
        assert body["metadata"] == {"user_id": "u-1"}
        assert body["output_config"]["format"] == {
            "type": "json_schema",
            "schema": {"type": "object"},
        }
        assert body["tools"][-1]["cache_control"] == {"type": "ephemeral"}
    assistant = second["messages"][1]
    assert assistant["content"][0] == thinking  # replayed with its signature
    assert assistant["content"][1]["name"] == "files_read"
    assert second["messages"][-1]["content"][-1]["cache_control"] == {"type": "ephemeral"}


async def test_anthropic_refusal_is_a_typed_outcome() -> None:
    app = FakeModelServer()
    app.push(anthropic_message([text_block("No.")], stop_reason="refusal"))
    with pytest.raises(ModelRefused):
        await Agent(AgentSpec("w"), anthropic(app)).run_task(AgentTask("x"), "w", None)


async def test_options_an_api_cannot_take_are_refused_before_sending() -> None:
    app = FakeModelServer()
    cases: list[tuple[HttpModel, ModelOptions]] = [
        (openai(app), ModelOptions(thinking_budget=2048)),
        (openai(app), ModelOptions(tool_choice="missing")),
        (anthropic(app), ModelOptions(metadata={"team": "a"})),
        (anthropic(app), ModelOptions(response_format={"type": "json_object"})),
        (anthropic(app), ModelOptions(reasoning_effort="minimal")),
        (anthropic(app), ModelOptions(thinking_budget=4096)),  # not below max_tokens
    ]
    for model, options in cases:
        with pytest.raises(UnsupportedModelOption):
            await model.complete(ModelRequest([Message.user("x")], [ECHO], options=options))
    assert app.requests == []
    with pytest.raises(ValueError, match="thinking_budget"):
        ModelOptions(thinking_budget=10)
    with pytest.raises(ValueError, match="reasoning_effort"):
        ModelOptions(reasoning_effort="extreme")


# --- tool names ------------------------------------------------------------------------


def test_tool_names_models_cannot_call_are_refused_at_registration() -> None:
    bus = ToolBus()

    @tool(name="files read")
    async def spaced(path: str) -> str:
        return path

    with pytest.raises(InvalidToolName, match="files read"):
        bus.register_tool(spaced)
    with pytest.raises(InvalidToolName):
        bus.register_tool(EchoTool(name="x" * 65))
    bus.register_tool(EchoTool(name="files.read"))  # a dot is mapped on the wire


async def test_two_names_mapping_to_one_wire_name_are_refused() -> None:
    app = FakeModelServer()
    clash = ToolDefinition("files_read")
    with pytest.raises(InvalidToolName, match="both"):
        await openai(app).complete(ModelRequest([Message.user("x")], [DOTTED, clash]))
    assert app.requests == []


# --- the CLI's default models ----------------------------------------------------------


def test_cli_models_come_from_the_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "k" * 20)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "k" * 20)
    monkeypatch.delenv("MISTER_SMITH_OPENAI_MODEL", raising=False)
    monkeypatch.delenv("MISTER_SMITH_ANTHROPIC_MODEL", raising=False)
    defaults = AgentSettings()
    assert http_model("openai", settings=defaults).model == "gpt-5-mini"
    assert http_model("anthropic", settings=defaults).model == "claude-haiku-4-5"
    chosen = AgentSettings(openai_model="gpt-5", anthropic_model="claude-sonnet-4-5")
    assert http_model("openai", settings=chosen).model == "gpt-5"
    assert http_model("anthropic", settings=chosen).model == "claude-sonnet-4-5"
    monkeypatch.setenv("MISTER_SMITH_OPENAI_MODEL", "local-llama")
    assert http_model("openai", settings=chosen).model == "local-llama"
    with pytest.raises(ValueError, match="openai_model"):
        AgentSettings(openai_model="")


async def test_stop_reasons_map_from_both_apis() -> None:
    app = FakeModelServer()
    app.push(
        openai_completion("x", finish_reason="content_filter"),
        anthropic_message([text_block("x")], stop_reason="max_tokens"),
    )
    async with openai(app) as first, anthropic(app) as second:
        assert (await first.complete(ModelRequest([Message.user("x")]))).stop_reason is (
            StopReason.REFUSAL
        )
        assert (await second.complete(ModelRequest([Message.user("x")]))).stop_reason is (
            StopReason.MAX_TOKENS
        )
    await trio.lowlevel.checkpoint()
