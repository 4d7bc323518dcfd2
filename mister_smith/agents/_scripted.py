"""``ScriptedModel``: a deterministic, embedded model driven by rules.

Rules look at the conversation (the :class:`ModelRequest`) and say what to answer, so a
demo or test gets the same tool calls and answers on every run, with no network and no
API key. Rules are tried in order; the first that returns a response wins.
"""

from __future__ import annotations

import re
from collections.abc import AsyncGenerator, Callable, Mapping, Sequence
from typing import Any

import attrs
import trio

from ._errors import ScriptExhausted
from ._messages import Message, MessageRole, ToolCall, estimate_tokens
from ._model import ModelRequest, ModelResponse, StopReason, Usage, messages_tokens
from ._output import FINAL_RESULT_TOOL
from ._streaming import (
    ModelStreamEvent,
    ResponseCompleted,
    TextDelta,
    ToolCallArgumentsDelta,
    ToolCallStarted,
)

Predicate = Callable[[ModelRequest], bool]
"""Decides whether a rule applies to a request."""

Responder = Callable[[ModelRequest], ModelResponse]
"""Builds the response of a rule that applies."""

_WORDS = re.compile(r"\s*\S+|\s+")


@attrs.frozen
class ScriptRule:
    """One rule of a :class:`ScriptedModel`: when ``match`` holds, ``respond``.

    Attributes:
        match: Whether the rule applies to the request.
        respond: The response (tool calls may leave ``id`` empty: the model numbers them).
        name: Shown in statistics and errors.
    """

    match: Predicate
    respond: Responder
    name: str = ""


@attrs.frozen
class ScriptedModelStatistics:
    """Counters of a :class:`ScriptedModel`: calls, and how often each rule fired."""

    calls: int
    rule_hits: Mapping[str, int]
    usage: Usage


class ScriptedModel:
    """A :class:`~mister_smith.agents.Model` whose answers come from rules.

    Args:
        rules: Tried in order for each request; the first whose ``match`` holds answers.
        name: The model's name in events.
        latency: Seconds each call takes (on the Trio clock, so virtual in tests).
        stream_delay: Seconds between the words of a streamed answer (:meth:`stream`).

    Responses without usage get an estimate (input: the request's messages and tool
    schemas; output: the response's text and calls), so token accounting works the same
    as with a real model. Tool calls without an id are numbered ``call-<n>``.

    Raises (from :meth:`complete`):
        ScriptExhausted: no rule matched.
    """

    provider = "scripted"
    """``gen_ai.system`` of its model-call spans."""

    def __init__(
        self,
        rules: Sequence[ScriptRule | tuple[Predicate, Responder]],
        *,
        name: str = "scripted",
        latency: float = 0.0,
        stream_delay: float = 0.0,
    ) -> None:
        if not latency >= 0:
            raise ValueError(f"latency must be >= 0, got {latency!r}")
        if not stream_delay >= 0:
            raise ValueError(f"stream_delay must be >= 0, got {stream_delay!r}")
        self.stream_delay = stream_delay
        self._rules = tuple(
            rule if isinstance(rule, ScriptRule) else ScriptRule(rule[0], rule[1], f"rule-{i}")
            for i, rule in enumerate(rules, 1)
        )
        self._name = name
        self.latency = latency
        self._calls = 0
        self._call_ids = 0
        self._hits: dict[str, int] = {}
        self._usage = Usage()

    @property
    def name(self) -> str:
        """The model's name."""
        return self._name

    async def complete(self, request: ModelRequest) -> ModelResponse:
        """Answer with the first matching rule's response."""
        if self.latency:
            await trio.sleep(self.latency)
        else:
            await trio.lowlevel.checkpoint()
        self._calls += 1
        for index, rule in enumerate(self._rules, 1):
            if rule.match(request):
                response = self._finish(request, rule.respond(request))
                key = rule.name or f"rule-{index}"
                self._hits[key] = self._hits.get(key, 0) + 1
                self._usage = self._usage + response.usage
                return response
        last = request.messages[-1].content[:80] if request.messages else ""
        raise ScriptExhausted(f"no rule of scripted model {self._name!r} matches (last: {last!r})")

    async def stream(self, request: ModelRequest) -> AsyncGenerator[ModelStreamEvent, None]:
        """Answer as :meth:`complete` would, word by word (``stream_delay`` seconds
        apart), each tool call started with its arguments, then the whole response."""
        response = await self.complete(request)
        for piece in _WORDS.findall(response.text):
            if self.stream_delay:
                await trio.sleep(self.stream_delay)
            else:
                await trio.lowlevel.checkpoint()
            yield TextDelta(piece)
        for index, call in enumerate(response.tool_calls):
            yield ToolCallStarted(index, call.id, call.name)
            yield ToolCallArgumentsDelta(index, call.arguments_json())
        yield ResponseCompleted(response)

    def _finish(self, request: ModelRequest, response: ModelResponse) -> ModelResponse:
        calls = []
        for call in response.tool_calls:
            if not call.id:
                self._call_ids += 1
                call = attrs.evolve(call, id=f"call-{self._call_ids}")
            calls.append(call)
        usage = response.usage
        if usage == Usage():
            prompt = messages_tokens(request.messages) + sum(
                estimate_tokens(spec.name + spec.description + str(spec.input_schema))
                for spec in request.tools
            )
            output = Message.assistant(response.text, tuple(calls)).tokens
            usage = Usage(prompt, output, 1)
        stop = response.stop_reason
        if calls and stop is StopReason.END_TURN:
            stop = StopReason.TOOL_USE
        return attrs.evolve(
            response, tool_calls=tuple(calls), usage=usage, stop_reason=stop, model=self._name
        )

    def statistics(self) -> ScriptedModelStatistics:
        """Calls made, hits per rule, tokens accounted."""
        return ScriptedModelStatistics(self._calls, dict(self._hits), self._usage)


