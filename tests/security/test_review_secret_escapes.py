"""Review of issue 12, item 4: an API key echoed in *escaped* JSON was not redacted.

Attack (found in the review): the adapters redacted the key from the raw body bytes.
JSON lets a server write any character as ``\\uXXXX`` (and ``/`` as ``\\/``), so an
echo such as ``"\\u0073k-..."`` passed the byte-level redaction and the decoded answer
handed the key verbatim to the agent (its text, its tool-call arguments), and on to
every later model turn and tool. Now the decoded strings are redacted again after
parsing, and the tool-call arguments after their own decoding.
"""

from __future__ import annotations

import json

import pytest
from fake_model_servers import FakeModelServer, Reply

from mister_smith.agents import (
    AnthropicModel,
    HttpModel,
    HttpRetryPolicy,
    MalformedModelResponse,
    Message,
    ModelAuthError,
    ModelRequest,
    OpenAICompatibleModel,
)
from mister_smith.supervision import Backoff

KEY = "sk-proj/TESTKEY-9f8e7d6c5b4a39281706f5e4d3c2b1a0"
REQUEST = ModelRequest([Message.user("go")])
FAST = HttpRetryPolicy(max_attempts=1, backoff=Backoff(initial=0.0, maximum=0.0, jitter=0.0))


def escaped(text: str) -> str:
    """``text`` as a JSON string literal with every character ``\\uXXXX``-escaped."""
    return '"' + "".join(f"\\u{ord(c):04x}" for c in text) + '"'


def leaks(text: str) -> bool:
    return any(KEY[i : i + 8] in text for i in range(len(KEY) - 7))


async def complete(model_type: type[HttpModel], body: bytes, status: int = 200) -> object:
    app = FakeModelServer()
    app.push(Reply(status, body))
    async with model_type(
        "m", base_url="http://fake", api_key=KEY, transport=app.transport(), retry=FAST
    ) as model:
        return await model.complete(REQUEST)


async def test_an_escaped_key_in_an_openai_answer_is_redacted() -> None:
    assert KEY.encode() not in escaped(KEY).encode()  # the bytes never show it
    arguments = json.dumps({"message": "k=" + KEY}).replace("/", "\\/")  # a JSON string
    body = (
        '{"choices": [{"message": {"content": "your key: ' + escaped(KEY)[1:-1] + '", '
        '"tool_calls": [{"id": "a", "function": {"name": "echo", "arguments": '
        + json.dumps(arguments).replace(KEY[:8], escaped(KEY[:8])[1:-1])
        + "}}]}}]}"
    ).encode()
    assert KEY.encode() not in body
    response = await complete(OpenAICompatibleModel, body)
    text = response.text  # type: ignore[attr-defined]
    [call] = response.tool_calls  # type: ignore[attr-defined]
    assert text == "your key: ***"
    assert dict(call.arguments) == {"message": "k=***"}


async def test_an_escaped_key_in_an_anthropic_answer_is_redacted() -> None:
    body = (
        '{"content": [{"type": "text", "text": ' + escaped(KEY) + "}, "
        '{"type": "tool_use", "id": "t", "name": "echo", "input": {'
        + escaped("key")
        + ": ["
        + escaped(KEY)
        + "]}}], "
        '"stop_reason": "tool_use", "usage": {"input_tokens": 1, "output_tokens": 1}}'
    ).encode()
    response = await complete(AnthropicModel, body)
    assert response.text == "***"  # type: ignore[attr-defined]
    [call] = response.tool_calls  # type: ignore[attr-defined]
    assert dict(call.arguments) == {"key": ["***"]}


@pytest.mark.parametrize("model_type", [OpenAICompatibleModel, AnthropicModel])
async def test_an_escaped_key_in_errors_is_redacted(model_type: type[HttpModel]) -> None:
    body = '{"error": {"message": "Incorrect API key provided: ' + escaped(KEY)[1:-1] + '"}}'
    with pytest.raises(ModelAuthError) as caught:
        await complete(model_type, body.encode(), status=401)
    assert not leaks(str(caught.value))
    assert "***" in str(caught.value)
    # A malformed 2xx answer quotes a preview of what it got: no piece of the key.
    wrong = ('{"choices": [{"message": {"content": {"k": ' + escaped(KEY) + "}}}]}").encode()
    with pytest.raises(MalformedModelResponse) as bad:
        await complete(OpenAICompatibleModel, wrong)
    assert not leaks(str(bad.value))
