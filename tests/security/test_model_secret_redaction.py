"""Model adapters: an API key echoed back by a server never shows up in errors
(issue 12, item 4).

Attack reproduced: an endpoint (or a proxy in front of it) answers an error that
quotes the credentials it received, e.g. ``Incorrect API key provided: sk-...``; the
adapter put that text in its exception, which ends up in logs, ``TaskFailed`` events
and the model context of other agents. The key is placed where a naive excerpt would
cut it in half (the 200-character excerpt, the 80-character preview), so redacting
after truncation would leak a prefix.
"""

from __future__ import annotations

import json
import logging

import pytest
from fake_model_servers import FakeModelServer, Reply, error_reply, openai_reply, serve_fake

from mister_smith.agents import (
    AnthropicModel,
    HttpModel,
    HttpRetryPolicy,
    MalformedModelResponse,
    Message,
    ModelAuthError,
    ModelError,
    ModelHTTPError,
    ModelRateLimited,
    ModelRequest,
    OpenAICompatibleModel,
)
from mister_smith.supervision import Backoff

KEY = "sk-TESTKEY-9f8e7d6c5b4a39281706f5e4d3c2b1a0"
REQUEST = ModelRequest([Message.user("go")])
FAST = HttpRetryPolicy(max_attempts=2, backoff=Backoff(initial=0.0, maximum=0.0, jitter=0.0))


def leaks(text: str) -> bool:
    """Whether ``text`` holds the key or any 8-character piece of it."""
    return any(KEY[i : i + 8] in text for i in range(len(KEY) - 7))


def assert_clean(error: BaseException) -> None:
    """No trace of the key in the error, its args or its chain."""
    current: BaseException | None = error
    while current is not None:
        for text in (str(current), repr(current), *map(str, current.args)):
            assert not leaks(text), text
        current = current.__cause__ or current.__context__


def echo(status: int, prefix_length: int) -> Reply:
    """An error answer quoting the key after ``prefix_length`` characters."""
    return error_reply(status, "x" * prefix_length + f"Incorrect API key provided: {KEY}.")


@pytest.mark.parametrize("model_type", [OpenAICompatibleModel, AnthropicModel])
@pytest.mark.parametrize(
    ("reply", "error_type"),
    [
        (echo(401, 0), ModelAuthError),
        (echo(403, 160), ModelAuthError),  # the key straddles the 200-character excerpt
        (echo(400, 150), ModelHTTPError),
        (echo(429, 10), ModelRateLimited),
        (echo(503, 140), ModelHTTPError),
        (Reply(500, f"plain text, not JSON, with the key {KEY} in it".encode()), ModelHTTPError),
        (Reply(200, (" " * 60 + KEY).encode()), MalformedModelResponse),
        (Reply(200, {"choices": [{"message": {"content": {"key": KEY}}}]}), MalformedModelResponse),
    ],
    ids=["401", "403-straddle", "400-straddle", "429", "503", "500-text", "200-text", "200-shape"],
)
async def test_echoed_key_is_redacted_from_errors(
    model_type: type[HttpModel],
    reply: Reply,
    error_type: type[ModelError],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    app = FakeModelServer()
    app.push(reply, reply)
    async with model_type(
        "m", base_url="http://fake", api_key=KEY, transport=app.transport(), retry=FAST
    ) as model:
        with pytest.raises(error_type) as caught:
            await model.complete(REQUEST)
    assert_clean(caught.value)
    if reply.status != 200:
        assert "***" in str(caught.value)
    for record in caplog.records:
        assert not leaks(record.getMessage())


async def test_echoed_key_in_tool_arguments_is_redacted_over_a_socket() -> None:
    bad_arguments = {
        "choices": [
            {
                "message": {
                    "tool_calls": [
                        {"id": "a", "function": {"name": "echo", "arguments": [KEY] * 3}}
                    ]
                }
            }
        ]
    }
    app = FakeModelServer()
    app.push(Reply(200, bad_arguments))
    async with (
        serve_fake(app) as url,
        OpenAICompatibleModel("m", base_url=url, api_key=KEY, retry=FAST) as model,
    ):
        with pytest.raises(MalformedModelResponse, match="not an object") as caught:
            await model.complete(REQUEST)
    assert app.requests[0].headers["authorization"] == f"Bearer {KEY}"  # it was sent
    assert_clean(caught.value)


async def test_a_key_echoed_into_an_answer_does_not_reach_the_agent() -> None:
    app = FakeModelServer()
    app.push(openai_reply(f"your key is {KEY}", [("a", "echo", {"message": KEY})]))
    async with OpenAICompatibleModel(
        "m", base_url="http://fake", api_key=KEY, transport=app.transport()
    ) as model:
        response = await model.complete(REQUEST)
    assert response.text == "your key is ***"
    assert response.tool_calls[0].arguments == {"message": "***"}
    assert not leaks(json.dumps([response.text, dict(response.tool_calls[0].arguments)]))


async def test_short_keys_are_not_redacted_into_the_body() -> None:
    """A one-letter "key" (local servers) must not mangle every answer."""
    app = FakeModelServer()
    app.push(openai_reply("keep every k", prompt_tokens=3))
    async with OpenAICompatibleModel(
        "m", base_url="http://fake", api_key="k", transport=app.transport()
    ) as model:
        response = await model.complete(REQUEST)
    assert (response.text, response.usage.input_tokens) == ("keep every k", 3)
