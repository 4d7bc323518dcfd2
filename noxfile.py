"""Developer sessions: ``nox -s tests lint typecheck docs`` is what CI runs.

``bench``, ``demo`` and ``mutants`` are the other user-facing sessions; see README.rst.
"""

from __future__ import annotations

import fnmatch
import json
import shutil
from collections import Counter
from pathlib import Path
from typing import NamedTuple

import nox

nox.options.sessions = ["tests", "lint", "typecheck", "docs"]
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_missing_interpreters = True

DEV = ".[dev,http,bench]"


@nox.session
def tests(session: nox.Session) -> None:
    """Run the test suite (pytest, trio mode) under coverage and print the report.

    pytest's exit code 5 ("no tests ran") fails the session like any other failure.
    """
    session.install("-e", DEV)
    session.run("coverage", "erase")
    session.run("coverage", "run", "-m", "pytest", *session.posargs)
    session.run("coverage", "report")


@nox.session
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check over the whole tree."""
    session.install("ruff")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict over the package, the tests and the benchmarks."""
    session.install("-e", DEV)
    session.run("mypy", "--strict")


@nox.session
def docs(session: nox.Session) -> None:
    """Build the docs (warnings are errors, every reference must resolve) and run their
    examples; the site lands in ``docs/_build/html``. No network needed."""
    session.install("-e", ".[docs]")
    common = ["-W", "--keep-going", "-n", "-q", "-d", "docs/_build/doctrees"]
    session.run("sphinx-build", *common, "-b", "html", "docs", "docs/_build/html")
    session.run("sphinx-build", *common, "-b", "doctest", "docs", "docs/_build/doctest")


@nox.session
def bench(session: nox.Session) -> None:
    """Run every benchmarks/bench_*.py; each figure is a ratio to raw Trio in the same run."""
    session.install("-e", DEV)
    session.run("python", "-m", "benchmarks", *session.posargs)


@nox.session
def demo(session: nox.Session) -> None:
    """Run the main job: a supervised agent team on embedded defaults.

    ``-- --mcp`` serves its file tools from an MCP server subprocess; ``-- --nodes 3``
    spreads it over three node processes on an embedded nats-server and kills one midway.
    """
    session.install("-e", ".[http,mcp,nats]")
    session.run("mister-smith", "demo", *session.posargs)


@nox.session
def bench_peers(session: nox.Session) -> None:
    """Ours next to triotp, pykka, thespian and autogen-core on the same workloads.

    The peers are installed into this session's own virtualenv only, one at a time: one
    that fails to install does not stop the run, the table shows it as unavailable.
    triotp 0.2.1 pins trio<0.20 and trio-util<0.8, which ours rules out, so it goes in
    with --no-deps (plus its Logbook dependency; tenacity comes with ours) and runs on
    our Trio. ``nox -s bench_peers -- --quick`` is the short run.
    """
    session.install("-e", ".")
    for peer in ("pykka", "thespian", "autogen-core"):
        session.install(peer, success_codes=[0, 1])
    session.install("--no-deps", "triotp", success_codes=[0, 1])
    session.install("Logbook", success_codes=[0, 1])
    session.run("python", "-m", "benchmarks.peers", *session.posargs)


# -- mutation testing -------------------------------------------------------------------

MUTANTS = ".[dev,mutants]"
"""The package with mutmut (the ``mutants`` extra pins it: the session reads its result
files, ``mutants/<module>.meta``, and extends its operator table)."""

MUTATION_FLOOR = 97.0
"""Per-module kill rate (%) below which ``nox -s mutants`` fails."""


class MutationTarget(NamedTuple):
    """A pure core mutated by ``nox -s mutants`` and the tests that are its own.

    ``only`` narrows the mutants to some of the module's functions (mutmut names, e.g.
    ``xǁBreakerCoreǁ*`` for the methods of ``BreakerCore``); empty: the whole module.
    """

    module: str
    tests: tuple[str, ...]
    only: tuple[str, ...] = ()


_SUPERVISION_TESTS = (
    "tests/test_supervision_pure.py",
    "tests/test_supervision_stateful.py",
    "tests/test_mutants_supervision.py",
)

# The mutants that survive, all equivalent (nothing can tell them from the original):
# - pool: ``claim`` revoking with ``now=None`` (the pool is closed: checkin closes the
#   connection without reading the time); ``created`` with ``idle_since=None`` (``_offer``
#   sets it before anything reads it).
# - intensity: ``base >= maximum`` -> ``>`` in ``Backoff.delay`` (one more growth step,
#   then capped by ``min`` all the same).
# - core: ``unwrap_single(None)`` for a run that raised nothing, three times (it returns
#   ``None``, as the guarded branch does).
# - routing: ``int.from_bytes`` without ``"big"`` (its default since Python 3.11);
#   ``PriorityScheduler._seq += 2`` (a sequence number only orders and keys items).
# breaker, policy and strategy: none.
MUTATION_TARGETS: dict[str, MutationTarget] = {
    "pool": MutationTarget(
        "mister_smith/resources/_accounting.py",
        ("tests/test_pool_core.py", "tests/test_mutants_pool.py"),
    ),
    "breaker": MutationTarget(
        "mister_smith/supervision/_breaker.py",
        (*_SUPERVISION_TESTS, "tests/test_circuit_breaker.py"),
        only=("xǁBreakerCoreǁ*",),
    ),
    "policy": MutationTarget("mister_smith/supervision/_decision.py", _SUPERVISION_TESTS),
    "intensity": MutationTarget("mister_smith/supervision/_intensity.py", _SUPERVISION_TESTS),
    "strategy": MutationTarget("mister_smith/supervision/_strategy.py", _SUPERVISION_TESTS),
    "core": MutationTarget(
        "mister_smith/supervision/_core.py",
        ("tests/test_supervisor_core.py", "tests/test_mutants_core.py"),
    ),
    "routing": MutationTarget(
        "mister_smith/transport/_strategies.py",
        ("tests/test_routing.py", "tests/test_mutants_routing.py"),
    ),
}


