"""What a caller may add to an allow-listed command: ``ArgumentPolicy`` and ``AllowedCommand``.

Pure: parsing a caller's arguments touches no filesystem and runs nothing. Programs such
as ``find`` (``-exec``), ``env`` (``env sh``) and ``git`` (``git -c alias.x=!sh``) run
whatever their arguments say, so "takes arguments" can never mean "takes any argument":
each command states its subcommands, the flags it accepts (as patterns) and what its
operands are, and anything else is refused before a process starts.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Literal

import attrs

from ..errors import InvalidToolInput, ToolPermissionDenied

OperandKind = Literal["none", "text", "paths"]
"""What a command's operands (arguments that are not flags) may be: ``"none"`` (refused),
``"text"`` (any string) or ``"paths"`` (workspace paths, checked by the jail)."""

_OPERAND_KINDS: tuple[OperandKind, ...] = ("none", "text", "paths")


def _to_argv(value: Sequence[str]) -> tuple[str, ...]:
    if isinstance(value, str):
        raise TypeError(f"argv must be a sequence of strings, not the string {value!r}")
    return tuple(value)


def _to_patterns(value: Iterable[str]) -> tuple[str, ...]:
    if isinstance(value, str):
        raise TypeError(f"flags must be a sequence of patterns, not the string {value!r}")
    return tuple(value)


def _to_valued(value: Mapping[str, str] | Iterable[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    items = value.items() if isinstance(value, Mapping) else value
    return tuple((str(flag), str(pattern)) for flag, pattern in items)


def _to_subcommands(
    value: Mapping[str, ArgumentPolicy] | Iterable[tuple[str, ArgumentPolicy]],
) -> tuple[tuple[str, ArgumentPolicy], ...]:
    items = value.items() if isinstance(value, Mapping) else value
    return tuple((str(name), policy) for name, policy in items)


def _check_pattern(pattern: str) -> None:
    try:
        re.compile(pattern)
    except re.error as error:
        raise ValueError(f"flag pattern {pattern!r} is not a regular expression: {error}") from None


@attrs.frozen
class ArgumentPolicy:
    """Which arguments a caller may add to a command, and how they are passed on.

    A caller's arguments are read left to right. One starting with ``-`` is a flag: it
    must match one of ``flags`` in full (regular expressions, e.g. ``"--oneline"`` or
    ``"--max-count=[0-9]{1,4}"``), or be a key of ``valued_flags``, and then the next
    argument is its value and must match that key's pattern in full. Any other argument
    is an operand; after a caller's ``--`` every argument is. Operands are refused,
    taken as text, or taken as workspace paths (``operands``); a path operand must stay
    inside the workspace lexically and through what exists of it (no symlink, no hard
    link), and is passed as a normalised relative path.

    The command line becomes ``argv + [subcommand] + flags + ["--"] + operands``: the
    ``--`` (when ``end_of_options``, and only when there are operands) makes sure no
    operand is read as an option, even by programs that permute their arguments. For a
    program that does not understand ``--`` (``echo``), set ``end_of_options=False``;
    text operands starting with ``-`` are then refused.

    Values inside a flag (``--format=...``) are only as safe as its pattern: never let a
    pattern accept a path or a command (``--output=.*``, ``-exec``).

    Attributes:
        flags: Patterns of the flags accepted (each matched against a whole argument).
        valued_flags: Flag -> pattern of its value, for flags taking the next argument.
        operands: ``"none"``, ``"text"`` or ``"paths"``.
        end_of_options: Whether ``--`` is inserted before the operands.
        max_args: Most arguments a caller may add (the subcommand not counted).
    """

    flags: tuple[str, ...] = attrs.field(default=(), converter=_to_patterns)
    valued_flags: tuple[tuple[str, str], ...] = attrs.field(default=(), converter=_to_valued)
    operands: OperandKind = "none"
    end_of_options: bool = True
    max_args: int = 16

    def __attrs_post_init__(self) -> None:
        for pattern in self.flags:
            _check_pattern(pattern)
        for flag, pattern in self.valued_flags:
            if not flag.startswith("-") or flag == "--":
                raise ValueError(f"valued flag {flag!r} must start with '-' (and not be '--')")
            _check_pattern(pattern)
        if self.operands not in _OPERAND_KINDS:
            raise ValueError(f"operands must be one of {_OPERAND_KINDS}, got {self.operands!r}")
        if self.max_args < 0:
            raise ValueError(f"max_args must be >= 0, got {self.max_args!r}")

    def accepts_flag(self, argument: str) -> bool:
        """Whether ``argument`` matches one of :attr:`flags` in full."""
        return any(re.fullmatch(pattern, argument) for pattern in self.flags)

    def describe(self) -> str:
        """The policy in a few words, for the model's tool description."""
        parts = [f"flags {', '.join(self.flags)}"] if self.flags else []
        parts += [f"{flag} <{pattern}>" for flag, pattern in self.valued_flags]
        if self.operands != "none":
            parts.append(f"{self.operands} operands")
        return "; ".join(parts) or "no arguments"


_NO_ARGUMENTS = ArgumentPolicy(max_args=0)


