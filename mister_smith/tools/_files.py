"""File tools jailed in a :class:`Workspace`: read, write, list.

The tools only translate between JSON arguments and the workspace's blocking methods,
which they run in worker threads via :func:`run_blocking` (never on the Trio loop). The
jail itself (no ``..``, no absolute paths, no symlinks, regular single-link files only,
atomic writes, size caps and quota) is the :class:`Workspace`'s.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import ToolExecutionFailed
from ._context import run_blocking
from ._jail import MAX_PATH
from ._schema import ToolSchema
from ._workspace import Workspace


def _path_schema(description: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": "string",
        "minLength": 1,
        "maxLength": MAX_PATH,
        "description": description,
        **extra,
    }


class ReadFileTool:
    """Reads a UTF-8 text file from the workspace: ``{"path", "content", "size"}``.

    Args:
        workspace: The jail.
        name: The tool's name.
    """

    timeout: float | None = None
    idempotent = True
    """Reading twice does no harm: the bus may retry a transient failure."""

    def __init__(self, workspace: Workspace, *, name: str = "read_file") -> None:
        self.workspace = workspace
        self.name = name
        self.description = (
            f"Read a UTF-8 text file (at most {workspace.max_read_bytes} bytes) "
            "from the workspace, by workspace-relative path (symlinks are not followed)."
        )
        self.input_schema = ToolSchema.from_properties(
            {"path": _path_schema("Workspace-relative path of the file.")}, required=["path"]
        )

    def _read(self, path: str) -> dict[str, Any]:
        shown, data = self.workspace.read_bytes(path)
        try:
            content = data.decode("utf-8")
        except UnicodeDecodeError as error:
            raise ToolExecutionFailed(f"{shown!r} is not UTF-8 text: {error}") from error
        return {"path": shown, "content": content, "size": len(data)}

    async def execute(self, args: Mapping[str, Any]) -> dict[str, Any]:
        """Read the file named by ``args["path"]`` (in a worker thread)."""
        return await run_blocking(self._read, str(args["path"]))


class WriteFileTool:
    """Writes (or appends) UTF-8 text to a workspace file: ``{"path", "bytes_written"}``.

    Every write is atomic (the file holds the old or the new content, whatever
    happens), and bounded by the workspace's per-write, per-file and total limits.

    Args:
        workspace: The jail.
        name: The tool's name.
    """

    timeout: float | None = None

    def __init__(self, workspace: Workspace, *, name: str = "write_file") -> None:
        self.workspace = workspace
        self.name = name
        self.description = (
            f"Write UTF-8 text (at most {workspace.max_write_bytes} bytes) to a file in the "
            "workspace, replacing it unless append is true. A file may hold at most "
            f"{workspace.max_file_bytes} bytes."
        )
        self.input_schema = ToolSchema.from_properties(
            {
                "path": _path_schema("Workspace-relative path of the file."),
                "content": {
                    "type": "string",
                    "maxLength": workspace.max_write_bytes,
                    "description": "The text to write.",
                },
                "append": {
                    "type": "boolean",
                    "default": False,
                    "description": "Append instead of replacing.",
                },
            },
            required=["path", "content"],
        )

    def _write(self, path: str, content: str, append: bool) -> dict[str, Any]:
        data = content.encode("utf-8")
        shown = self.workspace.write_bytes(path, data, append=append)
        return {"path": shown, "bytes_written": len(data)}

    async def execute(self, args: Mapping[str, Any]) -> dict[str, Any]:
        """Write ``args["content"]`` to ``args["path"]`` (in a worker thread)."""
        return await run_blocking(
            self._write, str(args["path"]), str(args["content"]), bool(args.get("append", False))
        )


class ListDirectoryTool:
    """Lists a workspace directory.

    Returns ``{"path", "entries": [{"name", "type", "size"}], "truncated"}``.

    Args:
        workspace: The jail.
        name: The tool's name.
    """

    timeout: float | None = None
    idempotent = True
    """Listing twice does no harm: the bus may retry a transient failure."""

    def __init__(self, workspace: Workspace, *, name: str = "list_directory") -> None:
        self.workspace = workspace
        self.name = name
        self.description = (
            "List the entries of a workspace directory (name, type: file/directory/"
            f"symlink/other, size), at most {workspace.max_entries}, sorted by name."
        )
        self.input_schema = ToolSchema.from_properties(
            {"path": _path_schema("Workspace-relative directory.", default=".")}
        )

    def _list(self, path: str) -> dict[str, Any]:
        shown, entries, truncated = self.workspace.list_directory(path)
        return {
            "path": shown,
            "entries": [
                {"name": entry.name, "type": entry.kind, "size": entry.size} for entry in entries
            ],
            "truncated": truncated,
        }

    async def execute(self, args: Mapping[str, Any]) -> dict[str, Any]:
        """List ``args["path"]`` (default: the workspace root; in a worker thread)."""
        return await run_blocking(self._list, str(args.get("path", ".")))
