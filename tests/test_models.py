"""Models: the scripted model, and the HTTP adapters against fake servers on 127.0.0.1."""

from __future__ import annotations

import logging
import random

import pytest
import trio
from fake_model_servers import (
    FakeModelServer,
    Reply,
    anthropic_reply,
    error_reply,
    openai_reply,
    serve_fake,
)

from mister_smith.agents import (
    AnthropicModel,
    HttpRetryPolicy,
    MalformedModelResponse,
    Message,
    MissingApiKey,
    ModelAuthError,
    ModelError,
    ModelHTTPError,
    ModelLimits,
    ModelRateLimited,
    ModelRequest,
    ModelTimeout,
    OpenAICompatibleModel,
    ScriptedModel,
    ScriptExhausted,
    StopReason,
    ToolCall,
    ToolDefinition,
    Usage,
)
from mister_smith.agents.script import (
    after_tool,
    answer,
    answer_with_tool_results,
    call_tools,
    first_turn,
    rule,
    user_matches,
)
from mister_smith.errors import CircuitOpenError, NetworkError
from mister_smith.events import CircuitStateChanged, EventBus
from mister_smith.supervision import Backoff, CircuitBreaker

SECRET = "sk-test-0123456789-secret"
FAST = HttpRetryPolicy(max_attempts=3, backoff=Backoff(initial=0.01, maximum=0.05, jitter=0.0))
ECHO = ToolDefinition(
    "echo",
    "Echo a message",
    {"type": "object", "properties": {"message": {"type": "string"}}, "required": ["message"]},
)


def conversation_with_tool_round() -> ModelRequest:
    call = ToolCall("call-1", "echo", {"message": "hi"})
    return ModelRequest(
        [
            Message.system("be brief"),
            Message.user("say hi"),
            Message.assistant("", (call,)),
            Message.tool_result(call, "hi"),
            Message.tool_result(ToolCall("call-2", "echo", {}), "Timeout", is_error=True),
        ],
        [ECHO],
        ModelLimits(max_output_tokens=64, temperature=0.0),
    )


# --- scripted model -------------------------------------------------------------------


async def test_scripted_model_is_deterministic_and_accounts_usage() -> None:
    model = ScriptedModel(
        [
            rule(first_turn, call_tools(("echo", {"message": "a"}), ("echo", {"message": "b"}))),
            rule(after_tool("echo"), answer_with_tool_results("got:\n{results}"), "finish"),
        ]
    )
    first = await model.complete(ModelRequest([Message.user("go")], [ECHO]))
    assert [c.id for c in first.tool_calls] == ["call-1", "call-2"]
    assert first.stop_reason is StopReason.TOOL_USE
    assert first.usage.calls == 1
    assert first.usage.input_tokens > 0
    results = [Message.tool_result(c, c.arguments["message"]) for c in first.tool_calls]
    second = await model.complete(
        ModelRequest([Message.user("go"), Message.assistant("", first.tool_calls), *results])
    )
    assert second.text == "got:\na\nb"
    assert second.is_final
    stats = model.statistics()
    assert stats.calls == 2
    assert stats.rule_hits == {"rule-1": 1, "finish": 1}
    assert stats.usage == first.usage + second.usage


async def test_scripted_model_without_matching_rule_raises_typed_error() -> None:
    model = ScriptedModel([rule(user_matches("weather"), answer("sunny"))])
    assert (await model.complete(ModelRequest([Message.user("The weather?")]))).text == "sunny"
    with pytest.raises(ScriptExhausted):
        await model.complete(ModelRequest([Message.user("stocks?")]))


async def test_scripted_model_latency_is_on_the_trio_clock(autojump_clock: trio.abc.Clock) -> None:
    model = ScriptedModel(
        [(first_turn, answer(lambda r: r.messages[-1].content.upper()))], latency=2
    )
    start = trio.current_time()
    response = await model.complete(ModelRequest([Message.user("abc")]))
    assert response.text == "ABC"
    assert trio.current_time() - start == 2


def test_usage_adds_up() -> None:
    total = sum([Usage(1, 2, 1), Usage(3, 4, 1)], Usage())
    assert total == Usage(4, 6, 2)
    assert total.as_dict() == {
        "input_tokens": 4,
        "output_tokens": 6,
        "total_tokens": 10,
        "model_calls": 2,
        "cache_read_tokens": 0,
        "cache_write_tokens": 0,
    }
    with pytest.raises(ValueError):
        Usage(-1)


# --- OpenAI-compatible over a socket ---------------------------------------------------


