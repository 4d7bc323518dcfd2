"""Issue 12, item 7: odd configuration values are ConfigValidationErrors naming the key.

Each attack is what the review found (a 400-digit integer, NaN/inf, deeply nested TOML,
wrong types, out-of-range stack sizes), written in a file and in the environment. The
property tests throw arbitrary values at every key: the only outcomes allowed are a
config or a ``ConfigValidationError`` whose problems name the key path.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
import tomli_w
from hypothesis import given
from hypothesis import strategies as st

from mister_smith.config import (
    ENV_PREFIX,
    AgentConfig,
    ConfigValidationError,
    RuntimeSettings,
    SupervisionSettings,
    load_config,
    loads_config,
)
from mister_smith.config._structure import settings_class

HUGE = int("9" * 400)
TOO_LONG_FOR_INT = "1" * 5000  # more digits than int() parses (4,300)


def leaf_paths(cls: type = AgentConfig, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Every settable key path of the configuration, e.g. ``("runtime", "max_memory")``."""
    for field in attrs.fields(cls):
        section = settings_class(field.type)
        if section is None:
            yield (*path, field.name)
        else:
            yield from leaf_paths(section, (*path, field.name))


LEAVES = tuple(leaf_paths())


def nested(path: tuple[str, ...], value: object) -> dict[str, Any]:
    tree: Any = value
    for key in reversed(path):
        tree = {key: tree}
    assert isinstance(tree, dict)
    return tree


def problems_of(text: str) -> list[str]:
    with pytest.raises(ConfigValidationError) as caught:
        loads_config(text)
    return caught.value.problems


def env_problems(name: str, value: str) -> list[str]:
    with pytest.raises(ConfigValidationError) as caught:
        load_config(env={name: value})
    return caught.value.problems


@pytest.mark.parametrize(
    ("toml", "key", "reason"),
    [
        (f"[runtime]\nblocking_threads = {HUGE}\n", "runtime.blocking_threads", "out of range"),
        (f"[events]\nhistory_size = {HUGE}\n", "events.history_size", "out of range"),
        (f"[actors]\nmailbox_capacity = {HUGE}\n", "actors.mailbox_capacity", "out of range"),
        (f"[runtime]\nmax_memory = {HUGE}\n", "runtime.max_memory", "out of range"),
        (f"[supervision]\nrestart_window = {HUGE}\n", "supervision.restart_window", "finite"),
        (f"[supervision]\nbackoff_factor = {HUGE}\n", "supervision.backoff_factor", "finite"),
        (f"[tasks]\ntimeout = {HUGE}\n", "tasks.timeout", "finite"),
        (
            f"[orchestration.probes.liveness]\nperiod = {HUGE}\n",
            "orchestration.probes.liveness.period",
            "finite",
        ),
        ("[supervision]\nbackoff_factor = nan\n", "supervision.backoff_factor", "finite"),
        ("[supervision]\nbackoff_jitter = -inf\n", "supervision.backoff_jitter", "finite"),
        ("[monitoring]\ntrace_sampling_rate = nan\n", "monitoring.trace_sampling_rate", "finite"),
        ("[tools]\ndefault_timeout = inf\n", "tools.default_timeout", "finite"),
        ("[runtime]\nblocking_threads = 1.5\n", "runtime.blocking_threads", "integer"),
        ("[runtime]\nblocking_threads = true\n", "runtime.blocking_threads", "integer"),
        ("[runtime]\nblocking_threads = [1]\n", "runtime.blocking_threads", "integer"),
        ("[runtime]\nblocking_threads = {a = 1}\n", "runtime.blocking_threads", "integer"),
        ("[monitoring]\nlog_level = 3\n", "monitoring.log_level", "string"),
        ("runtime = 3\n", "runtime", "table"),
        (
            f"[runtime]\nthread_stack_size = {1 << 40}\n",
            "runtime.thread_stack_size",
            "1073741824",
        ),
        (f"[runtime]\nthread_stack_size = {1 << 64}\n", "runtime.thread_stack_size", "range"),
        ("[runtime]\nthread_stack_size = 1024\n", "runtime.thread_stack_size", "32768"),
    ],
)
def test_odd_values_in_a_file_name_their_key(toml: str, key: str, reason: str) -> None:
    problems = problems_of(toml)
    assert len(problems) == 1
    assert problems[0].startswith(f"{key}: ")
    assert reason in problems[0]
    assert len(problems[0]) < 200  # a 400-digit value is quoted short


@pytest.mark.parametrize(
    ("variable", "value", "reason"),
    [
        ("RUNTIME__BLOCKING_THREADS", str(HUGE), "out of range"),
        ("ACTORS__MAILBOX_CAPACITY", TOO_LONG_FOR_INT, "out of range"),
        ("EVENTS__HISTORY_SIZE", "-" + TOO_LONG_FOR_INT, "out of range"),
        ("SUPERVISION__RESTART_WINDOW", str(HUGE), "finite"),
        ("SUPERVISION__RESTART_WINDOW", "1e999", "finite"),
        ("SUPERVISION__BACKOFF_FACTOR", "nan", "finite"),
        ("SUPERVISION__BACKOFF_FACTOR", "-inf", "finite"),
        ("SUPERVISION__BACKOFF_FACTOR", str(HUGE), "finite"),
        ("RUNTIME__THREAD_STACK_SIZE", str(1 << 40), "1073741824"),
        ("RUNTIME__THREAD_STACK_SIZE", str(1 << 64), "range"),
        ("RUNTIME__BLOCKING_THREADS", "many", "integer"),
        ("MONITORING__HTTP_PORT", "70000", "65535"),
    ],
)
def test_odd_values_in_the_environment_name_the_variable(
    variable: str, value: str, reason: str
) -> None:
    name = ENV_PREFIX + variable
    problems = env_problems(name, value)
    assert len(problems) == 1
    dotted = variable.lower().replace("__", ".")
    assert problems[0].startswith(f"{name} ({dotted}): ")
    assert reason in problems[0]
    assert len(problems[0]) < 250


