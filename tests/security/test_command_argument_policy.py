"""Issue 12, item 3: a command's arguments follow its policy; "takes arguments" is not
"takes anything".

With the old ``allow_args=True``, ``find -exec``, ``env sh`` and ``git -c alias.x=!...``
ran arbitrary programs. Now each command names its subcommands, flag patterns and
operand kind; ``--`` goes before operands; path operands stay in the workspace; and
policies that would hand a caller a program launcher are refused when the tool is built.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from mister_smith.errors import InvalidToolInput, ToolError, ToolPermissionDenied
from mister_smith.tools import AllowedCommand, ArgumentPolicy, CommandTool, Workspace

needs = pytest.mark.skipif(
    not all(shutil.which(program) for program in ("find", "env", "git", "sh")),
    reason="needs find, env, git and sh",
)
PWNED = "touch PWNED"


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    root = tmp_path / "ws"
    (root / "src").mkdir(parents=True)
    (root / "src" / "a.py").write_text("print('a')\n")
    (tmp_path / "secret.txt").write_text("top secret")
    return Workspace(root)


def assert_nothing_ran(workspace: Workspace) -> None:
    assert not Path(workspace.root, "PWNED").exists()


@needs
async def test_find_exec_is_refused(workspace: Workspace) -> None:
    tool = CommandTool(
        {
            "find": AllowedCommand(
                ("find", "."),
                arguments=ArgumentPolicy(
                    valued_flags={"-name": r"[\w.*?-]{1,64}", "-type": "[fd]"},
                    end_of_options=False,
                ),
            )
        },
        workspace=workspace,
    )
    found = await tool.execute({"command": "find", "args": ["-name", "*.py", "-type", "f"]})
    assert found["stdout"] == "./src/a.py\n"
    for attack in (
        ["-exec", "sh", "-c", PWNED, ";"],
        ["-name", "*.py", "-execdir", "sh", "-c", PWNED, ";"],
        ["-name", "x", "-ok", "sh", ";"],
        ["-delete"],
    ):
        with pytest.raises(ToolPermissionDenied, match="is not allowed"):
            await tool.execute({"command": "find", "args": attack})
    with pytest.raises(ToolPermissionDenied, match="does not match"):
        await tool.execute({"command": "find", "args": ["-type", "f;sh"]})
    assert_nothing_ran(workspace)
    # A careless pattern that would accept -exec is refused when the tool is built.
    with pytest.raises(ValueError, match="accepts '-exec'"):
        CommandTool({"find": AllowedCommand(("find",), arguments=ArgumentPolicy(flags=["-.*"]))})


@needs
async def test_env_sh_is_refused(workspace: Workspace) -> None:
    tool = CommandTool({"env": AllowedCommand(("env",))}, workspace=workspace)
    with pytest.raises(ToolPermissionDenied, match="takes no extra arguments"):
        await tool.execute({"command": "env", "args": ["sh", "-c", PWNED]})
    flags_only = CommandTool(
        {"env": AllowedCommand(("env",), arguments=ArgumentPolicy(flags=["-0", "--null"]))},
        workspace=workspace,
    )
    with pytest.raises(ToolPermissionDenied, match="takes no operands, got 'sh'"):
        await flags_only.execute({"command": "env", "args": ["-0", "sh"]})
    assert_nothing_ran(workspace)
    # env, xargs, shells...: a policy with operands would let a caller run any program.
    for launcher in ("env", "sh", "xargs"):
        for kind in ("text", "paths"):
            with pytest.raises(ValueError, match="runs its operands as a program"):
                CommandTool(
                    {"x": AllowedCommand((launcher,), arguments=ArgumentPolicy(operands=kind))},
                    workspace=workspace,
                )


@needs
async def test_git_config_alias_is_refused(workspace: Workspace) -> None:
    subprocess.run(["git", "init", "-q", workspace.root], check=True)
    git = AllowedCommand(
        ("git", "--no-pager"),
        subcommands={
            "status": ArgumentPolicy(flags=["--short"]),
            "log": ArgumentPolicy(flags=["--oneline", "--max-count=[0-9]{1,3}"], operands="paths"),
        },
    )
    tool = CommandTool({"git": git}, workspace=workspace)
    status = await tool.execute({"command": "git", "args": ["status", "--short"]})
    assert status["exit_code"] == 0
    assert status["stdout"] == "?? src/\n"
    for attack, error in (
        (["-c", "alias.x=!" + PWNED, "x"], "'-c' is not an allowed subcommand"),
        (["status", "-c", "alias.x=!" + PWNED], "flag '-c' is not allowed"),
        (["x"], "'x' is not an allowed subcommand"),
        (["log", "--output=/tmp/pwned"], "flag '--output=/tmp/pwned' is not allowed"),
        (["log", "--", "../secret.txt"], "contains '..'"),
        (["log", "/etc/passwd"], "is absolute"),
    ):
        with pytest.raises(ToolPermissionDenied, match=error):
            await tool.execute({"command": "git", "args": attack})
    with pytest.raises(InvalidToolInput, match="needs a subcommand"):
        await tool.execute({"command": "git", "args": []})
    assert_nothing_ran(workspace)
    with pytest.raises(ValueError, match="accepts '-c'"):
        CommandTool({"git": AllowedCommand(("git",), arguments=ArgumentPolicy(flags=[r"-\w"]))})


def test_allow_args_is_removed_not_reinterpreted() -> None:
    with pytest.raises(TypeError, match=r"allow_args=True\) was removed"):
        AllowedCommand(("find",), allow_args=True)


@pytest.fixture
def show_args(tmp_path: Path) -> str:
    """An executable outside the workspace printing each argument on its own line."""
    script = tmp_path / "show-args"
    script.write_text('#!/bin/sh\nfor arg in "$@"; do printf "%s\\n" "$arg"; done\n')
    script.chmod(0o755)
    return str(script)


async def test_double_dash_goes_before_operands(workspace: Workspace, show_args: str) -> None:
    tool = CommandTool(
        {
            "show": AllowedCommand(
                (show_args, "fixed"),
                arguments=ArgumentPolicy(flags=["-v"], operands="paths"),
            )
        },
        workspace=workspace,
    )
    result = await tool.execute(
        {"command": "show", "args": ["src/a.py", "-v", "--", "-rf", "./src//x"]}
    )
    assert result["stdout"].split("\n")[:-1] == ["fixed", "-v", "--", "src/a.py", "./-rf", "src/x"]
    assert (await tool.execute({"command": "show", "args": ["-v"]}))["stdout"] == "fixed\n-v\n"
    with pytest.raises(ToolPermissionDenied, match="flag '-rf' is not allowed"):
        await tool.execute({"command": "show", "args": ["-rf"]})


async def test_path_operands_stay_in_the_workspace(
    workspace: Workspace, show_args: str, tmp_path: Path
) -> None:
    root = Path(workspace.root)
    (root / "out").symlink_to(tmp_path)
    os.link(tmp_path / "secret.txt", root / "linked.txt")
    tool = CommandTool(
        {"show": AllowedCommand((show_args,), arguments=ArgumentPolicy(operands="paths"))},
        workspace=workspace,
    )
    for path, error in (
        ("../secret.txt", "contains '..'"),
        ("/etc/passwd", "is absolute"),
        ("~/x", "is absolute"),
        ("out/secret.txt", "'out' is a symlink"),
        ("out", "'out' is a symlink"),
        ("linked.txt", "has 2 hard links"),
    ):
        with pytest.raises(ToolPermissionDenied, match=error):
            await tool.execute({"command": "show", "args": [path]})
    with pytest.raises(ToolError, match=r"'src/a\.py' is a regular file"):
        await tool.execute({"command": "show", "args": ["src/a.py/x"]})
    created = await tool.execute({"command": "show", "args": ["new/file.txt"]})
    assert created["stdout"] == "--\nnew/file.txt\n"  # a missing tail is allowed
    with pytest.raises(ValueError, match="give a workspace"):
        CommandTool(
            {"show": AllowedCommand((show_args,), arguments=ArgumentPolicy(operands="paths"))}
        )


async def test_text_operands_that_look_like_options(show_args: str, tmp_path: Path) -> None:
    tool = CommandTool(
        {
            "echo": AllowedCommand(
                (show_args,), arguments=ArgumentPolicy(operands="text", end_of_options=False)
            )
        },
        cwd=tmp_path,
    )
    with pytest.raises(ToolPermissionDenied, match="would read as an option"):
        await tool.execute({"command": "echo", "args": ["--", "-n"]})
    assert (await tool.execute({"command": "echo", "args": ["a", "b"]}))["stdout"] == "a\nb\n"


def test_policies_are_checked_when_built() -> None:
    with pytest.raises(ValueError, match="not a regular expression"):
        ArgumentPolicy(flags=["("])
    with pytest.raises(ValueError, match="must start with '-'"):
        ArgumentPolicy(valued_flags={"name": ".*"})
    with pytest.raises(ValueError, match="operands must be one of"):
        ArgumentPolicy(operands="anything")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not both"):
        AllowedCommand(
            ("git",), arguments=ArgumentPolicy(), subcommands={"status": ArgumentPolicy()}
        )
    with pytest.raises(ValueError, match="not a flag"):
        AllowedCommand(("git",), subcommands={"-c": ArgumentPolicy()})
    with pytest.raises(TypeError, match="not the string"):
        ArgumentPolicy(flags="-v")
