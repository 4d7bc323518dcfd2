"""File tools confined to a workspace directory: read, write, list."""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from pathlib import PurePosixPath, PureWindowsPath
from typing import Any

from ..errors import InvalidToolInput, ToolExecutionFailed, ToolPermissionDenied
from ._context import run_blocking
from ._schema import ToolSchema

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_MAX_PATH = 4_096


class Workspace:
    """A directory that file tools are confined to.

    A path given to a tool must be relative, without ``..`` components, and must still
    be inside the workspace once every symlink is resolved; the final component is
    opened with ``O_NOFOLLOW`` so it cannot be swapped for a symlink in between. Any
    other path is refused with :class:`~mister_smith.ToolPermissionDenied`. (A local
    process racing to replace *intermediate* directories with symlinks is outside this
    threat model.) All file I/O runs in worker threads via :func:`run_blocking`.

    Args:
        root: The workspace directory (must exist; resolved once, here).
        max_read_bytes: Largest file :class:`ReadFileTool` returns.
        max_write_bytes: Largest content :class:`WriteFileTool` writes (UTF-8 bytes).
        max_entries: Most entries :class:`ListDirectoryTool` returns.
        create_dirs: Whether writes create missing parent directories.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        max_read_bytes: int = 1_048_576,
        max_write_bytes: int = 1_048_576,
        max_entries: int = 1_000,
        create_dirs: bool = True,
    ) -> None:
        resolved = os.path.realpath(root)
        if not os.path.isdir(resolved):
            raise ValueError(f"workspace root {os.fspath(root)!r} is not a directory")
        for label, value in (
            ("max_read_bytes", max_read_bytes),
            ("max_write_bytes", max_write_bytes),
            ("max_entries", max_entries),
        ):
            if value < 1:
                raise ValueError(f"{label} must be >= 1, got {value!r}")
        self.root = resolved
        self.max_read_bytes = max_read_bytes
        self.max_write_bytes = max_write_bytes
        self.max_entries = max_entries
        self.create_dirs = create_dirs

    def __repr__(self) -> str:
        return f"Workspace({self.root!r})"

    def tools(self) -> list[ReadFileTool | WriteFileTool | ListDirectoryTool]:
        """A read, a write and a list tool over this workspace."""
        return [ReadFileTool(self), WriteFileTool(self), ListDirectoryTool(self)]

    def resolve(self, path: str) -> str:
        """The real absolute path of workspace-relative ``path`` (blocking: use a thread).

        Raises:
            InvalidToolInput: empty, too long, or containing NUL.
            ToolPermissionDenied: absolute, with ``..``, or resolving outside the root.
        """
        if not path or len(path) > _MAX_PATH or "\x00" in path:
            raise InvalidToolInput(f"path {path[:80]!r} is empty, too long or contains NUL")
        if (
            path.startswith(("/", "\\", "~"))
            or PurePosixPath(path).is_absolute()
            or PureWindowsPath(path).is_absolute()
            or PureWindowsPath(path).drive
        ):
            raise ToolPermissionDenied(f"path {path!r} is absolute; give a workspace path")
        if ".." in PurePosixPath(path.replace("\\", "/")).parts:
            raise ToolPermissionDenied(
                f"path {path!r} contains '..'; it must stay in the workspace"
            )
        real = os.path.realpath(os.path.join(self.root, path))
        if not self.contains(real):
            raise ToolPermissionDenied(f"path {path!r} leads outside the workspace (symlink)")
        return real

    def contains(self, real: str) -> bool:
        """Whether the resolved absolute path ``real`` is the root or inside it."""
        return real == self.root or real.startswith(self.root.rstrip(os.sep) + os.sep)

    def relative(self, real: str) -> str:
        """``real`` relative to the root (``"."`` for the root)."""
        return os.path.relpath(real, self.root)


def _path_schema(description: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": "string",
        "minLength": 1,
        "maxLength": _MAX_PATH,
        "description": description,
        **extra,
    }


class ReadFileTool:
    """Reads a UTF-8 text file from the workspace: ``{"path", "content", "size"}``."""

    timeout: float | None = None

    def __init__(self, workspace: Workspace, *, name: str = "read_file") -> None:
        self.workspace = workspace
        self.name = name
        self.description = (
            f"Read a UTF-8 text file (at most {workspace.max_read_bytes} bytes) "
            "from the workspace, by workspace-relative path."
        )
        self.input_schema = ToolSchema.from_properties(
            {"path": _path_schema("Workspace-relative path of the file.")}, required=["path"]
        )

    def _read(self, path: str) -> dict[str, Any]:
        real = self.workspace.resolve(path)
        limit = self.workspace.max_read_bytes
        fd = os.open(real, os.O_RDONLY | _NOFOLLOW | _CLOEXEC)
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise ToolExecutionFailed(f"{path!r} is not a regular file")
            if info.st_size > limit:
                raise ToolExecutionFailed(
                    f"{path!r} is {info.st_size} bytes, over the {limit}-byte read limit"
                )
            chunks: list[bytes] = []
            size = 0
            while size <= limit:
                chunk = os.read(fd, min(65_536, limit + 1 - size))
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
        finally:
            os.close(fd)
        if size > limit:
            raise ToolExecutionFailed(f"{path!r} grew past the {limit}-byte read limit")
        try:
            content = b"".join(chunks).decode("utf-8")
        except UnicodeDecodeError as error:
            raise ToolExecutionFailed(f"{path!r} is not UTF-8 text: {error}") from error
        return {"path": self.workspace.relative(real), "content": content, "size": size}

    async def execute(self, args: Mapping[str, Any]) -> dict[str, Any]:
        """Read the file named by ``args["path"]``."""
        return await run_blocking(self._read, str(args["path"]))


class WriteFileTool:
    """Writes (or appends) UTF-8 text to a workspace file: ``{"path", "bytes_written"}``."""

    timeout: float | None = None

    def __init__(self, workspace: Workspace, *, name: str = "write_file") -> None:
        self.workspace = workspace
        self.name = name
        self.description = (
            f"Write UTF-8 text (at most {workspace.max_write_bytes} bytes) to a file in the "
            "workspace, replacing it unless append is true."
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
        limit = self.workspace.max_write_bytes
        if len(data) > limit:
            raise ToolExecutionFailed(f"content is {len(data)} bytes, over the {limit}-byte limit")
        real = self.workspace.resolve(path)
        if real == self.workspace.root:
            raise ToolPermissionDenied("cannot write to the workspace root itself")
        parent = os.path.dirname(real)
        if not os.path.isdir(parent):
            if not self.workspace.create_dirs:
                raise ToolExecutionFailed(f"directory of {path!r} does not exist")
            os.makedirs(parent, exist_ok=True)
            if not self.workspace.contains(os.path.realpath(parent)):
                raise ToolPermissionDenied(f"path {path!r} leads outside the workspace")
        flags = os.O_WRONLY | os.O_CREAT | _NOFOLLOW | _CLOEXEC
        flags |= os.O_APPEND if append else os.O_TRUNC
        fd = os.open(real, flags, 0o644)
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise ToolExecutionFailed(f"{path!r} is not a regular file")
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)
        return {"path": self.workspace.relative(real), "bytes_written": len(data)}

    async def execute(self, args: Mapping[str, Any]) -> dict[str, Any]:
        """Write ``args["content"]`` to ``args["path"]``."""
        return await run_blocking(
            self._write, str(args["path"]), str(args["content"]), bool(args.get("append", False))
        )


class ListDirectoryTool:
    """Lists a workspace directory.

    Returns ``{"path", "entries": [{"name", "type", "size"}], "truncated"}``.
    """

    timeout: float | None = None

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
        real = self.workspace.resolve(path)
        if not os.path.isdir(real):
            raise ToolExecutionFailed(f"{path!r} is not a directory")
        entries: list[dict[str, Any]] = []
        with os.scandir(real) as scan:
            for entry in scan:
                info = entry.stat(follow_symlinks=False)
                if stat.S_ISLNK(info.st_mode):
                    kind = "symlink"
                elif stat.S_ISDIR(info.st_mode):
                    kind = "directory"
                elif stat.S_ISREG(info.st_mode):
                    kind = "file"
                else:
                    kind = "other"
                entries.append({"name": entry.name, "type": kind, "size": info.st_size})
        entries.sort(key=lambda entry: str(entry["name"]))
        limit = self.workspace.max_entries
        return {
            "path": self.workspace.relative(real),
            "entries": entries[:limit],
            "truncated": len(entries) > limit,
        }

    async def execute(self, args: Mapping[str, Any]) -> dict[str, Any]:
        """List ``args["path"]`` (default: the workspace root)."""
        return await run_blocking(self._list, str(args.get("path", ".")))