@attrs.frozen
class AllowedCommand:
    """A command :class:`CommandTool` may run, and what a caller may add to it.

    Attributes:
        argv: The program (a name looked up on the tool's fixed search path, or an
            absolute path) and its fixed arguments, e.g. ``("git", "--no-pager")``.
        description: What it does (shown to the model).
        arguments: What a caller may add (``None``: nothing).
        subcommands: Name -> policy; when given, a caller's first argument must be one
            of these names, and its policy applies to the rest.
        allow_args: Removed: ``allow_args=True`` let *any* argument through, so
            ``find -exec``, ``env sh`` or ``git -c alias.x=!sh`` ran arbitrary programs.
            Passing ``True`` raises :class:`TypeError`; give an :class:`ArgumentPolicy`.
    """

    argv: tuple[str, ...] = attrs.field(converter=_to_argv)
    description: str = ""
    arguments: ArgumentPolicy | None = None
    subcommands: tuple[tuple[str, ArgumentPolicy], ...] = attrs.field(
        default=(), converter=_to_subcommands
    )
    allow_args: bool = attrs.field(default=False, repr=False)

    def __attrs_post_init__(self) -> None:
        if not self.argv or not all(isinstance(part, str) and part for part in self.argv):
            raise ValueError(f"argv must be non-empty strings, got {self.argv!r}")
        if self.allow_args:
            raise TypeError(
                "AllowedCommand(allow_args=True) was removed: it let any argument through "
                "(find -exec, env sh, git -c alias.x=!...). Pass arguments=ArgumentPolicy(...) "
                "naming the flags and operands the command may take."
            )
        if self.arguments is not None and self.subcommands:
            raise ValueError("give arguments or subcommands (each with its policy), not both")
        for name, _ in self.subcommands:
            if not name or name.startswith("-"):
                raise ValueError(f"subcommand {name!r} must be a non-empty name, not a flag")

    def policies(self) -> list[ArgumentPolicy]:
        """Every policy this command applies (the top-level one or the subcommands')."""
        if self.subcommands:
            return [policy for _, policy in self.subcommands]
        return [self.arguments or _NO_ARGUMENTS]

    def most_args(self) -> int:
        """The most arguments a caller may pass (a subcommand counted)."""
        extra = 1 if self.subcommands else 0
        return extra + max(policy.max_args for policy in self.policies())

    def describe(self) -> str:
        """The command in a few words, for the model's tool description."""
        what = self.description or " ".join(self.argv)
        if self.subcommands:
            subs = ", ".join(f"{name} ({policy.describe()})" for name, policy in self.subcommands)
            return f"{what}; subcommands: {subs}"
        return f"{what} ({(self.arguments or _NO_ARGUMENTS).describe()})"


@attrs.frozen
class ParsedArguments:
    """A caller's arguments, checked against a command's policy.

    Attributes:
        leading: The subcommand (if any) and the accepted flags with their values.
        operands: The operands, in order (paths not yet checked against the jail).
        policy: The policy that applied.
    """

    leading: tuple[str, ...]
    operands: tuple[str, ...]
    policy: ArgumentPolicy

    def command_line(self, operands: Sequence[str]) -> list[str]:
        """``leading``, then ``--`` (if the policy says so), then ``operands``."""
        marker = ["--"] if self.policy.end_of_options and operands else []
        return [*self.leading, *marker, *operands]


def parse_arguments(key: str, spec: AllowedCommand, args: Sequence[str]) -> ParsedArguments:
    """Check a caller's ``args`` for command ``key`` against ``spec``'s policy.

    Raises:
        ToolPermissionDenied: a subcommand, flag, flag value or operand the policy does
            not allow.
        InvalidToolInput: too many arguments, a NUL, a missing subcommand or flag value.
    """
    if any("\x00" in arg for arg in args):
        raise InvalidToolInput("arguments must not contain NUL characters")
    remaining = list(args)
    leading: list[str] = []
    where = f"command {key!r}"
    if spec.subcommands:
        names = [name for name, _ in spec.subcommands]
        if not remaining:
            raise InvalidToolInput(f"{where} needs a subcommand, one of {names}")
        subcommand = remaining.pop(0)
        policy = dict(spec.subcommands).get(subcommand)
        if policy is None:
            raise ToolPermissionDenied(
                f"{where}: {subcommand[:80]!r} is not an allowed subcommand (allowed: {names})"
            )
        leading.append(subcommand)
        where = f"command {key!r} {subcommand}"
    else:
        policy = spec.arguments or _NO_ARGUMENTS
        if spec.arguments is None and remaining:
            raise ToolPermissionDenied(f"command {key!r} takes no extra arguments")
    if len(remaining) > policy.max_args:
        raise InvalidToolInput(f"{where} takes at most {policy.max_args} arguments")
    flags, operands = _split(where, policy, remaining)
    if operands and policy.operands == "none":
        raise ToolPermissionDenied(f"{where} takes no operands, got {operands[0][:80]!r}")
    if policy.operands == "text" and not policy.end_of_options:
        for operand in operands:
            if operand.startswith("-"):
                raise ToolPermissionDenied(
                    f"{where}: operand {operand[:80]!r} would read as an option"
                )
    return ParsedArguments((*leading, *flags), tuple(operands), policy)


def _split(where: str, policy: ArgumentPolicy, args: list[str]) -> tuple[list[str], list[str]]:
    valued = dict(policy.valued_flags)
    flags: list[str] = []
    operands: list[str] = []
    index = 0
    while index < len(args):
        arg = args[index]
        index += 1
        if arg == "--":
            operands.extend(args[index:])
            break
        if not arg.startswith("-") or arg == "-":
            operands.append(arg)
        elif arg in valued:
            if index >= len(args):
                raise InvalidToolInput(f"{where}: flag {arg!r} needs a value")
            value = args[index]
            index += 1
            if not re.fullmatch(valued[arg], value):
                raise ToolPermissionDenied(
                    f"{where}: value {value[:80]!r} of {arg!r} does not match {valued[arg]!r}"
                )
            flags += [arg, value]
        elif policy.accepts_flag(arg):
            flags.append(arg)
        else:
            raise ToolPermissionDenied(f"{where}: flag {arg[:80]!r} is not allowed")
    return flags, operands
