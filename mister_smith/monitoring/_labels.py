"""Label values from events are bounded: every metric has O(1) label sets per label.

Prometheus keeps one time series per distinct label set, for ever. Event fields are
partly chosen by whoever calls in — a model asking for 30,000 made-up tool names made
30,000 series, and a scrape then blocked the loop for 724 ms. So:

* a **tool** label is the tool's name only while a tool of that name is registered on
  the tool registry monitoring was given (:class:`ToolLabels`); any other name, and
  every call that ended ``NOT_FOUND``, is counted under :data:`UNKNOWN_TOOL`; and
  registered names have a :class:`LabelBudget` too, since tools come and go (each
  lead-mode team registers and later drops its own ``ask_<member>`` tools);
* every other label taken from event text (supervisor, actor, role, pool, breaker,
  component, dead-letter reason) admits at most :data:`MAX_LABEL_VALUES` distinct
  values (:class:`LabelBudget`); later newcomers share :data:`OTHER_LABEL`, and each
  such overflow is counted so it shows on the dashboard.
"""

from __future__ import annotations

from typing import Final

from ._sources import ToolRegistryLike

UNKNOWN_TOOL: Final = "unknown"
"""The ``tool`` label of calls naming no registered tool."""

OTHER_LABEL: Final = "other"
"""The label value shared by values past a :class:`LabelBudget`."""

MAX_LABEL_VALUES: Final = 500
"""Distinct values one label may take per kind (supervisor, actor, role...)."""


class LabelBudget:
    """Admits the first ``limit`` distinct values of one label; the rest become ``other``.

    Values seen before keep their own label, so existing series continue; only
    newcomers past the budget are pooled.

    Args:
        limit: Distinct values admitted (>= 1).
    """

    def __init__(self, limit: int = MAX_LABEL_VALUES) -> None:
        if limit < 1:
            raise ValueError(f"limit must be >= 1, got {limit!r}")
        self._limit = limit
        self._admitted: set[str] = set()
        self.overflowed = 0
        """Values mapped to :data:`OTHER_LABEL` so far."""

    def __call__(self, value: str) -> str:
        """The label to use for ``value``."""
        if value in self._admitted:
            return value
        if len(self._admitted) < self._limit:
            self._admitted.add(value)
            return value
        self.overflowed += 1
        return OTHER_LABEL

    def __len__(self) -> int:
        return len(self._admitted)


class ToolLabels:
    """Maps a tool name to its ``tool`` label: itself if registered, else ``unknown``.

    The registered names are read from the registry at record time (its
    ``get_tool``), so a tool registered later gets its own label from its first call,
    and no name is trusted because it merely appears in an event. Without a registry
    (:meth:`~mister_smith.monitoring.FrameworkMetrics.add_tool_registry` was not
    called) every tool is ``unknown``.
    """

    def __init__(self) -> None:
        self.registries: list[ToolRegistryLike] = []

    def __call__(self, name: str, *, found: bool = True) -> str:
        """The label for a call of ``name`` (``found=False``: it ended NOT_FOUND)."""
        if found and any(_registered(registry, name) for registry in self.registries):
            return name
        return UNKNOWN_TOOL


def _registered(registry: ToolRegistryLike, name: str) -> bool:
    try:
        registry.get_tool(name)
    except LookupError:
        return False
    return True
