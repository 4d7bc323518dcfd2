"""Typed outputs: ``AgentSpec(output_type=...)`` makes the answer a validated value.

The schema is offered as the ``final_result`` tool; a wrong answer is sent back to the
model with every error (path and reason) for a bounded number of retries, then
:class:`OutputValidationError`; the result's ``output`` holds the typed value.
"""

from __future__ import annotations

import enum
from typing import Any, Literal

import attrs
import pytest
import trio
from fake_model_servers import FakeModelServer
from hypothesis import given
from hypothesis import strategies as st
from wire_conformance_types import (
    anthropic_message,
    check_anthropic_request,
    check_openai_request,
    openai_completion,
    tool_use_block,
)

from mister_smith import RuntimeManager
from mister_smith.agents import (
    FINAL_RESULT_TOOL,
    Agent,
    AgentSpec,
    AgentTask,
    AnthropicModel,
    Message,
    MessageRole,
    ModelRequest,
    ModelResponse,
    OpenAICompatibleModel,
    OutputSpec,
    OutputValidationError,
    ScriptedModel,
    spawn_agent,
)
from mister_smith.agents.script import always, answer, final_answer, rule
from mister_smith.events import EventBus, TaskFailed


@attrs.frozen
class City:
    """A city and what we know of it."""

    name: str
    population: int = attrs.field(validator=attrs.validators.ge(0))
    capital: bool = False


class Mood(enum.Enum):
    HAPPY = "happy"
    SAD = "sad"


def sequence(*responders: Any) -> ScriptedModel:
    """A model answering the n-th request with the n-th responder."""
    calls = iter(responders)
    return ScriptedModel([rule(always, lambda request: next(calls)(request))])


async def run(spec: AgentSpec, model: Any, events: EventBus | None = None) -> Any:
    return await Agent(spec, model).run_task(AgentTask("which city?"), "typed", events)


async def test_an_attrs_answer_becomes_the_typed_output() -> None:
    model = sequence(final_answer({"name": "Paris", "population": 2_100_000, "capital": True}))
    result = await run(AgentSpec("geo", output_type=City), model)
    assert result.output == City("Paris", 2_100_000, True)
    assert result.answer == '{"name": "Paris", "population": 2100000, "capital": true}'


async def test_the_schema_is_offered_as_the_final_result_tool() -> None:
    seen: list[ModelRequest] = []

    def respond(request: ModelRequest) -> ModelResponse:
        seen.append(request)
        return final_answer({"name": "Oslo", "population": 700_000})(request)

    await run(AgentSpec("geo", output_type=City), sequence(respond))
    [tool] = seen[0].tools
    assert tool.name == FINAL_RESULT_TOOL
    assert tool.input_schema["required"] == ["name", "population"]
    assert tool.input_schema["properties"]["population"] == {"type": "integer"}
    assert "final_result" in seen[0].system_prompt


async def test_errors_go_back_to_the_model_which_corrects_itself() -> None:
    seen: list[ModelRequest] = []

    def correct(request: ModelRequest) -> ModelResponse:
        seen.append(request)
        return final_answer({"name": "Rome", "population": 2_800_000})(request)

    model = sequence(
        final_answer({"name": "Rome", "population": "lots", "mayor": "x"}),  # schema errors
        final_answer({"name": "Rome", "population": -5}),  # the class's own validator
        correct,
    )
    result = await run(AgentSpec("geo", output_type=City), model)
    assert result.output == City("Rome", 2_800_000)
    assert result.turns == 3
    first, second = [m.content for m in seen[0].messages if m.is_error]
    assert "population: expected integer, got string" in first
    assert "mayor" in first  # an unknown field is named too
    assert "population" in second
    assert ">= 0" in second


async def test_retries_are_bounded_then_output_validation_error() -> None:
    events = EventBus()
    model = sequence(*[final_answer({"name": "X"})] * 5)
    with pytest.raises(OutputValidationError) as caught:
        await run(AgentSpec("geo", output_type=City, output_retries=2), model, events)
    assert caught.value.attempts == 3
    assert any("population" in error for error in caught.value.errors)
    assert model.statistics().calls == 3
    [failed] = events.history(TaskFailed)
    assert failed.error_type == "OutputValidationError"


