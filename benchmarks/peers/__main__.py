"""``python -m benchmarks.peers [--quick] [--peer NAME] [--workload KEY] [--json PATH]``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from .._report import write_json
from .._runner import PACKAGE_DIR
from ._model import WORKLOADS, workload
from ._report import format_table, results_document
from ._runner import ADAPTERS, OURS, Figures, compare, worker_sides

DEFAULT_JSON = PACKAGE_DIR / "peers_results.json"
ROUNDS = 5
QUICK_ROUNDS = 3
TIMEOUT = 60.0
QUICK_TIMEOUT = 15.0


def _parser() -> argparse.ArgumentParser:
    peers = [name for name in ADAPTERS if name != OURS]
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.peers",
        description=(
            "Run the tell / ask / fan-out / spawn+stop / restart workloads on ours and on "
            "each peer framework, each in its own worker process, in one run; print every "
            "figure with its ratio to ours."
        ),
    )
    parser.add_argument(
        "--quick", action="store_true", help="small loops and 3 rounds (about 2 minutes)"
    )
    parser.add_argument(
        "--peer",
        action="append",
        choices=peers,
        metavar="NAME",
        help=f"run only these peers next to ours (repeatable; default: {', '.join(peers)})",
    )
    parser.add_argument(
        "--workload",
        action="append",
        choices=[w.key for w in WORKLOADS],
        metavar="KEY",
        help=f"run only these workloads (repeatable; {', '.join(w.key for w in WORKLOADS)})",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=None,
        help=f"measured rounds per side (default: {ROUNDS}, {QUICK_ROUNDS} with --quick)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=None,
        help=f"seconds one run may take before its side is marked n/a (default: {TIMEOUT:g}, "
        f"{QUICK_TIMEOUT:g} with --quick)",
    )
    parser.add_argument(
        "--json",
        type=Path,
        default=DEFAULT_JSON,
        metavar="PATH",
        help=f"where to write the results (default: {DEFAULT_JSON})",
    )
    parser.add_argument("--list", action="store_true", help="list workloads and sides, exit")
    parser.add_argument("--loops-scale", type=float, default=1.0, help=argparse.SUPPRESS)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the comparison; 0 if ours has a figure for every workload, else 1 (2: bad args)."""
    args = _parser().parse_args(argv)
    rounds: int = args.rounds or (QUICK_ROUNDS if args.quick else ROUNDS)
    timeout: float = args.timeout or (QUICK_TIMEOUT if args.quick else TIMEOUT)
    if rounds < 1 or not timeout > 0 or not args.loops_scale > 0:
        print("--rounds, --timeout and --loops-scale must be positive", file=sys.stderr)
        return 2
    workloads = [workload(key) for key in args.workload] if args.workload else list(WORKLOADS)
    if args.list:
        for item in workloads:
            loops = item.loops_for(args.quick)
            print(f"{item.key}: {item.title} ({item.describe_work(loops)} per run)")
        print("sides:", ", ".join(ADAPTERS))
        return 0

    def progress(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    comparison = compare(
        worker_sides(args.peer),
        workloads,
        quick=args.quick,
        rounds=rounds,
        timeout=timeout,
        loops_scale=args.loops_scale,
        progress=progress,
    )
    print(format_table(comparison))
    settings = {
        "quick": args.quick,
        "peers": args.peer,
        "workloads": args.workload,
        "loops_scale": args.loops_scale,
        "argv": sys.argv[1:] if argv is None else list(argv),
    }
    write_json(results_document(comparison, settings=settings), args.json)
    print(f"\nresults written to {args.json}", file=sys.stderr)
    ours_ok = all(isinstance(r.outcomes.get(OURS), Figures) for r in comparison.results)
    return 0 if ours_ok else 1


if __name__ == "__main__":
    sys.exit(main())
