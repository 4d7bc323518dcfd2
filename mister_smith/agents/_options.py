"""``ModelOptions``: the request options an API understands beyond the conversation.

Each adapter maps what it can onto its own wire format and refuses what its API cannot
take (:class:`~mister_smith.agents.UnsupportedModelOption`, when the request is built,
before anything is sent): a silently dropped option would look applied and not be.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any, Final

import attrs

TOOL_CHOICES: Final = frozenset({"auto", "none", "required"})
"""The ``tool_choice`` values that are not a tool name."""

REASONING_EFFORTS: Final = frozenset({"none", "minimal", "low", "medium", "high", "xhigh"})
"""The reasoning efforts OpenAI's chat completions accept."""

_METADATA_KEY: Final = re.compile(r"^.{1,64}$", re.DOTALL)


def _strings(value: Iterable[str]) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    return tuple(value)


def _mapping(value: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    return None if value is None else dict(value)


def _metadata(value: Mapping[str, str]) -> Mapping[str, str]:
    return dict(value)


def _body(value: Mapping[str, Any]) -> Mapping[str, Any]:
    return dict(value)


def _check_tool_choice(instance: object, attribute: object, value: str | None) -> None:
    if value is not None and (not isinstance(value, str) or not value):
        raise ValueError(f"tool_choice must be auto/none/required or a tool name, got {value!r}")


def _check_effort(instance: object, attribute: object, value: str | None) -> None:
    if value is not None and value not in REASONING_EFFORTS:
        raise ValueError(
            f"reasoning_effort must be one of {sorted(REASONING_EFFORTS)}, got {value!r}"
        )


def _check_budget(instance: object, attribute: object, value: int | None) -> None:
    if value is not None and (
        isinstance(value, bool) or not isinstance(value, int) or value < 1024
    ):
        raise ValueError(f"thinking_budget must be an int >= 1024 (the API's floor), got {value!r}")


def _check_metadata(instance: object, attribute: object, value: Mapping[str, str]) -> None:
    for key, item in value.items():
        if not isinstance(key, str) or not _METADATA_KEY.match(key):
            raise ValueError(f"metadata keys must be 1-64 characters, got {key!r:.80}")
        if not isinstance(item, str) or len(item) > 512:
            raise ValueError(f"metadata[{key!r}] must be a string of at most 512 characters")
    if len(value) > 16:
        raise ValueError(f"metadata holds at most 16 pairs, got {len(value)}")


def _check_stop(instance: object, attribute: object, value: tuple[str, ...]) -> None:
    if any(not isinstance(item, str) or not item for item in value):
        raise ValueError(f"stop sequences must be non-empty strings, got {value!r:.200}")


@attrs.frozen
class ModelOptions:
    """Request options beyond the conversation, tools and token limit.

    Attributes:
        tool_choice: ``"auto"``, ``"none"``, ``"required"`` (call some tool) or a tool's
            name (call that one); ``None``: the API's default.
        parallel_tool_calls: Whether the model may ask for several tool calls in one
            turn (``None``: the API's default). An agent sets it from
            ``AgentSpec.parallel_tool_calls``.
        response_format: OpenAI's ``response_format`` object (``{"type": "json_schema",
            "json_schema": {...}}``); the Anthropic adapter maps a JSON schema onto its
            ``output_config.format``.
        stop: Sequences that end generation.
        reasoning_effort: OpenAI reasoning models' effort (``low``/``medium``/...).
        thinking_budget: Anthropic extended thinking: tokens it may think with (>= 1024,
            below ``max_output_tokens``); thinking blocks are replayed on later turns as
            the API requires.
        cache_control: Anthropic prompt caching: mark the system prompt, the tools and
            the latest message as cache breakpoints (OpenAI caches on its own).
        metadata: Request metadata (OpenAI: up to 16 string pairs; Anthropic: only
            ``user_id``).
        extra_body: Fields merged into the request body last (an escape hatch for
            what this record does not name); they win over everything else.
    """

    tool_choice: str | None = attrs.field(default=None, validator=_check_tool_choice)
    parallel_tool_calls: bool | None = None
    response_format: Mapping[str, Any] | None = attrs.field(default=None, converter=_mapping)
    stop: tuple[str, ...] = attrs.field(default=(), converter=_strings, validator=_check_stop)
    reasoning_effort: str | None = attrs.field(default=None, validator=_check_effort)
    thinking_budget: int | None = attrs.field(default=None, validator=_check_budget)
    cache_control: bool = False
    metadata: Mapping[str, str] = attrs.field(
        factory=dict, converter=_metadata, validator=_check_metadata
    )
    extra_body: Mapping[str, Any] = attrs.field(factory=dict, converter=_body)
