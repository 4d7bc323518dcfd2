"""Issue 12, item 7: an accepted configuration never crashes ``RuntimeManager.open()``.

The review's case: ``thread_stack_size`` passed the range check, then
``threading.stack_size`` (or the first worker thread) failed inside ``open()``. Here
every setting at once is pushed to the largest (then the smallest) value the loader
accepts, and the runtime must open and close; the stack size is probed for real.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import tomli_w
import trio
from test_config_values import LEAVES, nested

from mister_smith.config import AgentConfig, ConfigValidationError, loads_config
from mister_smith.config._thread_stack import MAX_THREAD_STACK, thread_stack_problem
from mister_smith.runtime import RuntimeManager


def merge(into: dict[str, Any], tree: dict[str, Any]) -> None:
    for key, value in tree.items():
        if isinstance(value, dict):
            merge(into.setdefault(key, {}), value)
        else:
            into[key] = value


def extreme_config(candidates: list[object], overrides: dict[str, Any]) -> AgentConfig:
    """Each key at the first of ``candidates`` the loader accepts for it alone."""
    tree: dict[str, Any] = {}
    for path in LEAVES:
        for candidate in candidates:
            try:
                loads_config(tomli_w.dumps(nested(path, candidate)))
            except ConfigValidationError:
                continue
            merge(tree, nested(path, candidate))
            break
    merge(tree, overrides)
    return loads_config(tomli_w.dumps(tree))


# The memory watchdog firing on max_memory = 1 byte is that setting working, not a
# crash; a fixed port could be taken. Everything else stays extreme.
SAFE = {"runtime": {"max_memory": "none"}, "monitoring": {"http_port": 0}}


def current_stack_size() -> int:
    """The process-wide size, read without changing it (a bare call sets it to 0)."""
    size = threading.stack_size(0)
    threading.stack_size(size)
    return size


@pytest.fixture(autouse=True)
def keep_stack_size() -> Iterator[None]:
    """``open()`` applies ``thread_stack_size`` process-wide: undo it for later tests."""
    size = current_stack_size()
    yield
    threading.stack_size(size)


@pytest.mark.parametrize(
    "candidates",
    [
        [sys.maxsize, 1e300, 1.0],  # largest integers, durations of ~292 billion years
        [1e300, sys.maxsize, 1.0],  # durations of 1e300 s
        [0, 0.0, 1, 32 * 1024],  # smallest values
    ],
    ids=["max-int", "max-float", "min"],
)
async def test_extreme_accepted_configs_open_the_runtime(
    candidates: list[object], autojump_clock: trio.abc.Clock
) -> None:
    config = extreme_config(candidates, SAFE)
    async with RuntimeManager.open(config, serve_http=True) as runtime:
        assert runtime.http_port
        await trio.sleep(1.0)
        await runtime.actor_system.shutdown()


def test_the_stack_size_probe_restores_the_process_wide_size() -> None:
    threading.stack_size(256 * 1024)
    thread_stack_problem.cache_clear()
    assert thread_stack_problem(MAX_THREAD_STACK) is None  # 1 GiB starts here
    assert thread_stack_problem(1 << 64) is not None  # threading.stack_size refuses
    assert current_stack_size() == 256 * 1024


@pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_AS is enforced on Linux")
def test_a_stack_size_the_platform_cannot_start_is_refused_at_load() -> None:
    """Under an address-space limit, a 1 GiB stack is in range but cannot start."""
    resource = pytest.importorskip("resource")
    script = textwrap.dedent(
        f"""
        import resource
        from mister_smith.config import ConfigValidationError, loads_config
        limit = 768 * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        try:
            loads_config("[runtime]\\nthread_stack_size = {MAX_THREAD_STACK}\\n")
        except ConfigValidationError as exc:
            print(exc.problems[0])
        else:
            print("accepted")
        """
    )
    assert resource is not None
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    line = done.stdout.strip()
    assert line.startswith("runtime.thread_stack_size: a thread with that stack cannot start")