async def test_openai_happy_path_and_wire_format() -> None:
    app = FakeModelServer()
    app.push(openai_reply("hello there", prompt_tokens=21, completion_tokens=3))
    async with (
        serve_fake(app) as url,
        OpenAICompatibleModel("gpt-fake", base_url=f"{url}/v1", api_key=SECRET) as model,
    ):
        response = await model.complete(conversation_with_tool_round())
    assert response.text == "hello there"
    assert response.usage == Usage(21, 3, 1)
    assert response.stop_reason is StopReason.END_TURN
    assert response.model == "fake-gpt"
    [request] = app.requests
    assert request.path == "/v1/chat/completions"
    assert request.headers["authorization"] == f"Bearer {SECRET}"
    body = request.body
    assert body["model"] == "gpt-fake"
    assert body["max_completion_tokens"] == 64  # max_tokens is refused by reasoning models
    assert "max_tokens" not in body
    assert body["temperature"] == 0.0
    assert body["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "echo",
                "description": "Echo a message",
                "parameters": ECHO.input_schema,
            },
        }
    ]
    assert body["messages"] == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "say hi"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call-1",
                    "type": "function",
                    "function": {"name": "echo", "arguments": '{"message":"hi"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call-1", "content": "hi"},
        {"role": "tool", "tool_call_id": "call-2", "content": "ERROR: Timeout"},
    ]


async def test_openai_tool_calls_are_parsed() -> None:
    app = FakeModelServer()
    app.push(openai_reply(None, [("a", "echo", {"message": "x"}), ("b", "echo", {"message": "y"})]))
    async with (
        serve_fake(app) as url,
        OpenAICompatibleModel("m", base_url=url, require_api_key=False) as model,
    ):
        response = await model.complete(ModelRequest([Message.user("go")], [ECHO]))
    assert response.tool_calls == (
        ToolCall("a", "echo", {"message": "x"}),
        ToolCall("b", "echo", {"message": "y"}),
    )
    assert response.stop_reason is StopReason.TOOL_USE
    assert "authorization" not in app.requests[0].headers


async def test_openai_retries_429_then_succeeds() -> None:
    app = FakeModelServer()
    app.push(error_reply(429, "slow down", retry_after="0.01"), openai_reply("ok"))
    async with (
        serve_fake(app) as url,
        OpenAICompatibleModel("m", base_url=url, api_key=SECRET, retry=FAST) as model,
    ):
        response = await model.complete(ModelRequest([Message.user("go")]))
        stats = model.statistics()
    assert response.text == "ok"
    assert len(app.requests) == 2
    assert (stats.attempts, stats.retries, stats.breaker_state) == (2, 1, "closed")


async def test_openai_rate_limited_until_retries_run_out() -> None:
    app = FakeModelServer()
    app.push(*[error_reply(429, "slow down", retry_after="0")] * 3)
    async with (
        serve_fake(app) as url,
        OpenAICompatibleModel("m", base_url=url, api_key=SECRET, retry=FAST) as model,
    ):
        with pytest.raises(ModelRateLimited) as caught:
            await model.complete(ModelRequest([Message.user("go")]))
    assert caught.value.status == 429
    assert caught.value.retry_after == 0
    assert "slow down" in str(caught.value)
    assert len(app.requests) == 3


async def test_5xx_opens_the_endpoint_breaker() -> None:
    app = FakeModelServer()
    app.push(*[error_reply(503, "overloaded")] * 4)
    bus = EventBus()
    breaker = CircuitBreaker("model-endpoint", failure_threshold=3, reset_timeout=60, events=bus)
    async with (
        bus.subscribe(CircuitStateChanged) as changes,
        serve_fake(app) as url,
        OpenAICompatibleModel(
            "m", base_url=url, api_key=SECRET, retry=FAST, breaker=breaker
        ) as model,
    ):
        with pytest.raises(ModelHTTPError) as caught:
            await model.complete(ModelRequest([Message.user("go")]))
        assert caught.value.status == 503
        with pytest.raises(CircuitOpenError):
            await model.complete(ModelRequest([Message.user("go")]))
        change = changes.receive_nowait()
    assert len(app.requests) == 3  # the third failure opened it; the next call never left
    assert (change.old_state, change.new_state) == ("closed", "open")
    assert model.statistics().breaker_state == "open"
    assert isinstance(caught.value, NetworkError)


async def test_hanging_response_hits_the_deadline() -> None:
    app = FakeModelServer()
    app.push(*[Reply(hang=True)] * 3)
    async with (
        serve_fake(app) as url,
        OpenAICompatibleModel(
            "m", base_url=url, api_key=SECRET, timeout=0.4, attempt_timeout=0.15, retry=FAST
        ) as model,
    ):
        start = trio.current_time()
        with pytest.raises(ModelTimeout) as caught:
            await model.complete(ModelRequest([Message.user("go")]))
        elapsed = trio.current_time() - start
    assert 0.15 <= elapsed < 2.0
    assert isinstance(caught.value, TimeoutError)
    assert model.breaker.statistics().failures >= 1


