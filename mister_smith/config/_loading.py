"""Load an :class:`AgentConfig` from TOML and the environment; write one as TOML."""

from __future__ import annotations

import os
import stat
import tempfile
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import tomli_w

from mister_smith.errors import ConfigError

from ._agent import AgentConfig
from ._converter import config_converter
from ._env import apply_environment
from ._errors import ConfigValidationError, short_repr
from ._structure import Report, structure_settings
from ._unset import drop_unset, note_unset


def load_config(
    path: str | os.PathLike[str] | None = None, *, env: Mapping[str, str] | None = None
) -> AgentConfig:
    """Load the configuration: defaults, overridden by a TOML file, then by ``env``.

    The file holds one table per section (``[supervision]``, ``[orchestration.probes]``
    ...) with only the keys that differ from the defaults. Environment variables named
    ``MISTER_SMITH__<SECTION>__<FIELD>`` (case-insensitive, nesting with more ``__``)
    override the file; their text is read per the field's type, and ``none`` clears an
    optional field.

    Args:
        path: The TOML file, or ``None`` to use only defaults and the environment.
        env: The environment to read; ``os.environ`` when ``None``. Pass ``{}`` to
            ignore the environment.

    Raises:
        ConfigValidationError: The file is missing or not TOML, or any key or value
            (from the file or the environment) is invalid. Every problem of the file
            and environment is listed in ``problems``, each naming its key path (or
            variable) and the bad value.
    """
    environment = os.environ if env is None else env
    sources: list[str] = []
    tree: dict[str, Any] = {}
    if path is not None:
        source = os.fspath(path)
        tree = _parse(_read(source), source)
        sources.append(source)
    report = Report()
    if apply_environment(tree, environment, report):
        sources.append("environment")
    return structure_settings(
        config_converter, AgentConfig, tree, report=report, source=" + ".join(sources) or None
    )


def loads_config(text: str, *, source: str = "<string>") -> AgentConfig:
    """Read a configuration from TOML ``text`` over the defaults (no environment).

    Args:
        text: The TOML document.
        source: How to name the text in error messages.

    Raises:
        ConfigValidationError: ``text`` is not TOML or holds invalid keys or values;
            every problem is listed.
    """
    if not isinstance(text, str):
        raise ConfigValidationError([f"expected TOML text, got {type(text).__name__}"])
    tree = _parse(text, source)
    return structure_settings(config_converter, AgentConfig, tree, source=source)


def dump_config(config: AgentConfig) -> str:
    """Write ``config`` as TOML that :func:`loads_config` reads back to an equal config.

    Durations are written as seconds and enums by value. TOML has no null: a setting
    that is not set (``None``, its default) is named in a comment under its table,
    ``# worker_threads = (not set)``; a ``None`` that differs from its default is
    written ``"none"``.
    """
    if not isinstance(config, AgentConfig):
        raise ConfigError(f"dump_config() needs an AgentConfig, got {type(config).__name__}")
    unset: dict[tuple[str, ...], list[str]] = {}
    tree = drop_unset(config_converter.unstructure(config), AgentConfig, unset)
    return note_unset(tomli_w.dumps(tree), unset)


def save_config(config: AgentConfig, path: str | os.PathLike[str]) -> None:
    """Write ``config`` to the TOML file ``path`` (replaced atomically).

    Raises:
        OSError: The file could not be written.
    """
    text = dump_config(config)
    target = Path(path)
    descriptor, temporary = tempfile.mkstemp(
        dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"
    )
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            file.write(text)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


MAX_CONFIG_BYTES: Final = 1024 * 1024
"""The largest configuration file read (1 MiB; real ones are a few KiB)."""


def _read(source: str) -> str:
    """The text of the file ``source``, refusing what is not a small regular file.

    The file is opened non-blocking and checked with ``fstat`` before it is read, so a
    FIFO or device named as the config fails at once instead of blocking for ever.
    """
    try:
        problem, data = _read_regular(source)
    except FileNotFoundError:
        problem, data = f"{source}: file not found", b""
    except OSError as exc:
        problem, data = f"{source}: cannot read the file ({exc.strerror or exc})", b""
    if not problem:
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as exc:
            problem = f"{source}: not UTF-8 text ({exc.reason} at byte {exc.start})"
    raise ConfigValidationError([problem], source=source)


def _read_regular(source: str) -> tuple[str, bytes]:
    """``("", bytes)`` of a regular file of at most :data:`MAX_CONFIG_BYTES`, or the problem."""
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    descriptor = os.open(source, flags)
    try:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            return f"{source}: cannot read the file (not a regular file)", b""
        chunks: list[bytes] = []
        size = 0
        while size <= MAX_CONFIG_BYTES:
            chunk = os.read(descriptor, MAX_CONFIG_BYTES + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    finally:
        os.close(descriptor)
    if size > MAX_CONFIG_BYTES:
        return f"{source}: larger than {MAX_CONFIG_BYTES} bytes", b""
    return "", b"".join(chunks)


def _parse(text: str, source: str) -> dict[str, Any]:
    """Parse TOML; every parser failure is a :class:`ConfigValidationError`.

    ``tomllib`` raises more than ``TOMLDecodeError`` on hostile input: arrays or inline
    tables nested a few hundred deep exhaust the recursion limit (``RecursionError``),
    and an integer of more than 4,300 digits is refused by ``int()`` (``ValueError``).
    """
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        problem = f"{source}: invalid TOML: {exc}"
    except RecursionError:
        problem = f"{source}: invalid TOML: arrays or tables nested too deeply"
    except ValueError as exc:  # int() refusing a number with too many digits
        problem = f"{source}: invalid TOML: {short_repr(str(exc))}"
    raise ConfigValidationError([problem], source=source)
