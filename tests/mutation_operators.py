"""mutmut, plus two mutation operators it lacks, for ``nox -s mutants``.

mutmut 3 swaps operators, constants, keywords and arguments but never deletes a call
made for its side effect, and never swaps ``min`` and ``max``. Those are the mutants
that found our pool's forgotten ``_dispatch()`` and the breaker's ``release()`` being
checked by no test, so this entry point adds them:

* ``drop_call_statement``: a statement that is only a call (``self._dispatch()``)
  becomes ``pass``;
* ``swap_min_max``: ``min(...)`` becomes ``max(...)`` and the other way round.

Run it as mutmut's command line (``python tests/mutation_operators.py run ...``). It
relies on mutmut's operator table (``mutmut.mutation.mutators.mutation_operators``),
so the session pins mutmut's version. Mutants are generated in worker processes forked
from this one, which inherit the added operators.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any, cast

import libcst as cst
from mutmut.__main__ import cli
from mutmut.mutation.mutators import mutation_operators

_MIN_MAX = {"min": "max", "max": "min"}


def drop_call_statement(node: cst.Expr) -> Iterator[cst.BaseSmallStatement]:
    """``f(x)`` as a statement (its result unused) becomes ``pass``."""
    if isinstance(node.value, cst.Call):
        yield cst.Pass()


def swap_min_max(node: cst.Call) -> Iterator[cst.Call]:
    """``min(a, b)`` becomes ``max(a, b)``, and ``max`` becomes ``min``."""
    func = node.func
    if isinstance(func, cst.Name) and func.value in _MIN_MAX:
        yield node.with_changes(func=func.with_changes(value=_MIN_MAX[func.value]))


def main() -> None:
    """mutmut's command line, with the two operators added."""
    # The table is typed as a Sequence, but it is the list mutmut's visitor walks.
    table = cast(list[tuple[type, Callable[[Any], Iterable[cst.CSTNode]]]], mutation_operators)
    table.append((cst.Expr, drop_call_statement))
    table.append((cst.Call, swap_min_max))
    cli()


if __name__ == "__main__":
    main()