async def test_malformed_json_is_a_typed_error_and_not_retried() -> None:
    app = FakeModelServer()
    app.push(Reply(200, b"{not json"))
    async with (
        serve_fake(app) as url,
        OpenAICompatibleModel("m", base_url=url, api_key=SECRET, retry=FAST) as model,
    ):
        with pytest.raises(MalformedModelResponse) as caught:
            await model.complete(ModelRequest([Message.user("go")]))
    assert len(app.requests) == 1
    assert isinstance(caught.value, ValueError)
    assert "not JSON" in str(caught.value)


@pytest.mark.parametrize(
    "body",
    [
        {"choices": []},
        {"choices": [{"message": "text"}]},
        [1, 2],
        {"choices": [{"message": {"content": 5}}]},
        {
            "choices": [
                {
                    "message": {
                        "content": None,
                        "tool_calls": [{"id": "a", "function": {"name": "x", "arguments": "{"}}],
                    }
                }
            ]
        },
        {"choices": [{"message": {"content": "hi"}}], "usage": {"prompt_tokens": "many"}},
    ],
)
async def test_openai_wrong_shapes_are_malformed(body: object) -> None:
    app = FakeModelServer()
    app.push(Reply(200, body))
    async with OpenAICompatibleModel(
        "m", base_url="http://fake", api_key=SECRET, transport=app.transport()
    ) as model:
        with pytest.raises(MalformedModelResponse):
            await model.complete(ModelRequest([Message.user("go")]))


async def test_auth_errors_are_not_retried() -> None:
    app = FakeModelServer()
    app.push(error_reply(401, "bad key"), openai_reply("never"))
    async with OpenAICompatibleModel(
        "m", base_url="http://fake", api_key=SECRET, transport=app.transport(), retry=FAST
    ) as model:
        with pytest.raises(ModelAuthError):
            await model.complete(ModelRequest([Message.user("go")]))
    assert len(app.requests) == 1


async def test_client_errors_are_not_retried() -> None:
    app = FakeModelServer()
    app.push(error_reply(400, "bad request"), openai_reply("never"))
    async with OpenAICompatibleModel(
        "m", base_url="http://fake", api_key=SECRET, transport=app.transport(), retry=FAST
    ) as model:
        with pytest.raises(ModelHTTPError) as caught:
            await model.complete(ModelRequest([Message.user("go")]))
    assert caught.value.status == 400
    assert model.breaker.statistics().consecutive_failures == 0


async def test_unreachable_endpoint_is_a_network_error() -> None:
    with trio.socket.socket() as sock:  # a port nobody listens on
        await sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    async with OpenAICompatibleModel(
        "m", base_url=f"http://127.0.0.1:{port}", api_key=SECRET, retry=FAST
    ) as model:
        with pytest.raises(ModelError) as caught:
            await model.complete(ModelRequest([Message.user("go")]))
    assert "cannot reach" in str(caught.value)
    assert model.statistics().attempts == 3


async def test_backoff_schedule_is_exact_in_virtual_time(autojump_clock: trio.abc.Clock) -> None:
    app = FakeModelServer()
    app.push(error_reply(503), error_reply(502), openai_reply("third time lucky"))
    seen: list[float] = []
    inner = app.transport()

    class Clocked(type(inner)):  # type: ignore[misc]
        async def handle_async_request(self, request):  # type: ignore[no-untyped-def]
            seen.append(trio.current_time())
            return await inner.handle_async_request(request)

    policy = HttpRetryPolicy(max_attempts=3, backoff=Backoff(initial=0.5, maximum=10, jitter=0.0))
    async with OpenAICompatibleModel(
        "m",
        base_url="http://fake",
        api_key=SECRET,
        transport=Clocked(lambda r: None),
        retry=policy,
        rng=random.Random(1),
    ) as model:
        start = trio.current_time()
        response = await model.complete(ModelRequest([Message.user("go")]))
    assert response.text == "third time lucky"
    assert [t - start for t in seen] == [0.0, 0.5, 1.5]


async def test_retry_after_is_honoured_in_virtual_time(autojump_clock: trio.abc.Clock) -> None:
    app = FakeModelServer()
    app.push(error_reply(429, retry_after="7"), openai_reply("ok"))
    async with OpenAICompatibleModel(
        "m", base_url="http://fake", api_key=SECRET, transport=app.transport()
    ) as model:
        start = trio.current_time()
        assert (await model.complete(ModelRequest([Message.user("go")]))).text == "ok"
    assert trio.current_time() - start == 7


