"""Restart strategies: which siblings go down and come back with a failed child."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

import attrs

from ..types import StrategyKind

T = TypeVar("T")


@attrs.frozen
class SupervisionStrategyBase:
    """Base of :class:`OneForOne`, :class:`OneForAll` and :class:`RestForOne`."""

    kind: StrategyKind = attrs.field(init=False)

    def affected(self, children: Sequence[T], failed: T) -> list[T]:
        """The children to stop and restart, in start order, when ``failed`` fails.

        Raises:
            ValueError: ``failed`` is not among ``children``.
        """
        if failed not in children:
            raise ValueError(f"{failed!r} is not one of the supervisor's children")
        if self.kind is StrategyKind.ONE_FOR_ONE:
            return [failed]
        if self.kind is StrategyKind.ONE_FOR_ALL:
            return list(children)
        index = children.index(failed)
        return list(children[index:])


@attrs.frozen
class OneForOne(SupervisionStrategyBase):
    """Restart only the failed child."""

    kind: StrategyKind = attrs.field(default=StrategyKind.ONE_FOR_ONE, init=False)


@attrs.frozen
class OneForAll(SupervisionStrategyBase):
    """Stop every child and restart them all (temporary ones stay down)."""

    kind: StrategyKind = attrs.field(default=StrategyKind.ONE_FOR_ALL, init=False)


@attrs.frozen
class RestForOne(SupervisionStrategyBase):
    """Restart the failed child and every child started after it."""

    kind: StrategyKind = attrs.field(default=StrategyKind.REST_FOR_ONE, init=False)


SupervisionStrategyLike = SupervisionStrategyBase | StrategyKind


def as_strategy(strategy: SupervisionStrategyLike) -> SupervisionStrategyBase:
    """Accept a strategy object or a :class:`~mister_smith.types.StrategyKind`."""
    if isinstance(strategy, SupervisionStrategyBase):
        return strategy
    if isinstance(strategy, StrategyKind):
        return {
            StrategyKind.ONE_FOR_ONE: OneForOne,
            StrategyKind.ONE_FOR_ALL: OneForAll,
            StrategyKind.REST_FOR_ONE: RestForOne,
        }[strategy]()
    raise TypeError(f"not a supervision strategy: {strategy!r}")
