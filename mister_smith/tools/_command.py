"""``CommandTool``: runs allow-listed programs, with checked arguments, under a deadline."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import InvalidToolInput, ToolTimeout
from ._arguments import AllowedCommand, parse_arguments
from ._context import run_blocking
from ._process_group import run_in_process_group
from ._schema import ToolSchema
from ._workspace import Workspace

DEFAULT_SEARCH_PATH = "/usr/local/bin:/usr/bin:/bin"
"""Where program names are looked up, and the ``PATH`` commands run with."""

_LAUNCHERS = frozenset(
    {
        *("env", "xargs", "nice", "nohup", "timeout", "stdbuf", "setsid", "sudo", "doas"),
        *("su", "runuser", "chroot", "unshare", "nsenter", "flock", "watch", "time"),
        *("strace", "ltrace", "busybox", "ionice", "taskset", "chrt", "script", "ssh"),
        *("sh", "bash", "dash", "zsh", "ksh", "mksh", "fish", "csh", "tcsh"),
    }
)
"""Programs whose operands name a program (or script) to run: no operand policy for them."""

_INTERPRETERS = re.compile(
    r"(python|pypy|perl|ruby|node|nodejs|deno|bun|php|lua|luajit|tclsh|wish|Rscript|julia"
    r"|osascript|pwsh|awk|gawk|mawk|nawk|busybox|sed|gsed|m4|expect)[0-9.]*"
)
"""Programs whose operands are code (a script file, or a program text such as awk's or
sed's, whose ``e`` command runs a shell): as dangerous as a launcher. A model that may
write a workspace file and run ``python3`` on it runs anything."""

_ALPHANUMERIC = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


def _is_launcher(name: str) -> bool:
    return name in _LAUNCHERS or _INTERPRETERS.fullmatch(name) is not None


def _spellings(flag: str) -> list[str]:
    """Arguments by which a program would read ``flag``: as written, with a value, a
    long option's unambiguous abbreviations (getopt and git accept them), and a short
    option clustered after one or two others (``-xI`` is ``-x -I``)."""
    spellings = [flag, f"{flag}=x"]
    if flag.startswith("--"):
        for end in range(3, len(flag)):
            spellings += [flag[:end], f"{flag[:end]}=x"]
    elif len(flag) == 2:
        letter = flag[1]
        for first in _ALPHANUMERIC:
            spellings += [f"-{first}{letter}", f"-{first}{letter}x"]
            spellings += [f"-{first}{second}{letter}" for second in _ALPHANUMERIC]
    return spellings


_DANGEROUS_FLAGS: Mapping[str, tuple[str, ...]] = {
    "find": ("-exec", "-execdir", "-ok", "-okdir", "-delete", "-fprint", "-fprintf", "-fls"),
    "git": (
        *("-c", "--config-env", "--exec-path", "--upload-pack", "--receive-pack", "--exec"),
        *("--output", "--ext-diff", "--open-files-in-pager", "-O"),
    ),
    "tar": ("--to-command", "--checkpoint-action", "--use-compress-program", "-I", "-F"),
    "rsync": ("-e", "--rsh", "--rsync-path"),
}
"""Flags that run programs or write anywhere; a flag pattern matching one is refused."""


def _check_search_path(search_path: str) -> str:
    entries = search_path.split(os.pathsep)
    for entry in entries:
        if not os.path.isabs(entry):
            raise ValueError(
                f"search path entry {entry!r} is not absolute: a relative entry (or an empty "
                "one, meaning the current directory) would let a planted program run"
            )
    return search_path


def resolve_executable(program: str, search_path: str) -> str:
    """The absolute path ``program`` runs from: resolved once, when the tool is built.

    A bare name is looked up on ``search_path`` (absolute entries only); an absolute
    path must be an executable file. A relative path with a separator is refused, as it
    would depend on the working directory.

    Raises:
        ValueError: not found, not executable, or relative with a separator.
    """
    if os.path.isabs(program):
        if not (os.path.isfile(program) and os.access(program, os.X_OK)):
            raise ValueError(f"program {program!r} is not an executable file")
        return program
    if os.sep in program or (os.altsep and os.altsep in program):
        raise ValueError(
            f"program {program!r} is a relative path; give a name (looked up on the search "
            "path) or an absolute path"
        )
    found = shutil.which(program, path=search_path)
    if found is None:
        raise ValueError(f"program {program!r} is not on the search path {search_path!r}")
    return os.path.abspath(found)


def _program_names(argv0: str, executable: str) -> set[str]:
    return {os.path.basename(argv0), os.path.basename(os.path.realpath(executable))}


def _check_policy(key: str, spec: AllowedCommand, executable: str) -> None:
    names = _program_names(spec.argv[0], executable)
    if any(_is_launcher(name) for name in names) and any(
        p.operands != "none" for p in spec.policies()
    ):
        raise ValueError(
            f"command {key!r}: {spec.argv[0]!r} runs its operands as a program (or as "
            "code); a policy with operands would let a caller run anything"
        )
    dangerous = {
        spelling: flag
        for name in names
        for flag in _DANGEROUS_FLAGS.get(name, ())
        for spelling in _spellings(flag)
    }
    for policy in spec.policies():
        for pattern in policy.flags:
            compiled = re.compile(pattern)
            for spelling, flag in dangerous.items():
                if compiled.fullmatch(spelling):
                    raise ValueError(
                        f"command {key!r}: flag pattern {pattern!r} accepts {spelling!r} "
                        f"({flag}), which runs programs or writes outside the workspace"
                    )
        for flag, _ in policy.valued_flags:
            if flag in dangerous:
                raise ValueError(
                    f"command {key!r}: valued flag {flag!r} ({dangerous[flag]}) is not allowed"
                )


class CommandTool:
    """Runs one of a fixed set of commands (no shell) and returns its output.

    The model picks a command by name and may add only the arguments its
    :class:`ArgumentPolicy` allows (subcommands, flag patterns, operands; ``--`` goes
    before operands; path operands must stay in the workspace). Each program is resolved
    to an absolute path once, here, on ``search_path`` (absolute entries only), so a
    relative ``PATH`` entry or a ``bin/git`` planted in the workspace is never run (a
    program inside the workspace is refused outright: an agent could rewrite it).
    Registering a launcher (``env``, ``xargs``, a shell...) or an interpreter
    (``python3``, ``perl``, ``node``, ``awk``, ``sed``...) with operands, or a flag
    pattern that accepts e.g. ``find -exec`` or ``git -c`` (also clustered, ``tar
    -xI``, or abbreviated, ``tar --to-com``), is refused. This is a safety net for
    known flags, not a proof: a pattern is only as safe as what it lets through.

    The process gets stdin closed, runs in the workspace root (or ``cwd``) with a fixed
    minimal environment (``PATH=search_path``, ``LANG=C.UTF-8``, plus ``env``), leads its
    own process group, and at the deadline the whole group is stopped (``SIGTERM``, then
    ``SIGKILL`` after ``kill_grace``), so the call returns within about
    ``timeout + kill_grace`` even if the command ignores ``SIGTERM`` or its children
    hold the pipes. Output beyond ``max_output`` bytes per stream is dropped and flagged.

    Returns ``{"command", "exit_code", "stdout", "stderr", "stdout_truncated",
    "stderr_truncated"}``; a non-zero exit is a result, not an error. Running past the
    deadline is a :class:`~mister_smith.ToolTimeout`.

    Args:
        commands: Name -> :class:`AllowedCommand` (or just its argv, taking no arguments).
        name: The tool's name.
        workspace: The jail commands run in and path operands are checked against.
        cwd: Working directory, for tools without a workspace (not with one).
        timeout: Seconds a command may run.
        kill_grace: Seconds between ``SIGTERM`` and ``SIGKILL`` at the deadline.
        max_output: Bytes kept per output stream.
        search_path: Where program names are looked up; also the commands' ``PATH``.
        env: Extra environment variables (``PATH`` is ``search_path``, not settable).
    """

    def __init__(
        self,
        commands: Mapping[str, AllowedCommand | Sequence[str]],
        *,
        name: str = "run_command",
        workspace: Workspace | None = None,
        cwd: str | os.PathLike[str] | None = None,
        timeout: float = 30.0,
        kill_grace: float = 0.5,
        max_output: int = 65_536,
        search_path: str = DEFAULT_SEARCH_PATH,
        env: Mapping[str, str] | None = None,
    ) -> None:
        if not commands:
            raise ValueError("a CommandTool needs at least one allowed command")
        if not timeout > 0 or not kill_grace > 0 or max_output < 1:
            raise ValueError("timeout and kill_grace must be > 0 and max_output >= 1")
        if workspace is not None and cwd is not None:
            raise ValueError("give a workspace (commands run in its root) or a cwd, not both")
        if env is not None and "PATH" in env:
            raise ValueError("PATH is the search_path; it cannot be set through env")
        self.search_path = _check_search_path(search_path)
        self.commands: dict[str, AllowedCommand] = {
            key: value if isinstance(value, AllowedCommand) else AllowedCommand(value)
            for key, value in commands.items()
        }
        self.executables: dict[str, str] = {}
        for key, spec in self.commands.items():
            self.executables[key] = resolve_executable(spec.argv[0], self.search_path)
            _check_policy(key, spec, self.executables[key])
            if workspace is None and any(p.operands == "paths" for p in spec.policies()):
                raise ValueError(f"command {key!r} takes path operands: give a workspace")
            real = os.path.realpath(self.executables[key])
            if workspace is not None and real.startswith(workspace.root.rstrip(os.sep) + os.sep):
                raise ValueError(
                    f"command {key!r}: {real!r} is inside the workspace, where the file "
                    "tools (or a command) could rewrite it"
                )
        self.name = name
        self.workspace = workspace
        self.cwd = workspace.root if workspace is not None else cwd
        self.command_timeout = timeout
        self.kill_grace = kill_grace
        self.timeout = timeout + kill_grace + 1.0
        """The bus's deadline for a call: past the command's own, so that one fires first."""
        self.max_output = max_output
        self.env = {"PATH": self.search_path, "LANG": "C.UTF-8", **(env or {})}
        listing = "; ".join(f"{key}: {spec.describe()}" for key, spec in self.commands.items())
        self.description = f"Run an allowed command and get its output. Commands: {listing}"
        self.input_schema = ToolSchema.from_properties(
            {
                "command": {"enum": sorted(self.commands), "description": "Which command."},
                "args": {
                    "type": "array",
                    "items": {"type": "string", "maxLength": 4_096},
                    "maxItems": max(spec.most_args() for spec in self.commands.values()),
                    "default": [],
                    "description": "Subcommand, flags and operands, as the command allows.",
                },
            },
            required=["command"],
        )

    def _check_paths(self, operands: Sequence[str]) -> list[str]:
        assert self.workspace is not None
        return [self.workspace.check_operand(operand) for operand in operands]

    async def execute(self, args: Mapping[str, Any]) -> dict[str, Any]:
        """Run ``args["command"]`` with the caller's ``args["args"]``, if its policy allows."""
        key = str(args["command"])
        spec = self.commands.get(key)
        if spec is None:
            raise InvalidToolInput(f"no command {key[:80]!r}; allowed: {sorted(self.commands)}")
        given = args.get("args", ())
        if isinstance(given, str) or not isinstance(given, Sequence):
            raise InvalidToolInput("args must be a list of strings")
        parsed = parse_arguments(key, spec, [str(arg) for arg in given])
        operands: Sequence[str] = parsed.operands
        if parsed.policy.operands == "paths" and operands:
            operands = await run_blocking(self._check_paths, operands)
        argv = [self.executables[key], *spec.argv[1:], *parsed.command_line(operands)]
        run = await run_in_process_group(
            argv,
            cwd=self.cwd,
            env=self.env,
            timeout=self.command_timeout,
            kill_grace=self.kill_grace,
            max_output=self.max_output,
        )
        if run.timed_out:
            raise ToolTimeout(
                f"command {key!r} ran past its {self.command_timeout} s limit and was killed "
                "(with its whole process group)"
            )
        return {
            "command": key,
            "exit_code": run.exit_code,
            "stdout": run.stdout.decode("utf-8", errors="replace"),
            "stderr": run.stderr.decode("utf-8", errors="replace"),
            "stdout_truncated": run.stdout_truncated,
            "stderr_truncated": run.stderr_truncated,
        }
