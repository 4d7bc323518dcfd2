"""``Workspace``: a directory the file tools are jailed in, held open by its fd."""

from __future__ import annotations

import contextlib
import heapq
import os
import stat
import threading
import weakref
from collections.abc import Iterator
from types import TracebackType
from typing import TYPE_CHECKING

import attrs

from ..errors import ToolExecutionFailed, ToolPermissionDenied, ToolQuotaExceeded
from . import _jail
from ._quota import TreeUsage, WorkspaceQuota

if TYPE_CHECKING:
    from ._files import ListDirectoryTool, ReadFileTool, WriteFileTool

MIB = 1_048_576


@attrs.frozen
class DirectoryEntry:
    """One entry of a workspace directory, as :meth:`Workspace.list_directory` gives it.

    Attributes:
        name: Its name.
        kind: ``"file"``, ``"directory"``, ``"symlink"`` or ``"other"``.
        size: Its size in bytes (of the link itself for a symlink).
    """

    name: str
    kind: str
    size: int


def _kind(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "symlink"
    if stat.S_ISDIR(mode):
        return "directory"
    if stat.S_ISREG(mode):
        return "file"
    return "other"


class Workspace:
    """A directory that file tools are confined to, robust against racing local changes.

    The root is opened once, here, and every path a tool is given is resolved from that
    directory fd one component at a time with ``O_NOFOLLOW`` (see ``_jail``): ``..``,
    absolute paths and symlinks anywhere in a path are refused, and a symlink swapped
    in while a tool runs is refused too, never followed. Only regular files with a
    single link are read or written; FIFOs, devices and sockets are refused without
    blocking. Writes replace files atomically (temp file, ``fsync``, ``os.replace``,
    directory ``fsync``), so a crash leaves the old or the new content.

    Sizes are bounded four ways: a read returns at most ``max_read_bytes``; one write
    carries at most ``max_write_bytes``; a file may not grow past ``max_file_bytes``
    (appends count); and the workspace as a whole may not hold more than
    ``quota_bytes`` in its files nor more than ``quota_entries`` files, directories
    and other entries (what was there before counts too; see ``WorkspaceQuota``), so
    empty files under fresh directories cannot fill a disk either. Going over a file or
    workspace bound is a :class:`~mister_smith.ToolQuotaExceeded`. Paths have at most
    ``MAX_DEPTH`` (64) components.

    What this does not promise: it is not a container. A local process that can move
    a directory *out of* the workspace while a tool holds it open can have the tool
    finish its operation there; files other programs write (a command, an editor) are
    counted in the quota only at its next measurement.

    Every method that touches the filesystem blocks and is meant for worker threads
    (the file tools call them through :func:`run_blocking`). Close the workspace (or
    use it as a context manager) to release its directory fd; it is also released when
    the workspace is garbage-collected.

    Args:
        root: The workspace directory (must exist; resolved and opened once, here).
        max_read_bytes: Largest file :meth:`read_bytes` returns.
        max_write_bytes: Largest content one :meth:`write_bytes` call writes.
        max_file_bytes: Largest a file may become through writes and appends.
        quota_bytes: Most bytes the workspace's regular files may hold in total
            (``None``: no byte quota).
        quota_entries: Most entries (files, directories, symlinks...) the workspace
            may hold (``None``: no entry quota).
        max_entries: Most entries :meth:`list_directory` returns.
        create_dirs: Whether writes create missing parent directories.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        max_read_bytes: int = MIB,
        max_write_bytes: int = MIB,
        max_file_bytes: int = 8 * MIB,
        quota_bytes: int | None = 256 * MIB,
        quota_entries: int | None = 100_000,
        max_entries: int = 1_000,
        create_dirs: bool = True,
    ) -> None:
        for label, value in (
            ("max_read_bytes", max_read_bytes),
            ("max_write_bytes", max_write_bytes),
            ("max_file_bytes", max_file_bytes),
            ("quota_bytes", 1 if quota_bytes is None else quota_bytes),
            ("quota_entries", 1 if quota_entries is None else quota_entries),
            ("max_entries", max_entries),
        ):
            if value < 1:
                raise ValueError(f"{label} must be >= 1, got {value!r}")
        resolved = os.path.realpath(root)
        try:
            fd = os.open(resolved, _jail.DIRECTORY_FLAGS)
        except OSError as error:
            raise ValueError(
                f"workspace root {os.fspath(root)!r} is not a directory ({error.strerror})"
            ) from error
        self.root = resolved
        self.max_read_bytes = max_read_bytes
        self.max_write_bytes = max_write_bytes
        self.max_file_bytes = max_file_bytes
        self.max_entries = max_entries
        self.create_dirs = create_dirs
        self.quota = (
            None
            if quota_bytes is None and quota_entries is None
            else WorkspaceQuota(self._measure, max_bytes=quota_bytes, max_entries=quota_entries)
        )
        self._fd = fd
        self._lock = threading.Lock()
        self._users = 0
        self._closed = False
        self._release = weakref.finalize(self, os.close, fd)

    def __repr__(self) -> str:
        return f"Workspace({self.root!r})"

    def __enter__(self) -> Workspace:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    def close(self) -> None:
        """Release the root directory fd (once the calls running in threads are done).

        Later calls raise :class:`~mister_smith.ToolExecutionFailed`.
        """
        with self._lock:
            self._closed = True
            if self._users == 0:
                self._release()

    @contextlib.contextmanager
    def _root(self) -> Iterator[int]:
        """The root fd, kept open (never closed and reused) while the block runs."""
        with self._lock:
            if self._closed:
                raise ToolExecutionFailed(f"{self!r} is closed")
            self._users += 1
        try:
            yield self._fd
        finally:
            self._drop_user()

    def _drop_user(self) -> None:
        with self._lock:
            self._users -= 1
            if self._closed and self._users == 0:
                self._release()

    def _measure(self) -> TreeUsage:
        with self._root() as root_fd:
            return _jail.tree_usage(root_fd)

    def _make_directory(self, parent_fd: int, name: str) -> None:
        """Make a directory for a write, counted against the entry quota."""
        quota = self.quota
        if quota is None:
            _jail.make_directory(parent_fd, name)
            return
        quota.reserve(0, entries=1, what=f"creating directory {name[:80]!r}")
        made = 0
        try:
            os.mkdir(name, 0o777, dir_fd=parent_fd)
            made = 1
        except FileExistsError:
            pass
        finally:
            quota.settle(0, change=0, entries=1, entries_change=made)

    def tools(self) -> list[ReadFileTool | WriteFileTool | ListDirectoryTool]:
        """A read, a write and a list tool over this workspace."""
        from ._files import ListDirectoryTool, ReadFileTool, WriteFileTool

        return [ReadFileTool(self), WriteFileTool(self), ListDirectoryTool(self)]

    @staticmethod
    def split(path: str) -> tuple[str, ...]:
        """The components of workspace path ``path``, or a refusal (pure; see ``_jail``).

        Raises:
            InvalidToolInput: empty, too long, with NUL, or an over-long component.
            ToolPermissionDenied: absolute, ``~``, a drive, or a ``..`` component.
        """
        return _jail.split_path(path)

    def read_bytes(self, path: str) -> tuple[str, bytes]:
        """The shown path and content of regular file ``path`` (blocking).

        Raises:
            ToolPermissionDenied: outside the workspace, through a symlink, a special
                file, or hard-linked.
            ToolExecutionFailed: missing, a directory, or over ``max_read_bytes``.
        """
        parts = _jail.split_path(path)
        shown = _jail.display(parts)
        if not parts:
            raise ToolExecutionFailed("the workspace root is a directory, not a file")
        limit = self.max_read_bytes
        with self._root() as root_fd:
            dir_fd = _jail.open_directory(root_fd, parts[:-1], shown=shown)
            try:
                fd, info = _jail.open_regular(dir_fd, parts[-1], shown=shown)
            finally:
                os.close(dir_fd)
            try:
                if info.st_size > limit:
                    raise ToolExecutionFailed(
                        f"{shown!r} is {info.st_size} bytes, over the {limit}-byte read limit"
                    )
                data = _jail.read_at_most(fd, limit)
            finally:
                os.close(fd)
        if len(data) > limit:
            raise ToolExecutionFailed(f"{shown!r} grew past the {limit}-byte read limit")
        return shown, data

    def write_bytes(self, path: str, data: bytes, *, append: bool = False) -> str:
        """Atomically replace (or extend) regular file ``path`` with ``data`` (blocking).

        An append reads the current content and replaces the file with it plus
        ``data``, so it is atomic too. Returns the shown path.

        Raises:
            ToolPermissionDenied: outside the workspace, the root, through a symlink, a
                special file, or hard-linked.
            ToolExecutionFailed: ``data`` is over ``max_write_bytes``, a parent is
                missing (without ``create_dirs``) or the target is a directory.
            ToolQuotaExceeded: the file would pass ``max_file_bytes``, or the workspace
                its byte or entry quota (a new file, each new directory).
        """
        parts = _jail.split_path(path)
        shown = _jail.display(parts)
        if not parts:
            raise ToolPermissionDenied("cannot write to the workspace root itself")
        if len(data) > self.max_write_bytes:
            raise ToolExecutionFailed(
                f"content is {len(data)} bytes, over the {self.max_write_bytes}-byte limit"
            )
        with self._root() as root_fd:
            dir_fd = _jail.open_directory(
                root_fd,
                parts[:-1],
                shown=shown,
                create=self.create_dirs,
                make=self._make_directory,
            )
            try:
                self._write_in(dir_fd, parts[-1], shown, data, append)
            finally:
                os.close(dir_fd)
        return shown

    def _write_in(self, dir_fd: int, name: str, shown: str, data: bytes, append: bool) -> None:
        existing = _jail.lstat_at(dir_fd, name)
        if existing is not None:
            _jail.check_regular(existing, shown)
        old_size = 0 if existing is None else existing.st_size
        new_size = old_size + len(data) if append else len(data)
        self._check_file_size(shown, new_size)
        grow = new_size - old_size
        new_entries = 1 if existing is None else 0
        if self.quota is not None:
            self.quota.reserve(
                grow, entries=new_entries, what=f"writing {len(data)} bytes to {shown!r}"
            )
        change = made = 0
        try:
            content, mode = data, None
            if existing is not None:
                fd, info = _jail.open_regular(dir_fd, name, shown=shown)
                try:
                    mode = stat.S_IMODE(info.st_mode) & 0o777
                    if append:
                        old = _jail.read_at_most(fd, self.max_file_bytes - len(data))
                        self._check_file_size(shown, len(old) + len(data))
                        content = old + data
                finally:
                    os.close(fd)
            _jail.replace_file(dir_fd, name, content, mode=mode)
            change, made = len(content) - old_size, new_entries
        finally:
            if self.quota is not None:
                self.quota.settle(grow, change=change, entries=new_entries, entries_change=made)

    def _check_file_size(self, shown: str, size: int) -> None:
        if size > self.max_file_bytes:
            raise ToolQuotaExceeded(
                f"{shown!r} would be {size} bytes, over the {self.max_file_bytes}-byte "
                "per-file limit"
            )

    def list_directory(self, path: str = ".") -> tuple[str, list[DirectoryEntry], bool]:
        """The shown path, the first ``max_entries`` entries by name, and whether more exist.

        Symlinks are listed as symlinks (never followed). Memory stays bounded by
        ``max_entries`` however large the directory (blocking).

        Raises:
            ToolPermissionDenied: outside the workspace or through a symlink.
            ToolExecutionFailed: missing or not a directory.
        """
        parts = _jail.split_path(path)
        shown = _jail.display(parts)
        limit = self.max_entries
        with self._root() as root_fd:
            dir_fd = _jail.open_directory(root_fd, parts, shown=shown)
            try:
                first = heapq.nsmallest(
                    limit + 1, _jail.list_entries(dir_fd), key=lambda entry: entry[0]
                )
            finally:
                os.close(dir_fd)
        entries = [DirectoryEntry(name, _kind(info.st_mode), info.st_size) for name, info in first]
        return shown, entries[:limit], len(entries) > limit

    def check_operand(self, path: str) -> str:
        """``path`` made safe as a command's operand, run in the workspace root (blocking).

        The path must stay in the workspace lexically and through what exists of it
        (no symlink anywhere, no hard-linked file); a missing tail is allowed, as a
        command may create it. Returns the normalised relative path, with ``./`` in
        front if it starts with ``-`` (so it cannot read as a flag).

        Raises:
            InvalidToolInput: empty, too long, with NUL, or an over-long component.
            ToolPermissionDenied: leaves the workspace lexically or through a symlink,
                or is hard-linked.
            ToolExecutionFailed: a component that must be a directory is not one.
        """
        parts = _jail.split_path(path)
        shown = _jail.display(parts)
        with self._root() as root_fd:
            _jail.check_operand(root_fd, parts, shown=shown)
        return f"./{shown}" if shown.startswith("-") else shown