# --- predicates --------------------------------------------------------------------


def always(request: ModelRequest) -> bool:
    """Matches every request."""
    return True


def first_turn(request: ModelRequest) -> bool:
    """Matches when the conversation ends with the user's message (no tool results yet)."""
    return bool(request.messages) and request.messages[-1].role is MessageRole.USER


def after_tool(name: str | None = None, *, failed: bool | None = None) -> Predicate:
    """Matches when the conversation ends with results of tool ``name`` (any tool when
    ``None``); ``failed=True``/``False`` further requires some result to be an error /
    all to be successes."""

    def match(request: ModelRequest) -> bool:
        results = request.tool_results_since_last_assistant()
        if not results:
            return False
        if name is not None and not any(r.name == name for r in results):
            return False
        if failed is True:
            return any(r.is_error for r in results)
        if failed is False:
            return not any(r.is_error for r in results)
        return True

    return match


def user_matches(pattern: str, flags: int = re.IGNORECASE) -> Predicate:
    """Matches when the latest user message contains ``pattern`` (a regex)."""
    compiled = re.compile(pattern, flags)

    def match(request: ModelRequest) -> bool:
        message = request.last_user_message()
        return message is not None and compiled.search(message.content) is not None

    return match


def both(*predicates: Predicate) -> Predicate:
    """Matches when every predicate does."""

    def match(request: ModelRequest) -> bool:
        return all(predicate(request) for predicate in predicates)

    return match


# --- responders --------------------------------------------------------------------


def answer(text: str | Callable[[ModelRequest], str]) -> Responder:
    """Answer with ``text`` (or ``text(request)``), ending the task."""

    def respond(request: ModelRequest) -> ModelResponse:
        return ModelResponse(text=text(request) if callable(text) else text)

    return respond


def call_tools(*calls: tuple[str, Mapping[str, Any]], text: str = "") -> Responder:
    """Ask for the tool calls ``(name, arguments)``, all at once (run concurrently)."""

    def respond(request: ModelRequest) -> ModelResponse:
        return ModelResponse(
            text=text, tool_calls=tuple(ToolCall("", name, dict(args)) for name, args in calls)
        )

    return respond


def final_answer(
    arguments: Mapping[str, Any] | Callable[[ModelRequest], Mapping[str, Any]],
) -> Responder:
    """Give a typed answer: call the ``final_result`` tool with ``arguments`` (or
    ``arguments(request)``), as a model does for an agent with an ``output_type``.
    A non-object output type takes ``{"result": value}``."""

    def respond(request: ModelRequest) -> ModelResponse:
        args = arguments(request) if callable(arguments) else arguments
        return ModelResponse(tool_calls=(ToolCall("", FINAL_RESULT_TOOL, dict(args)),))

    return respond


def answer_with_tool_results(template: str = "{results}") -> Responder:
    """Answer with the latest tool results, one per line, formatted into ``template``.

    Failed calls read ``<tool> failed: <error>``.
    """

    def respond(request: ModelRequest) -> ModelResponse:
        lines = [
            f"{r.name} failed: {r.content}" if r.is_error else r.content
            for r in request.tool_results_since_last_assistant()
        ]
        return ModelResponse(text=template.format(results="\n".join(lines)))

    return respond


def rule(match: Predicate, respond: Responder, name: str = "") -> ScriptRule:
    """Shorthand for :class:`ScriptRule`."""
    return ScriptRule(match, respond, name)
