"""Issue 12, item 3: the program that runs is the one resolved at registration.

With the old tool, a relative ``PATH`` entry (``bin``) made a ``bin/git`` planted in the
workspace run instead of git. Programs are now resolved once, to an absolute path, on a
fixed search path of absolute directories, and children get that fixed ``PATH`` and a
minimal environment.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from mister_smith.tools import AllowedCommand, CommandTool, Workspace
from mister_smith.tools._command import DEFAULT_SEARCH_PATH

needs_git = pytest.mark.skipif(
    shutil.which("git", path=DEFAULT_SEARCH_PATH) is None, reason="needs git"
)


@pytest.fixture
def planted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    """A workspace with a ``bin/git`` that leaves a mark, and ``bin`` first on our PATH."""
    root = tmp_path / "ws"
    (root / "bin").mkdir(parents=True)
    fake = root / "bin" / "git"
    fake.write_text("#!/bin/sh\ntouch PLANTED_RAN\necho planted\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"bin{os.pathsep}{os.environ.get('PATH', '')}")
    monkeypatch.setenv("MISTER_SMITH_TEST_SECRET", "hunter2")
    return Workspace(root)


@needs_git
async def test_planted_binary_on_a_relative_path_entry_is_not_run(planted: Workspace) -> None:
    tool = CommandTool(
        {"version": AllowedCommand(("git", "--version")), "env": AllowedCommand(("env",))},
        workspace=planted,
    )
    expected = shutil.which("git", path=DEFAULT_SEARCH_PATH)
    assert tool.executables["version"] == expected
    assert os.path.isabs(tool.executables["version"])
    result = await tool.execute({"command": "version"})
    assert result["stdout"].startswith("git version")
    assert not Path(planted.root, "PLANTED_RAN").exists()
    environment = (await tool.execute({"command": "env"}))["stdout"].split("\n")[:-1]
    assert sorted(environment) == ["LANG=C.UTF-8", f"PATH={DEFAULT_SEARCH_PATH}"]


def test_unsafe_search_paths_and_programs_are_refused(planted: Workspace) -> None:
    for search_path in ("bin:/usr/bin", "/usr/bin::/bin", "/usr/bin:", "./bin"):
        with pytest.raises(ValueError, match="not absolute"):
            CommandTool({"git": ["git"]}, search_path=search_path)
    with pytest.raises(ValueError, match="relative path"):
        CommandTool({"git": ["bin/git"]}, workspace=planted)
    with pytest.raises(ValueError, match="not on the search path"):
        CommandTool({"git": ["git"]}, search_path=str(Path(planted.root, "empty-dir")))
    with pytest.raises(ValueError, match="not an executable file"):
        CommandTool({"x": [str(Path(planted.root, "missing"))]})
    with pytest.raises(ValueError, match="PATH is the search_path"):
        CommandTool({"env": ["env"]}, env={"PATH": "bin"})
    planted_git = str(Path(planted.root, "bin", "git"))
    with pytest.raises(ValueError, match="inside the workspace"):
        CommandTool({"git": [planted_git]}, workspace=planted)
    with pytest.raises(ValueError, match="inside the workspace"):
        CommandTool({"git": ["git"]}, workspace=planted, search_path=str(Path(planted_git).parent))
    with pytest.raises(ValueError, match="not both"):
        CommandTool({"env": ["env"]}, workspace=planted, cwd=planted.root)
