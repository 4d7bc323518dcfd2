"""Usage budgets: limits on tokens, requests, tool calls, wall time and cost.

:class:`UsageLimits` says how much may be used; a :class:`UsageBudget` counts what was
used against them and is checked *before* each model request and each round of tool
calls, so a run stops with :class:`~mister_smith.agents.UsageLimitExceeded` naming the
limit instead of spending past it. Budgets nest: one per task (``AgentSpec.task_limits``),
one per agent over all its tasks (``AgentSpec.agent_limits``), one per team
(``create_dynamic_team(usage_limits=...)``) shared by every member; a request must fit
all of them. The budget is a plain synchronous object (time is passed in), so its
accounting is tested without a clock.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Final

import attrs

from ._errors import UnknownModelPrice, UsageLimitExceeded
from ._model import Usage

PER_MILLION: Final = 1_000_000


def _optional_count(
    instance: object, attribute: attrs.Attribute[int | None], value: object
) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
        raise ValueError(f"{attribute.name} must be None or an int >= 0, got {value!r}")


def _optional_amount(
    instance: object, attribute: attrs.Attribute[float | None], value: object
) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
        raise ValueError(f"{attribute.name} must be None or a number >= 0, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{attribute.name} must be finite, got {value!r}")


def _amount(instance: object, attribute: attrs.Attribute[float], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
        raise ValueError(f"{attribute.name} must be a number >= 0, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{attribute.name} must be finite, got {value!r}")


@attrs.frozen
class ModelPrice:
    """What a model costs, per million tokens (in any currency, used consistently).

    Attributes:
        input: Per million input tokens (not read from or written to a cache).
        output: Per million output tokens.
        cache_read: Per million input tokens read from a prompt cache (default: input).
        cache_write: Per million input tokens written to a cache (default: input).
    """

    input: float = attrs.field(validator=_amount)
    output: float = attrs.field(validator=_amount)
    cache_read: float | None = attrs.field(default=None, validator=_optional_amount)
    cache_write: float | None = attrs.field(default=None, validator=_optional_amount)

    def cost(self, usage: Usage) -> float:
        """The cost of ``usage``."""
        plain = usage.input_tokens - usage.cache_read_tokens - usage.cache_write_tokens
        read = self.input if self.cache_read is None else self.cache_read
        write = self.input if self.cache_write is None else self.cache_write
        return (
            max(0, plain) * self.input
            + usage.cache_read_tokens * read
            + usage.cache_write_tokens * write
            + usage.output_tokens * self.output
        ) / PER_MILLION


def _prices(value: Mapping[str, ModelPrice]) -> Mapping[str, ModelPrice]:
    return dict(value)


@attrs.frozen
class PriceTable:
    """Prices by model name (as the endpoint reports it, e.g. ``"gpt-5-mini"``); a
    name is also matched by its longest listed prefix (``"gpt-5-mini-2025-08-07"``
    costs what ``"gpt-5-mini"`` does)."""

    prices: Mapping[str, ModelPrice] = attrs.field(factory=dict, converter=_prices)

    def price(self, model: str) -> ModelPrice:
        """The price of ``model``.

        Raises:
            UnknownModelPrice: neither the name nor a prefix of it is listed.
        """
        exact = self.prices.get(model)
        if exact is not None:
            return exact
        prefixes = [name for name in self.prices if model.startswith(name)]
        if not prefixes:
            raise UnknownModelPrice(
                f"no price for model {model!r} (priced: {sorted(self.prices)[:10]})"
            )
        return self.prices[max(prefixes, key=len)]

    def cost(self, model: str, usage: Usage) -> float:
        """What ``usage`` of ``model`` cost."""
        return self.price(model).cost(usage)


@attrs.frozen
class UsageLimits:
    """How much a task, an agent or a team may use (``None``: no limit).

    Attributes:
        input_tokens: Input tokens over all requests.
        output_tokens: Output tokens over all requests (each request's
            ``max_output_tokens`` is also capped to what is left).
        total_tokens: Input plus output tokens.
        requests: Model requests.
        tool_calls: Tool calls run.
        wall_time: Seconds since the budget started (Trio clock).
        cost: Cost, priced by ``prices`` (required with a cost limit).
        prices: The price table the cost is computed with.
    """

    input_tokens: int | None = attrs.field(default=None, validator=_optional_count)
    output_tokens: int | None = attrs.field(default=None, validator=_optional_count)
    total_tokens: int | None = attrs.field(default=None, validator=_optional_count)
    requests: int | None = attrs.field(default=None, validator=_optional_count)
    tool_calls: int | None = attrs.field(default=None, validator=_optional_count)
    wall_time: float | None = attrs.field(default=None, validator=_optional_amount)
    cost: float | None = attrs.field(default=None, validator=_optional_amount)
    prices: PriceTable | None = None

    def __attrs_post_init__(self) -> None:
        if self.cost is not None and self.prices is None:
            raise ValueError("a cost limit needs a price table (prices=PriceTable(...))")


@attrs.frozen
class UsageSnapshot:
    """What a budget has counted so far."""

    usage: Usage
    tool_calls: int
    cost: float
    elapsed: float


@attrs.define(eq=False)
class UsageBudget:
    """Counts usage against :class:`UsageLimits` for one scope (a task, an agent, a
    team). Time is passed in (``now``, the Trio clock in the agent loop).

    Args:
        limits: The limits.
        scope: Who the budget is for, named in errors (``"task 1f3..."``, ``"agent
            'writer'"``, ``"team 'team-3'"``).
        started: When the budget started (for ``wall_time``).
    """

    limits: UsageLimits
    scope: str
    started: float
    _usage: Usage = attrs.field(factory=Usage, init=False)
    _tool_calls: int = attrs.field(default=0, init=False)
    _cost: float = attrs.field(default=0.0, init=False)

    def record_response(self, model: str, usage: Usage) -> None:
        """Count one model response's ``usage`` (priced as ``model``).

        Raises:
            UnknownModelPrice: a cost limit is set and ``model`` has no price.
        """
        self._usage = self._usage + usage
        if self.limits.prices is not None:
            self._cost += self.limits.prices.cost(model, usage)

    def record_tool_calls(self, count: int) -> None:
        """Count ``count`` tool calls run."""
        self._tool_calls += count

    def snapshot(self, now: float) -> UsageSnapshot:
        """The counts so far."""
        return UsageSnapshot(self._usage, self._tool_calls, self._cost, now - self.started)

    def exceeded(self, now: float, *, tool_calls: int = 0) -> tuple[str, float, float] | None:
        """The first limit a model request now (or running ``tool_calls`` more tool
        calls) would pass: ``(limit name, limit, used)``; ``None`` when all fit."""
        limits, usage = self.limits, self._usage
        checks: list[tuple[str, float | None, float, bool]] = [
            ("requests", limits.requests, usage.calls, tool_calls == 0),
            ("input_tokens", limits.input_tokens, usage.input_tokens, tool_calls == 0),
            ("output_tokens", limits.output_tokens, usage.output_tokens, tool_calls == 0),
            ("total_tokens", limits.total_tokens, usage.total_tokens, tool_calls == 0),
            ("cost", limits.cost, self._cost, tool_calls == 0),
            ("wall_time", limits.wall_time, now - self.started, True),
        ]
        for name, limit, used, applies in checks:
            if applies and limit is not None and used >= limit:
                return name, limit, used
        if limits.tool_calls is not None and self._tool_calls + tool_calls > limits.tool_calls:
            return "tool_calls", limits.tool_calls, self._tool_calls + tool_calls
        return None

    def check(self, now: float, *, tool_calls: int = 0) -> None:
        """Raise if a model request now (or ``tool_calls`` more tool calls) is over a
        limit.

        Raises:
            UsageLimitExceeded: naming the limit, its value, what was used, the scope.
        """
        found = self.exceeded(now, tool_calls=tool_calls)
        if found is None:
            return
        name, limit, used = found
        error = UsageLimitExceeded(
            f"{self.scope}: usage limit {name}={_show(limit)} reached (used {_show(used)})"
        )
        error.limit = name
        error.value = limit
        error.used = used
        error.scope = self.scope
        raise error

    def output_room(self) -> int | None:
        """Output tokens a next request may still generate (``None``: no bound)."""
        rooms = []
        limits, usage = self.limits, self._usage
        if limits.output_tokens is not None:
            rooms.append(limits.output_tokens - usage.output_tokens)
        if limits.total_tokens is not None:
            rooms.append(limits.total_tokens - usage.total_tokens)
        return max(0, min(rooms)) if rooms else None


def _show(value: float) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def check_all(budgets: Iterable[UsageBudget], now: float, *, tool_calls: int = 0) -> None:
    """Check every budget (see :meth:`UsageBudget.check`)."""
    for budget in budgets:
        budget.check(now, tool_calls=tool_calls)


def output_room(budgets: Iterable[UsageBudget]) -> int | None:
    """The least output room of ``budgets`` (``None``: none bounds it)."""
    rooms = [room for budget in budgets if (room := budget.output_room()) is not None]
    return min(rooms) if rooms else None
