"""``python -m benchmarks [--quick] [--only PATTERN] [--json PATH]``: run, print, save."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from ._report import format_table, results_document, write_json
from ._runner import PACKAGE_DIR, discover, run_all, select

DEFAULT_JSON = PACKAGE_DIR / "results.json"
ROUNDS = 5
QUICK_ROUNDS = 3


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description=(
            "Run every benchmarks/bench_*.py: each case measures ours and a raw-Trio "
            "baseline in this process, alternating, and reports their ratio."
        ),
    )
    parser.add_argument(
        "--quick", action="store_true", help="small loops and 3 rounds: a smoke run"
    )
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="PATTERN",
        help="run only cases whose 'suite/case' name matches (glob, or substring; "
        "case-insensitive; repeatable)",
    )
    parser.add_argument(
        "--json",
        type=Path,
        default=DEFAULT_JSON,
        metavar="PATH",
        help=f"where to write the results (default: {DEFAULT_JSON})",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=None,
        help=f"measured rounds per side (default: {ROUNDS}, {QUICK_ROUNDS} with --quick)",
    )
    parser.add_argument("--list", action="store_true", help="list the cases and exit")
    # Multiplies every case's loops; the harness's own smoke test makes them tiny.
    parser.add_argument("--loops-scale", type=float, default=1.0, help=argparse.SUPPRESS)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the suite; 0 if every selected case ran, 1 if one failed, 2 if none matched."""
    args = _parser().parse_args(argv)
    rounds: int = args.rounds or (QUICK_ROUNDS if args.quick else ROUNDS)
    if rounds < 1 or not args.loops_scale > 0:
        print("--rounds and --loops-scale must be positive", file=sys.stderr)
        return 2
    selected = select(discover(), quick=args.quick, only=args.only)
    if args.list:
        for suite, case in selected:
            print(f"{suite}/{case.name}  ({case.kind}, loops={case.loops})")
        return 0
    if not selected:
        print(f"no benchmark case matches {args.only}", file=sys.stderr)
        return 2

    def progress(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    results, failures = run_all(
        selected, rounds=rounds, loops_scale=args.loops_scale, progress=progress
    )
    print(format_table(results, failures, rounds=rounds))
    settings = {
        "quick": args.quick,
        "rounds": rounds,
        "only": args.only,
        "loops_scale": args.loops_scale,
        "argv": sys.argv[1:] if argv is None else list(argv),
    }
    write_json(results_document(results, failures, settings=settings), args.json)
    print(f"\nresults written to {args.json}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