@pytest.mark.parametrize(
    ("output_type", "arguments", "expected"),
    [
        (Mood, {"result": "sad"}, Mood.SAD),
        (Literal["yes", "no"], {"result": "no"}, "no"),
        (list[City], {"result": [{"name": "A", "population": 1}]}, [City("A", 1)]),
        (City | Mood, {"result": "happy"}, Mood.HAPPY),
        (City | Mood, {"result": {"name": "B", "population": 2}}, City("B", 2)),
        (int, {"result": 42}, 42),
        (dict[str, float], {"result": {"pi": 3}}, {"pi": 3.0}),
    ],
)
async def test_enums_literals_lists_unions_and_primitives(
    output_type: Any, arguments: dict[str, Any], expected: Any
) -> None:
    result = await run(
        AgentSpec("typed", output_type=output_type), sequence(final_answer(arguments))
    )
    assert result.output == expected
    assert type(result.output) is type(expected)


async def test_a_wrong_enum_value_names_the_choices() -> None:
    model = sequence(final_answer({"result": "angry"}), final_answer({"result": "happy"}))
    seen: list[ModelRequest] = []
    real = model.complete

    async def spy(request: ModelRequest) -> ModelResponse:
        seen.append(request)
        return await real(request)

    model.complete = spy  # type: ignore[method-assign]
    result = await run(AgentSpec("mood", output_type=Mood), model)
    assert result.output is Mood.HAPPY
    assert "'happy'" in seen[1].messages[-1].content


async def test_a_plain_json_answer_is_accepted_and_prose_is_sent_back() -> None:
    model = sequence(
        answer("It is Lima."), answer('```json\n{"name": "Lima", "population": 9}\n```')
    )
    result = await run(AgentSpec("geo", output_type=City), model)
    assert result.output == City("Lima", 9)
    assert result.turns == 2


def test_a_type_that_cannot_be_described_is_refused_at_once() -> None:
    with pytest.raises(TypeError, match="output_type"):
        AgentSpec("x", output_type=dict[int, str])
    with pytest.raises(ValueError):
        AgentSpec("x", output_type=City, output_retries=-1)


@given(
    city=st.builds(
        City,
        name=st.text(max_size=10),
        population=st.integers(0, 10**12),
        capital=st.booleans(),
    )
)
def test_any_valid_value_round_trips(city: City) -> None:
    spec = OutputSpec(City)
    attempt = spec.from_arguments(attrs.asdict(city))
    assert attempt.ok
    assert attempt.value == city
    assert spec.from_text(spec.answer_text(city)).value == city


async def test_typed_output_through_the_runtime_ask() -> None:
    async with RuntimeManager.open() as runtime:
        agent = await spawn_agent(
            runtime.actor_system,
            AgentSpec("geo", output_type=City),
            sequence(final_answer({"name": "Kyiv", "population": 3_000_000, "capital": True})),
        )
        result = await agent.ask("capital of Ukraine?", timeout=10)
        assert result.output == City("Kyiv", 3_000_000, True)
        await runtime.graceful_shutdown()


async def test_typed_output_over_both_http_adapters_is_tool_style() -> None:
    app = FakeModelServer()
    arguments = {"name": "Bern", "population": 140_000, "capital": True}
    app.push(
        openai_completion(None, [("call_1", FINAL_RESULT_TOOL, {"name": "Bern"})]),
        openai_completion(None, [("call_2", FINAL_RESULT_TOOL, arguments)]),
        anthropic_message([tool_use_block("toolu_1", FINAL_RESULT_TOOL, arguments)]),
    )
    base = {"api_key": "k" * 20, "transport": app.transport()}
    models = [
        OpenAICompatibleModel("gpt", base_url="http://127.0.0.1:9/v1", **base),  # type: ignore[arg-type]
        AnthropicModel("claude", base_url="http://127.0.0.1:9", **base),  # type: ignore[arg-type]
    ]
    for model in models:
        async with model:
            result = await run(AgentSpec("geo", output_type=City), model)
        assert result.output == City("Bern", 140_000, True)
    _, retry, first_anthropic = (request.body for request in app.requests)
    check_openai_request(retry)
    check_anthropic_request(first_anthropic)
    assert retry["tools"][0]["function"]["name"] == FINAL_RESULT_TOOL
    assert "population" in retry["messages"][-1]["content"]  # the error went back
    assert first_anthropic["tools"][0]["input_schema"]["required"] == ["name", "population"]
    assert Message.user("x").role is MessageRole.USER
    await trio.lowlevel.checkpoint()
