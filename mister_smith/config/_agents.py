"""``AgentSettings``: what one agent and its model may cost (answer size, tool calls)."""

from typing import ClassVar

import attrs

from ._checks import OrderedPairs, integer, require_ordered, text

DEFAULT_MAX_RESPONSE_BYTES = 4 * 1024 * 1024
"""Largest model answer read by default: 4 MiB, hundreds of times a long answer."""

DEFAULT_OPENAI_MODEL = "gpt-5-mini"
"""The OpenAI model ``--model openai`` uses unless configured (a reasoning model: the
adapter sends ``max_completion_tokens``, which it requires)."""

DEFAULT_ANTHROPIC_MODEL = "claude-haiku-4-5"
"""The Anthropic model ``--model anthropic`` uses unless configured."""

_model_name = text(r"[A-Za-z0-9][A-Za-z0-9._:/@-]{0,127}", "a model name (letters, digits, ._:/@-)")


@attrs.frozen
class AgentSettings:
    """Bounds on agents and their models, so that a model (or whoever answers in its
    name) cannot make an agent use unbounded memory or run unbounded tool calls.

    The defaults are also ``AgentSpec``'s and ``HttpModel``'s own, so every agent is
    bounded by them. ``mister-smith run`` and ``demo`` apply a configured
    ``[agents]`` section to the members and models they build; ``RuntimeManager``
    does not rewrite the ``AgentSpec`` s and models your code builds: pass the values
    on (``AgentSpec(..., max_tool_calls_per_turn=config.agents.max_tool_calls_per_turn)``,
    ``OpenAICompatibleModel(..., max_response_bytes=config.agents.max_response_bytes)``).

    Attributes:
        max_response_bytes: Largest model answer read, in decoded bytes; a longer (or
            never-ending) answer is cut off there and fails with
            ``ModelResponseTooLarge``. Default 4 MiB: a long answer with many tool
            calls is tens of KiB. In [1 KiB, 1 GiB].
        max_tool_calls_per_turn: Most tool calls run for one model turn; the calls
            past it are not run and are answered to the model as tool errors. Default
            32. In [1, 10000].
        max_tool_calls_per_task: Most tool calls run over one task (all turns); once
            used up, further calls are answered as tool errors. Default 256.
            >= ``max_tool_calls_per_turn``, <= 1,000,000.
        openai_model: The model ``mister-smith run --model openai`` asks (default
            ``gpt-5-mini``); the ``MISTER_SMITH_OPENAI_MODEL`` variable wins over it.
            Provider models are retired over time: set it rather than rely on the
            default.
        anthropic_model: The same for ``--model anthropic`` (default
            ``claude-haiku-4-5``; ``MISTER_SMITH_ANTHROPIC_MODEL`` wins over it).
    """

    max_response_bytes: int = attrs.field(
        default=DEFAULT_MAX_RESPONSE_BYTES, validator=integer(minimum=1024, maximum=1 << 30)
    )
    max_tool_calls_per_turn: int = attrs.field(
        default=32, validator=integer(minimum=1, maximum=10_000)
    )
    max_tool_calls_per_task: int = attrs.field(
        default=256, validator=integer(minimum=1, maximum=1_000_000)
    )

    openai_model: str = attrs.field(default=DEFAULT_OPENAI_MODEL, validator=_model_name)
    anthropic_model: str = attrs.field(default=DEFAULT_ANTHROPIC_MODEL, validator=_model_name)

    _ordered: ClassVar[OrderedPairs] = (("max_tool_calls_per_turn", "max_tool_calls_per_task"),)

    def __attrs_post_init__(self) -> None:
        require_ordered(self)
