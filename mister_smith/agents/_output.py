"""Typed outputs: the answer as a value of a declared type, not free text.

:class:`OutputSpec` turns ``AgentSpec.output_type`` (an attrs class, an enum, a
``Literal``, a list, a union, a primitive...) into a JSON Schema offered to the model as
the ``final_result`` tool, and turns the model's call of that tool back into a value:
first checked against the schema (every violation named with its path), then structured
by a cattrs converter, which also runs the attrs classes' own validators. A failure is
sent back to the model as the tool's error, so it can correct itself.
"""

from __future__ import annotations

import json
import re
import types
from collections.abc import Mapping
from typing import Any, Final, Union, get_args, get_origin

import attrs
import cattrs

from ..tools import ToolSchema, schema_for_type
from ._errors import OutputValidationError
from ._messages import ToolCall
from ._model import ToolDefinition

FINAL_RESULT_TOOL: Final = "final_result"
"""The tool a model calls with its typed answer."""

WRAPPED_KEY: Final = "result"
"""The property holding the answer when its type is not an object (a list, an enum...)."""

_FENCE = re.compile(r"^```(?:json)?\s*(.*?)\s*```$", re.DOTALL)


def _is_union(annotation: Any) -> bool:
    origin = get_origin(annotation)
    return origin is Union or origin is types.UnionType


def _converter() -> cattrs.Converter:
    converter = cattrs.Converter(forbid_extra_keys=True)

    def structure_union(value: Any, annotation: Any) -> Any:
        errors: list[Exception] = []
        for option in get_args(annotation):
            if option is type(None):
                if value is None:
                    return None
                continue
            if not _schema_of(option).is_valid({WRAPPED_KEY: value}):
                continue
            try:
                return converter.structure(value, option)
            except Exception as exc:  # the next option may fit
                errors.append(exc)
        if errors:
            raise errors[0]
        raise ValueError(f"{value!r:.80} fits none of {annotation}")

    converter.register_structure_hook_func(_is_union, structure_union)
    return converter


def _schema_of(annotation: Any) -> ToolSchema:
    return ToolSchema(
        {
            "type": "object",
            "properties": {WRAPPED_KEY: schema_for_type(annotation)},
            "required": [WRAPPED_KEY],
        }
    )


def _describe(exc: BaseException, _type: Any) -> str:
    return f"{type(exc).__name__}: {exc}"


@attrs.frozen
class OutputAttempt:
    """What came of one answer: the value, or the errors to send back."""

    value: Any = None
    errors: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """Whether the answer was a valid value."""
        return not self.errors


class OutputSpec:
    """The schema, tool and validator of one output type.

    Args:
        output_type: What the answer must be.
        description: What the ``final_result`` tool tells the model.

    Raises:
        TypeError: a type that cannot be described as JSON Schema (e.g. a recursive
            attrs class, ``dict[int, str]``).
    """

    def __init__(self, output_type: Any, *, description: str | None = None) -> None:
        self.output_type = output_type
        schema = schema_for_type(output_type)
        self.wrapped = schema.get("type") != "object" or "properties" not in schema
        if self.wrapped:
            schema = {
                "type": "object",
                "properties": {WRAPPED_KEY: schema},
                "required": [WRAPPED_KEY],
                "additionalProperties": False,
            }
        self.schema = ToolSchema(schema)
        name = getattr(output_type, "__name__", None) or str(output_type)
        self.definition = ToolDefinition(
            FINAL_RESULT_TOOL,
            description
            or f"Give your final answer as a {name} by calling this tool (and nothing else); "
            "if it is refused, correct the errors it names and call it again.",
            self.schema.to_dict(),
        )
        self._converter = _converter()

    def instructions(self) -> str:
        """The line added to the system prompt."""
        return (
            f"When you have the answer, call the {FINAL_RESULT_TOOL} tool with it; "
            "do not answer in plain text."
        )

    def from_call(self, call: ToolCall) -> OutputAttempt:
        """The value in a ``final_result`` call, or what is wrong with it."""
        return self.from_arguments(call.arguments)

    def from_arguments(self, arguments: Mapping[str, Any]) -> OutputAttempt:
        """The value in the tool's ``arguments``, or what is wrong with them."""
        violations = self.schema.violations(dict(arguments))
        if violations:
            return OutputAttempt(errors=tuple(str(v) for v in violations))
        data: Any = arguments[WRAPPED_KEY] if self.wrapped else dict(arguments)
        try:
            return OutputAttempt(self._converter.structure(data, self.output_type))
        except Exception as exc:
            return OutputAttempt(errors=tuple(_errors_of(exc)))

    def from_text(self, text: str) -> OutputAttempt:
        """The value in a plain-text answer holding JSON (some models answer so), or a
        reminder to call the tool."""
        stripped = text.strip()
        fenced = _FENCE.match(stripped)
        if fenced:
            stripped = fenced.group(1)
        try:
            data = json.loads(stripped)
        except ValueError:
            return OutputAttempt(
                errors=(f"answer by calling the {FINAL_RESULT_TOOL} tool, not in plain text",)
            )
        if self.wrapped and not (isinstance(data, dict) and set(data) == {WRAPPED_KEY}):
            data = {WRAPPED_KEY: data}
        if not isinstance(data, dict):
            return OutputAttempt(errors=(f"expected a JSON object, got {type(data).__name__}",))
        return self.from_arguments(data)

    def answer_text(self, value: Any) -> str:
        """The value as JSON text (the result's ``answer``)."""
        return json.dumps(self._converter.unstructure(value), ensure_ascii=False, default=str)

    def fail(self, agent: str, attempts: int, errors: tuple[str, ...]) -> OutputValidationError:
        """The error raised once the retries are used up."""
        error = OutputValidationError(
            f"agent {agent!r}: no valid {getattr(self.output_type, '__name__', self.output_type)}"
            f" after {attempts} attempts; last errors: " + "; ".join(errors)[:1000]
        )
        error.errors = errors
        error.attempts = attempts
        return error


def _errors_of(exc: Exception) -> list[str]:
    if isinstance(exc, cattrs.BaseValidationError):
        return cattrs.transform_error(exc, format_exception=_describe)
    return [f"$: {type(exc).__name__}: {exc}"]
