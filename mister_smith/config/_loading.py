"""Load an :class:`AgentConfig` from TOML and the environment; write one as TOML."""

from __future__ import annotations

import os
import tempfile
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import tomli_w

from mister_smith.errors import ConfigError

from ._agent import AgentConfig
from ._converter import config_converter
from ._env import apply_environment
from ._errors import ConfigValidationError
from ._structure import Report, structure_settings


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

    Durations are written as seconds, enums by value, and ``None`` as ``"none"``
    (TOML has no null).
    """
    if not isinstance(config, AgentConfig):
        raise ConfigError(f"dump_config() needs an AgentConfig, got {type(config).__name__}")
    return tomli_w.dumps(_none_as_text(config_converter.unstructure(config)))


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


def _read(source: str) -> str:
    try:
        return Path(source).read_text(encoding="utf-8")
    except FileNotFoundError:
        problem = f"{source}: file not found"
    except UnicodeDecodeError as exc:
        problem = f"{source}: not UTF-8 text ({exc.reason} at byte {exc.start})"
    except OSError as exc:
        problem = f"{source}: cannot read the file ({exc.strerror or exc})"
    raise ConfigValidationError([problem], source=source)


def _parse(text: str, source: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigValidationError([f"{source}: invalid TOML: {exc}"], source=source) from None


def _none_as_text(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _none_as_text(item) for key, item in value.items()}
    return "none" if value is None else value