@nox.session
def mutants(session: nox.Session) -> None:
    """Mutation testing of the pure cores (mutmut), each against its own tests only.

    Prints each module's kill rate and every surviving mutant as a diff; fails when a
    module falls below ``MUTATION_FLOOR``. ``nox -s mutants -- pool breaker`` runs
    those targets only (see ``MUTATION_TARGETS``). Too slow for ``tests``: about
    5 minutes for all seven targets on 2 shared cores (302 s measured, the venv reused).
    """
    names = session.posargs or list(MUTATION_TARGETS)
    unknown = sorted(set(names) - set(MUTATION_TARGETS))
    if unknown:
        session.error(f"unknown targets {unknown}; choose from {sorted(MUTATION_TARGETS)}")
    session.install("-e", MUTANTS)
    work = Path(session.create_tmp()).resolve() / "mutants"
    below = []
    for name in names:
        target = MUTATION_TARGETS[name]
        root = work / name
        _prepare_mutation_root(root, target)
        dotted = target.module.removesuffix(".py").replace("/", ".")
        patterns = [f"{dotted}.{only}" for only in target.only]
        with session.chdir(root):
            session.run(
                "python",
                "tests/mutation_operators.py",  # mutmut, with call deletion and min/max swaps
                "run",
                "--max-children",
                "2",
                *patterns,
                env={"MISTER_SMITH_HYPOTHESIS_PROFILE": "mutants"},
            )
            score, survivors = _mutation_score(root, target, patterns)
            session.log(f"{name}: {target.module}: {score}")
            for mutant in survivors:
                session.run("mutmut", "show", mutant)
        if score.rate < MUTATION_FLOOR:
            below.append(f"{name} ({score.rate:.1f} %)")
    if below:
        session.error(f"below the {MUTATION_FLOOR} % floor: {', '.join(below)}")


class MutationScore(NamedTuple):
    """How the mutants of one module fared (timeouts count as killed)."""

    killed: int
    timeouts: int
    survived: int
    untested: int
    other: int

    @property
    def total(self) -> int:
        """Every mutant considered."""
        return self.killed + self.timeouts + self.survived + self.untested + self.other

    @property
    def rate(self) -> float:
        """Killed (or timed out) as a percentage of all mutants; 100 with none."""
        if not self.total:
            return 100.0
        return 100.0 * (self.killed + self.timeouts) / self.total

    def __str__(self) -> str:
        return (
            f"{self.rate:.1f} % killed ({self.killed + self.timeouts} of {self.total}; "
            f"{self.timeouts} by timeout), {self.survived} survived, "
            f"{self.untested} reached by no test, {self.other} suspicious"
        )


_KILLED, _TIMEOUT, _SURVIVED, _UNTESTED = {1, 3}, {24, -24, 36, 152, 255}, {0}, {5, 33}


def _prepare_mutation_root(root: Path, target: MutationTarget) -> None:
    """A fresh copy of the package and tests with a mutmut config for ``target``."""
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    skip = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree("mister_smith", root / "mister_smith", ignore=skip)
    shutil.copytree("tests", root / "tests", ignore=skip)
    shutil.copy("pyproject.toml", root / "pyproject.toml")
    tests = "".join(f"\n    {test}" for test in target.tests)
    (root / "setup.cfg").write_text(
        "[mutmut]\n"
        "source_paths = mister_smith\n"
        f"only_mutate = {target.module}\n"
        f"pytest_add_cli_args_test_selection ={tests}\n"
        "pytest_add_cli_args = -p\n    no:cacheprovider\n"
    )


def _mutation_score(
    root: Path, target: MutationTarget, patterns: list[str]
) -> tuple[MutationScore, list[str]]:
    """Read mutmut's results for ``target``: its score and the mutants not killed."""
    meta = json.loads((root / "mutants" / f"{target.module}.meta").read_text())
    codes = {
        name: code
        for name, code in meta["exit_code_by_key"].items()
        if not patterns or any(fnmatch.fnmatchcase(name, p) for p in patterns)
    }
    kinds: Counter[str] = Counter()
    missed = []
    for name, code in sorted(codes.items()):
        if code in _KILLED:
            kinds["killed"] += 1
        elif code in _TIMEOUT:
            kinds["timeouts"] += 1
        else:
            missed.append(name)
            if code in _SURVIVED:
                kinds["survived"] += 1
            else:
                kinds["untested" if code in _UNTESTED else "other"] += 1
    score = MutationScore(**{field: kinds[field] for field in MutationScore._fields})
    return score, missed
