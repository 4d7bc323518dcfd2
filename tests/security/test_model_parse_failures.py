"""Model adapters: every parse failure is a MalformedModelResponse (issue 12, item 4).

Attacks reproduced: a 74-byte answer with ``"prompt_tokens": 1e400`` escaped as
``OverflowError``; deeply nested JSON as ``RecursionError``; wrong types, non-JSON tool
arguments, ``NaN``/``Infinity``, negative or absurd token counts. Hypothesis then throws
arbitrary values into every field of valid answers.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from fake_model_servers import FakeModelServer, Reply, anthropic_reply, openai_reply
from hypothesis import given
from hypothesis import strategies as st

from mister_smith.agents import (
    AnthropicModel,
    HttpModel,
    HttpRetryPolicy,
    MalformedModelResponse,
    Message,
    ModelRequest,
    ModelResponse,
    OpenAICompatibleModel,
)

REQUEST = ModelRequest([Message.user("go")])
DEEP = b"[" * 100_000 + b"]" * 100_000


def openai_body(**usage: str) -> bytes:
    fields = ", ".join(f'"{k}": {v}' for k, v in usage.items())
    return b'{"choices": [{"message": {"content": "hi"}}], "usage": {%s}}' % fields.encode()


def openai_call(arguments: str) -> bytes:
    call = {"id": "a", "function": {"name": "echo", "arguments": arguments}}
    return json.dumps({"choices": [{"message": {"content": None, "tool_calls": [call]}}]}).encode()


def nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


OPENAI_ATTACKS = {
    "overflow-1e400": b'{"choices":[{"message":{"content":"x"}}],"usage":{"prompt_tokens":1e400}}',
    "recursion": DEEP,
    "nested-choice": b'{"choices": ' + DEEP + b"}",
    "nan-tokens": openai_body(prompt_tokens="NaN"),
    "infinity-tokens": openai_body(completion_tokens="Infinity"),
    "minus-infinity": openai_body(completion_tokens="-Infinity"),
    "negative-tokens": openai_body(prompt_tokens="-5"),
    "huge-tokens": openai_body(prompt_tokens="1" + "0" * 30),
    "5000-digit-int": openai_body(prompt_tokens="9" * 5000),
    "bool-tokens": openai_body(prompt_tokens="true"),
    "string-tokens": openai_body(prompt_tokens='"many"'),
    "fractional-tokens": openai_body(prompt_tokens="1.5"),
    "args-not-json": openai_call("{not json"),
    "args-nan": openai_call('{"x": NaN}'),
    "args-1e400": openai_call('{"x": 1e400}'),
    "args-not-object": openai_call("[1, 2]"),
    "args-deep": openai_call(json.dumps({"x": nested(200)})),
    "args-recursion": openai_call("[" * 50_000 + "]" * 50_000),
    "tool-calls-not-list": b'{"choices": [{"message": {"content": "x", "tool_calls": 5}}]}',
    "tool-call-id-object": json.dumps(
        {
            "choices": [
                {
                    "message": {
                        "tool_calls": [{"id": {"a": 1}, "function": {"name": "e", "arguments": ""}}]
                    }
                }
            ]
        }
    ).encode(),
    "model-not-text": b'{"choices": [{"message": {"content": "x"}}], "model": [1]}',
    "not-utf8": b'{"choices": "\xff\xfe"}',
    "empty": b"",
    "top-level-nan": b"NaN",
}

ANTHROPIC_ATTACKS = {
    "overflow-1e400": b'{"content": [], "usage": {"input_tokens": 1e400}}',
    "recursion": DEEP,
    "deep-input": json.dumps(
        {"content": [{"type": "tool_use", "id": "t", "name": "e", "input": {"x": nested(100)}}]}
    ).encode(),
    "nan-output": b'{"content": [], "usage": {"output_tokens": NaN}}',
    "negative-input": b'{"content": [], "usage": {"input_tokens": -1}}',
    "huge-output": b'{"content": [], "usage": {"output_tokens": 100000000000000}}',
    "input-not-object": b'{"content": [{"type": "tool_use", "name": "e", "input": "x"}]}',
    "id-number": b'{"content": [{"type": "tool_use", "id": 7, "name": "e", "input": {}}]}',
    "text-not-text": b'{"content": [{"type": "text", "text": 5}]}',
}


async def complete_with(model_type: type[HttpModel], body: bytes) -> ModelResponse:
    app = FakeModelServer()
    app.push(Reply(200, body))
    async with model_type(
        "m",
        base_url="http://fake",
        api_key="k",
        transport=app.transport(),
        retry=HttpRetryPolicy(max_attempts=1),
    ) as model:
        return await model.complete(REQUEST)


@pytest.mark.parametrize("body", list(OPENAI_ATTACKS.values()), ids=list(OPENAI_ATTACKS))
async def test_openai_attacks_are_malformed_responses(body: bytes) -> None:
    with pytest.raises(MalformedModelResponse) as caught:
        await complete_with(OpenAICompatibleModel, body)
    assert len(str(caught.value)) < 600  # a bounded message, whatever the body


@pytest.mark.parametrize("body", list(ANTHROPIC_ATTACKS.values()), ids=list(ANTHROPIC_ATTACKS))
async def test_anthropic_attacks_are_malformed_responses(body: bytes) -> None:
    with pytest.raises(MalformedModelResponse) as caught:
        await complete_with(AnthropicModel, body)
    assert len(str(caught.value)) < 600


async def test_integral_float_token_counts_and_missing_usage_are_accepted() -> None:
    response = await complete_with(OpenAICompatibleModel, openai_body(prompt_tokens="12.0"))
    assert response.usage.input_tokens == 12
    response = await complete_with(AnthropicModel, b'{"content": [{"type": "text", "text": "ok"}]}')
    assert (response.text, response.usage.input_tokens) == ("ok", 0)


# --- properties: any value anywhere ------------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**30), 10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
raw_numbers = st.sampled_from(["NaN", "Infinity", "-Infinity", "1e400", "-1e999", "9" * 5000])


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a node of ``value`` (the root included)."""
    found = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            found.extend(paths(child, (*prefix, key)))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found.extend(paths(child, (*prefix, index)))
    return found


