"""Pytest fixtures for the harness (needs pytest-trio).

Enable them in a ``conftest.py`` or test module::

    pytest_plugins = ["mister_smith.testing.pytest_plugin"]

then write tests on virtual time::

    async def test_recovers(harness, autojump_clock):
        ref = await harness.actor_system.spawn(ScriptedActor, ["hello"])
        await harness.inject_failure(ref, FailureType.CRASH)
        await harness.assert_recovered(ref)

Override the ``harness_config`` fixture to open the runtime with another
:class:`~mister_smith.config.AgentConfig`. The ``harness`` fixture insists on a
``MockClock`` (request pytest-trio's ``autojump_clock`` or ``mock_clock`` in the test):
the harness's timeouts are meant as virtual time.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import trio
import trio.testing

from ..config import AgentConfig
from ._harness import SystemTestHarness


@pytest.fixture
def harness_config() -> AgentConfig | None:
    """The configuration the ``harness`` fixture opens its runtime with (defaults)."""
    return None


@pytest.fixture
async def harness(harness_config: AgentConfig | None) -> AsyncIterator[SystemTestHarness]:
    """An open :class:`SystemTestHarness`; its invariants are asserted at teardown.

    After the test body the runtime is shut down and
    :meth:`SystemTestHarness.assert_invariants` runs, so a test that leaves the system
    inconsistent (lost messages, leaked tasks, a shutdown past its bound) fails.
    """
    if not isinstance(trio.lowlevel.current_clock(), trio.testing.MockClock):
        pytest.fail(
            "the harness fixture runs on virtual time: add pytest-trio's autojump_clock "
            "(or mock_clock) fixture to the test's arguments"
        )
    async with SystemTestHarness.open(harness_config) as opened:
        yield opened
    opened.assert_invariants()
