"""Review of issue 12, item 3: other spellings of "an argument that runs a program".

Attacks (found in the review, against the merged command tool):

* Interpreters were not launchers: ``python3``/``perl``/``node`` with path operands run
  a script the model wrote with ``write_file`` a moment before, and ``awk``/``sed``
  take their program as a text operand (``sed 's/x/id/e'`` runs a shell). Registering
  them with operands is now refused like ``env`` or ``sh``.
* The dangerous-flag check matched a flag only as written: a pattern such as
  ``-x[a-zA-Z]*`` for ``tar`` let ``-xIsh`` through (``-x -I sh``: tar runs ``sh`` as
  its compressor), and ``--[a-z]{1,5}=.*`` let ``--use=sh`` through (getopt accepts
  abbreviations of ``--use-compress-program``). Clustered short flags and long
  abbreviations are now probed too.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from mister_smith.errors import ToolPermissionDenied
from mister_smith.tools import AllowedCommand, ArgumentPolicy, CommandTool, Workspace, WriteFileTool


@pytest.mark.parametrize(
    ("program", "operands"),
    [
        ("python3", "paths"),
        ("perl", "paths"),
        ("awk", "text"),
        ("sed", "text"),
        ("sed", "paths"),
    ],
)
def test_interpreters_with_operands_are_refused(
    program: str, operands: str, tmp_path: Path
) -> None:
    if shutil.which(program, path="/usr/local/bin:/usr/bin:/bin") is None:
        pytest.skip(f"{program} is not installed")
    policy = ArgumentPolicy(operands=operands)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="runs its operands as a program"):
        CommandTool(
            {"run": AllowedCommand([program], arguments=policy)}, workspace=Workspace(tmp_path)
        )
    # Without operands (e.g. "python3 --version") it is still fine.
    CommandTool({"version": AllowedCommand([program, "--version"])})


async def test_the_write_then_run_chain_cannot_be_registered(tmp_path: Path) -> None:
    if shutil.which("python3", path="/usr/local/bin:/usr/bin:/bin") is None:
        pytest.skip("python3 is not installed")
    workspace = Workspace(tmp_path)
    await WriteFileTool(workspace).execute(
        {"path": "job.py", "content": "open('PWNED', 'w').write('x')\n"}
    )
    with pytest.raises(ValueError, match="as a program"):
        CommandTool(
            {"py": AllowedCommand(["python3"], arguments=ArgumentPolicy(operands="paths"))},
            workspace=workspace,
        )
    assert not (tmp_path / "PWNED").exists()


@pytest.mark.parametrize(
    ("pattern", "spelling"),
    [
        ("-x[a-zA-Z]*", "-xI"),  # -xIsh: tar -x -I sh
        ("-[a-z][A-Z]", "-xI"),
        ("--[a-z]{1,5}=.*", "--use=x"),  # --use=sh: --use-compress-program=sh
        ("--to-com.*", "--to-com"),
    ],
)
def test_clustered_and_abbreviated_dangerous_flags_are_refused(pattern: str, spelling: str) -> None:
    if shutil.which("tar", path="/usr/local/bin:/usr/bin:/bin") is None:
        pytest.skip("tar is not installed")
    assert re.fullmatch(pattern, spelling)  # the spelling the attack uses gets through
    with pytest.raises(ValueError, match="runs programs") as refused:
        CommandTool({"tar": AllowedCommand(["tar"], arguments=ArgumentPolicy(flags=[pattern]))})
    assert re.search(r"\((-I|-F|--to-command|--use-compress-program)\)", str(refused.value))


async def test_narrow_patterns_still_work_and_still_refuse_at_call_time(tmp_path: Path) -> None:
    if shutil.which("tar", path="/usr/local/bin:/usr/bin:/bin") is None:
        pytest.skip("tar is not installed")
    tool = CommandTool(
        {"list": AllowedCommand(["tar"], arguments=ArgumentPolicy(flags=["-t[vf]*"]))},
        workspace=Workspace(tmp_path),
    )
    with pytest.raises(ToolPermissionDenied, match="not allowed"):
        await tool.execute({"command": "list", "args": ["-tIsh"]})
    with pytest.raises(ValueError, match="valued flag '--to-comm'"):
        CommandTool(
            {
                "t": AllowedCommand(
                    ["tar"], arguments=ArgumentPolicy(valued_flags={"--to-comm": ".*"})
                )
            }
        )