@pytest.mark.parametrize("depth", [50, 400, 5_000, 200_000])
@pytest.mark.parametrize(
    "shape",
    [("[", "]"), ("{a=", "}")],
    ids=["arrays", "inline-tables"],
)
def test_deeply_nested_toml_is_refused_not_a_recursion_error(
    depth: int, shape: tuple[str, str]
) -> None:
    opening, closing = shape
    inner = "1" if opening == "{a=" else ""
    text = "[runtime]\nblocking_threads = " + opening * depth + inner + closing * depth + "\n"
    problems = problems_of(text)
    assert len(problems) == 1
    # Parsed but wrong (shallow) or refused by the parser (deep): never a crash.
    assert problems[0].startswith(("runtime.blocking_threads: ", "<string>: invalid TOML"))
    assert len(problems[0]) < 300


def test_an_integer_too_long_for_the_toml_parser_is_a_config_error() -> None:
    problems = problems_of(f"[runtime]\nblocking_threads = {TOO_LONG_FOR_INT}\n")
    assert problems[0].startswith("<string>: invalid TOML")


def test_the_same_values_built_in_python_are_config_errors_too() -> None:
    with pytest.raises(ConfigValidationError, match=r"RuntimeSettings\.blocking_threads"):
        RuntimeSettings(blocking_threads=HUGE)
    with pytest.raises(ConfigValidationError, match=r"RuntimeSettings\.thread_stack_size"):
        RuntimeSettings(thread_stack_size=1 << 40)
    with pytest.raises(ConfigValidationError, match=r"SupervisionSettings\.backoff_factor"):
        SupervisionSettings(backoff_factor=HUGE)
    with pytest.raises(ConfigValidationError, match=r"SupervisionSettings\.restart_window"):
        SupervisionSettings(restart_window=HUGE)
    with pytest.raises(ConfigValidationError, match=r"RuntimeSettings\.max_memory"):
        RuntimeSettings(max_memory=10**5000)  # repr() itself refuses this one


def test_a_fifo_as_config_file_does_not_block(tmp_path: Path) -> None:
    fifo = tmp_path / "config.toml"
    try:
        import os

        os.mkfifo(fifo)
    except (AttributeError, OSError):
        pytest.skip("no FIFOs here")
    with pytest.raises(ConfigValidationError, match="not a regular file"):
        load_config(fifo, env={})


def test_an_oversized_config_file_is_refused_unread(tmp_path: Path) -> None:
    path = tmp_path / "huge.toml"
    path.write_text("# padding\n" * 200_000)  # 2 MB
    with pytest.raises(ConfigValidationError, match="larger than"):
        load_config(path, env={})


def problems_or_none(load: Callable[[], AgentConfig]) -> list[str] | None:
    """The problems ``load()`` reported, or ``None`` when it returned a config.

    Any other exception (``OverflowError``, ``RecursionError``...) fails the test.
    """
    try:
        config = load()
    except ConfigValidationError as exc:
        return exc.problems
    assert isinstance(config, AgentConfig)
    return None


toml_scalars = st.one_of(
    st.integers(min_value=-(10**600), max_value=10**600),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.text(max_size=20),
    st.sampled_from(["none", "1h", "-1s", "1e999s", "nan", "0", str(sys.maxsize + 1)]),
)
toml_values = st.recursive(
    toml_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=8,
)


@given(path=st.sampled_from(LEAVES), value=toml_values)
def test_any_value_at_any_key_is_a_config_or_a_named_problem(
    path: tuple[str, ...], value: object
) -> None:
    problems = problems_or_none(lambda: loads_config(tomli_w.dumps(nested(path, value))))
    if problems is not None:
        # The key itself, or its partner in an ordered pair (backoff_initial <= _max).
        section = ".".join(path[:-1])
        assert problems
        assert all(problem.startswith(section) for problem in problems), problems
        assert all("\n" not in problem and len(problem) < 400 for problem in problems)


env_texts = st.one_of(
    st.text(max_size=30),
    st.integers(min_value=-(10**500), max_value=10**500).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["none", "1e999", "nan", "-inf", "1_000", TOO_LONG_FOR_INT, "0x10"]),
)


@given(path=st.sampled_from(LEAVES), text=env_texts)
def test_any_environment_text_is_a_config_or_a_named_problem(
    path: tuple[str, ...], text: str
) -> None:
    name = ENV_PREFIX + "__".join(segment.upper() for segment in path)
    if "\x00" in text:
        text = text.replace("\x00", "")  # the OS cannot hold it in a variable
    problems = problems_or_none(lambda: load_config(env={name: text}))
    if problems is not None:
        section = ".".join(path[:-1])
        assert problems
        assert all(problem.startswith((name, section)) for problem in problems), problems


def test_a_value_of_many_long_parts_is_still_quoted_in_one_short_line() -> None:
    value = [[], {"\x9bW)d_": [-19952, 10**600, []]}, [10**600, {"full": -(10**600)}]]
    problems = problems_or_none(
        lambda: loads_config(tomli_w.dumps(nested(("persistence", "dedupe_window"), value)))
    )
    assert problems is not None
    assert all("\n" not in problem and len(problem) < 400 for problem in problems), problems
