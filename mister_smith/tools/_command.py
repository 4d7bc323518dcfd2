"""``CommandTool``: runs allow-listed commands with ``trio.run_process`` under a deadline."""

from __future__ import annotations

import functools
import os
import subprocess
from collections.abc import Mapping, Sequence
from typing import Any

import attrs
import trio

from ..errors import InvalidToolInput, ToolPermissionDenied, ToolTimeout
from ._schema import ToolSchema


def _to_argv(value: Sequence[str]) -> tuple[str, ...]:
    if isinstance(value, str):
        raise TypeError(f"argv must be a sequence of strings, not the string {value!r}")
    return tuple(value)


@attrs.frozen
class AllowedCommand:
    """A command :class:`CommandTool` may run.

    Attributes:
        argv: The program and its fixed arguments, e.g. ``("git", "status")``.
        description: What it does (shown to the model).
        allow_args: Whether callers may append arguments of their own.
        max_args: Most extra arguments accepted.
    """

    argv: tuple[str, ...] = attrs.field(converter=_to_argv)
    description: str = ""
    allow_args: bool = False
    max_args: int = 16

    @argv.validator
    def _check_argv(
        self, attribute: attrs.Attribute[tuple[str, ...]], value: tuple[str, ...]
    ) -> None:
        if not value or not all(isinstance(part, str) and part for part in value):
            raise ValueError(f"argv must be non-empty strings, got {value!r}")


def _default_env() -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", os.defpath), "LANG": "C.UTF-8"}


class CommandTool:
    """Runs one of a fixed set of commands (no shell) and returns its output.

    The model picks a command by name; extra arguments are refused unless that command
    allows them. The process runs through ``trio.run_process`` with stdin closed, in
    ``cwd``, with a minimal environment (``PATH`` and ``LANG`` only, unless ``env`` is
    given: no secrets leak from ours), and is killed when ``timeout`` passes (or the
    bus's deadline, whichever is first). Output beyond ``max_output`` bytes per stream
    is dropped and flagged.

    Returns ``{"command", "exit_code", "stdout", "stderr", "stdout_truncated",
    "stderr_truncated"}``; a non-zero exit is a result, not an error.

    Args:
        commands: Name -> :class:`AllowedCommand` (or just its argv).
        name: The tool's name.
        cwd: Working directory of the commands.
        timeout: Seconds a command may run.
        max_output: Bytes kept per output stream.
        env: Environment of the commands (default: minimal, see above).
    """

    def __init__(
        self,
        commands: Mapping[str, AllowedCommand | Sequence[str]],
        *,
        name: str = "run_command",
        cwd: str | os.PathLike[str] | None = None,
        timeout: float = 30.0,
        max_output: int = 65_536,
        env: Mapping[str, str] | None = None,
    ) -> None:
        if not commands:
            raise ValueError("a CommandTool needs at least one allowed command")
        if not timeout > 0 or max_output < 1:
            raise ValueError("timeout must be > 0 and max_output >= 1")
        self.commands: dict[str, AllowedCommand] = {
            key: value if isinstance(value, AllowedCommand) else AllowedCommand(value)
            for key, value in commands.items()
        }
        self.name = name
        self.cwd = cwd
        self.command_timeout = timeout
        self.max_output = max_output
        self.env = dict(env) if env is not None else _default_env()
        listing = "; ".join(
            f"{key}: {spec.description or ' '.join(spec.argv)}"
            + (" (takes arguments)" if spec.allow_args else "")
            for key, spec in self.commands.items()
        )
        self.description = f"Run an allowed command and get its output. Commands: {listing}"
        most_args = max(spec.max_args for spec in self.commands.values())
        self.input_schema = ToolSchema.from_properties(
            {
                "command": {"enum": sorted(self.commands), "description": "Which command."},
                "args": {
                    "type": "array",
                    "items": {"type": "string", "maxLength": 4_096},
                    "maxItems": most_args,
                    "default": [],
                    "description": "Extra arguments, for commands that take them.",
                },
            },
            required=["command"],
        )

    async def execute(self, args: Mapping[str, Any]) -> dict[str, Any]:
        """Run ``args["command"]`` with ``args["args"]``."""
        key = str(args["command"])
        spec = self.commands[key]
        extra = [str(arg) for arg in args.get("args", ())]
        if extra and not spec.allow_args:
            raise ToolPermissionDenied(f"command {key!r} takes no extra arguments")
        if len(extra) > spec.max_args:
            raise InvalidToolInput(f"command {key!r} takes at most {spec.max_args} arguments")
        if any("\x00" in arg for arg in extra):
            raise InvalidToolInput("arguments must not contain NUL characters")
        argv = [*spec.argv, *extra]
        outputs: dict[str, bytearray] = {"stdout": bytearray(), "stderr": bytearray()}
        truncated = {"stdout": False, "stderr": False}

        async def drain(stream: trio.abc.ReceiveStream, which: str) -> None:
            kept = outputs[which]
            async for chunk in stream:
                room = self.max_output - len(kept)
                if len(chunk) > room:
                    kept += chunk[:room]
                    truncated[which] = True
                else:
                    kept += chunk

        with trio.move_on_after(self.command_timeout) as deadline:
            async with trio.open_nursery() as nursery:
                process: trio.Process = await nursery.start(
                    functools.partial(
                        trio.run_process,
                        argv,
                        stdin=subprocess.DEVNULL,
                        stdout=subprocess.PIPE,
                        stderr=subprocess.PIPE,
                        check=False,
                        cwd=self.cwd,
                        env=self.env,
                    )
                )
                assert process.stdout is not None
                assert process.stderr is not None
                nursery.start_soon(drain, process.stdout, "stdout")
                nursery.start_soon(drain, process.stderr, "stderr")
        if deadline.cancelled_caught:
            raise ToolTimeout(
                f"command {key!r} ran past its {self.command_timeout} s limit and was killed"
            )
        return {
            "command": key,
            "exit_code": process.returncode,
            "stdout": outputs["stdout"].decode("utf-8", errors="replace"),
            "stderr": outputs["stderr"].decode("utf-8", errors="replace"),
            "stdout_truncated": truncated["stdout"],
            "stderr_truncated": truncated["stderr"],
        }