def replaced(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    copy = dict(value) if isinstance(value, dict) else list(value)
    copy[path[0]] = replaced(value[path[0]], path[1:], new)
    return copy


VALID = {
    OpenAICompatibleModel: openai_reply("t", [("a", "echo", {"m": "x"})]).body,
    AnthropicModel: anthropic_reply("t", [("a", "echo", {"m": "x"})]).body,
}


def parse_only(model_type: type[HttpModel], content: bytes) -> None:
    model = model_type("m", base_url="http://fake", require_api_key=False)
    try:
        response = model.parse_body(content)
    except MalformedModelResponse:
        return
    assert isinstance(response, ModelResponse)


@given(
    model_type=st.sampled_from([OpenAICompatibleModel, AnthropicModel]),
    data=st.data(),
    new=json_values,
)
def test_any_value_in_any_field_is_a_response_or_malformed(
    model_type: type[HttpModel], data: st.DataObject, new: Any
) -> None:
    valid = VALID[model_type]
    path = data.draw(st.sampled_from(paths(valid)), label="path")
    parse_only(model_type, json.dumps(replaced(valid, path, new)).encode())


@given(
    model_type=st.sampled_from([OpenAICompatibleModel, AnthropicModel]),
    data=st.data(),
    number=raw_numbers,
)
def test_any_out_of_range_number_in_any_field_is_malformed(
    model_type: type[HttpModel], data: st.DataObject, number: str
) -> None:
    valid = VALID[model_type]
    path = data.draw(st.sampled_from(paths(valid)), label="path")
    marker = "__NUMBER__"
    text = json.dumps(replaced(valid, path, marker)).replace(f'"{marker}"', number)
    model = model_type("m", base_url="http://fake", require_api_key=False)
    with pytest.raises(MalformedModelResponse):
        model.parse_body(text.encode())


@given(st.binary(max_size=200))
def test_arbitrary_bytes_are_a_response_or_malformed(content: bytes) -> None:
    parse_only(OpenAICompatibleModel, content)
    parse_only(AnthropicModel, content)
