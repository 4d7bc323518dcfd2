"""Developer sessions: ``nox -s tests lint typecheck docs`` is what CI runs.

``bench`` and ``demo`` are the other user-facing sessions; see README.rst.
"""

from __future__ import annotations

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