async def test_total_deadline_in_virtual_time(autojump_clock: trio.abc.Clock) -> None:
    app = FakeModelServer()
    app.push(Reply(hang=True))
    async with OpenAICompatibleModel(
        "m",
        base_url="http://fake",
        api_key=SECRET,
        transport=app.transport(),
        timeout=30,
        attempt_timeout=None,
    ) as model:
        start = trio.current_time()
        with pytest.raises(ModelTimeout):
            await model.complete(ModelRequest([Message.user("go")]))
    assert trio.current_time() - start == 30


# --- Anthropic over a socket -------------------------------------------------------------


async def test_anthropic_tool_use_and_wire_format() -> None:
    app = FakeModelServer()
    app.push(anthropic_reply("Let me check.", [("toolu_1", "echo", {"message": "hi"})]))
    async with (
        serve_fake(app) as url,
        AnthropicModel("claude-fake", base_url=url, api_key=SECRET) as model,
    ):
        response = await model.complete(conversation_with_tool_round())
    assert response.text == "Let me check."
    assert response.tool_calls == (ToolCall("toolu_1", "echo", {"message": "hi"}),)
    assert response.stop_reason is StopReason.TOOL_USE
    assert response.usage == Usage(13, 5, 1)
    [request] = app.requests
    assert request.path == "/v1/messages"
    assert request.headers["x-api-key"] == SECRET
    assert request.headers["anthropic-version"] == "2023-06-01"
    body = request.body
    assert body["system"] == "be brief"
    assert body["max_tokens"] == 64
    assert body["tools"] == [
        {"name": "echo", "description": "Echo a message", "input_schema": ECHO.input_schema}
    ]
    assert body["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "say hi"}]},
        {
            "role": "assistant",
            "content": [
                {"type": "tool_use", "id": "call-1", "name": "echo", "input": {"message": "hi"}}
            ],
        },
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "call-1",
                    "content": "hi",
                    "is_error": False,
                },
                {
                    "type": "tool_result",
                    "tool_use_id": "call-2",
                    "content": "Timeout",
                    "is_error": True,
                },
            ],
        },
    ]


async def test_anthropic_errors_retry_and_breaker() -> None:
    app = FakeModelServer()
    app.push(
        error_reply(529, "overloaded"),
        error_reply(429, "rate", retry_after="0"),
        anthropic_reply("done"),
    )
    async with (
        serve_fake(app) as url,
        AnthropicModel("c", base_url=url, api_key=SECRET, retry=FAST) as model,
    ):
        response = await model.complete(ModelRequest([Message.user("go")]))
        assert response.text == "done"
        assert model.breaker.statistics().failures == 1
        app.push(Reply(200, {"content": "nope"}))
        with pytest.raises(MalformedModelResponse):
            await model.complete(ModelRequest([Message.user("go")]))
        app.push(Reply(hang=True))
        model.timeout = 0.2
        with pytest.raises(ModelTimeout):
            await model.complete(ModelRequest([Message.user("go")]))


async def test_anthropic_starts_with_a_user_turn_after_folding() -> None:
    app = FakeModelServer()
    app.push(anthropic_reply("ok"))
    async with AnthropicModel(
        "c", base_url="http://fake", api_key=SECRET, transport=app.transport()
    ) as model:
        await model.complete(ModelRequest([Message.system("s"), Message.assistant("earlier")]))
    assert app.requests[0].body["messages"][0]["role"] == "user"


# --- credentials -----------------------------------------------------------------------


def test_missing_api_key_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    with pytest.raises(MissingApiKey, match="OPENAI_API_KEY"):
        OpenAICompatibleModel("m")
    with pytest.raises(MissingApiKey, match="ANTHROPIC_API_KEY"):
        AnthropicModel("c")
    monkeypatch.setenv("MY_KEY", SECRET)
    model = OpenAICompatibleModel("m", api_key_env="MY_KEY")
    assert SECRET not in repr(model)
    assert SECRET not in model.name
    assert SECRET not in str(vars(model))


async def test_api_key_is_never_logged(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", SECRET)
    caplog.set_level(logging.DEBUG)
    app = FakeModelServer()
    app.push(error_reply(500), error_reply(429, retry_after="0"), error_reply(403, "denied"))
    async with (
        serve_fake(app) as url,
        AnthropicModel("c", base_url=url, retry=FAST) as model,
    ):
        with pytest.raises(ModelAuthError) as caught:
            await model.complete(ModelRequest([Message.user("go")]))
    assert app.requests[0].headers["x-api-key"] == SECRET
    assert caplog.records
    for record in caplog.records:
        assert SECRET not in record.getMessage()
    assert SECRET not in str(caught.value)
    assert SECRET not in repr(caught.value)
