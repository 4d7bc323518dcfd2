"""The file jail's primitives: workspace paths opened one component at a time, from a held fd.

Every function here takes a directory file descriptor and names *relative to it*, never
an absolute path string, so what a check saw is what gets used: there is no window
between validating a path and opening it in which a symlink can be swapped in.

- Each directory component is opened with ``O_DIRECTORY | O_NOFOLLOW`` relative to the
  one before it, starting from the workspace's own directory fd. A symlink anywhere in a
  path is refused, whether it points inside the workspace or not (the same rule as
  Linux's ``openat2(RESOLVE_NO_SYMLINKS)``).
- A final component is first ``lstat``-ed (refusing symlinks, FIFOs, devices, sockets,
  directories) and then opened with ``O_NOFOLLOW | O_NONBLOCK``, and the *opened* file
  is checked again with ``fstat``: if a FIFO or device was swapped in meanwhile, the
  open did not block and the check refuses it before any read.
- A regular file with more than one hard link is refused: its other name may be
  outside the workspace.
- A file is replaced through a temporary file in the same directory (``O_EXCL``),
  ``fsync``-ed and renamed over the target with ``os.replace`` (atomic), then the
  directory is ``fsync``-ed: a crash leaves the old content or the new one, never a
  torn or empty file. A crash can leave a ``.ms-write-*.tmp`` file behind.

All of this is blocking and runs in worker threads (see ``run_blocking``).
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from collections.abc import Callable, Iterator, Sequence
from pathlib import PurePosixPath, PureWindowsPath

from ..errors import InvalidToolInput, ToolExecutionFailed, ToolPermissionDenied
from ._quota import TreeUsage

MAX_PATH = 4_096
"""Longest workspace path accepted, in characters."""

MAX_NAME_BYTES = 255
"""Longest single path component accepted, in bytes (POSIX ``NAME_MAX``)."""

MAX_DEPTH = 64
"""Most components a workspace path may have. Deeper paths serve no real project, and
thousands of nested directories made every walk of the tree (the quota's measurement)
quadratic: six 2,000-deep chains took a measurement 107 s."""

_HELD_DEPTH = MAX_DEPTH + 16
"""Directory levels :func:`tree_usage` keeps open while it walks, and so the deepest it
counts (deeper trees can only come from other programs)."""

TEMP_PREFIX = ".ms-write-"
"""Prefix of the temporary files writes go through (one may survive a crash)."""

DIRECTORY_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY
_TEMP_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_READ_CHUNK = 65_536


def split_path(path: str) -> tuple[str, ...]:
    """The components of workspace-relative ``path`` (``()`` for the root itself).

    ``\\`` counts as a separator (models write Windows paths too); empty and ``.``
    components are dropped. Pure: touches no filesystem.

    Raises:
        InvalidToolInput: empty, too long, containing NUL, not encodable as a file name,
            with a component longer than :data:`MAX_NAME_BYTES`, or with more than
            :data:`MAX_DEPTH` components.
        ToolPermissionDenied: absolute, starting with ``~``, with a drive, or with a
            ``..`` component.
    """
    if not path or len(path) > MAX_PATH or "\x00" in path:
        raise InvalidToolInput(f"path {path[:80]!r} is empty, too long or contains NUL")
    if (
        path.startswith(("/", "\\", "~"))
        or PurePosixPath(path).is_absolute()
        or PureWindowsPath(path).is_absolute()
        or PureWindowsPath(path).drive
    ):
        raise ToolPermissionDenied(f"path {path!r} is absolute; give a workspace path")
    parts = tuple(part for part in path.replace("\\", "/").split("/") if part not in ("", "."))
    if ".." in parts:
        raise ToolPermissionDenied(f"path {path!r} contains '..'; it must stay in the workspace")
    if len(parts) > MAX_DEPTH:
        raise InvalidToolInput(
            f"path {path[:80]!r} has {len(parts)} components, more than {MAX_DEPTH}"
        )
    for part in parts:
        try:
            size = len(os.fsencode(part))
        except UnicodeEncodeError as error:
            raise InvalidToolInput(f"path {path[:80]!r} is not a valid file name") from error
        if size > MAX_NAME_BYTES:
            raise InvalidToolInput(
                f"path {path[:80]!r} has a component over {MAX_NAME_BYTES} bytes"
            )
    return parts


def display(parts: Sequence[str]) -> str:
    """``parts`` as the workspace path shown in results and errors (``"."``: the root)."""
    return "/".join(parts) or "."


def kind_of(mode: int) -> str:
    """What a file of ``mode`` is, in words ("a FIFO", "a symlink", ...)."""
    for test, kind in (
        (stat.S_ISREG, "a regular file"),
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISLNK, "a symlink"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return kind
    return "a special file"


def symlink_refused(shown: str, where: str) -> ToolPermissionDenied:
    """The refusal of a path going through a symlink."""
    return ToolPermissionDenied(
        f"path {shown!r}: {where!r} is a symlink; the workspace follows no symlinks, "
        "so a path cannot lead outside the workspace"
    )


def check_regular(info: os.stat_result, shown: str) -> None:
    """Refuse anything but a regular file with a single link.

    Raises:
        ToolPermissionDenied: a symlink, FIFO, device, socket, or a hard-linked file.
        ToolExecutionFailed: a directory.
    """
    if stat.S_ISLNK(info.st_mode):
        raise symlink_refused(shown, shown)
    if stat.S_ISDIR(info.st_mode):
        raise ToolExecutionFailed(f"{shown!r} is a directory, not a file")
    if not stat.S_ISREG(info.st_mode):
        raise ToolPermissionDenied(
            f"{shown!r} is {kind_of(info.st_mode)}; only regular files are read or written"
        )
    if info.st_nlink > 1:
        raise ToolPermissionDenied(
            f"{shown!r} has {info.st_nlink} hard links; a hard link can point at a file "
            "outside the workspace, so it is refused"
        )


def lstat_at(dir_fd: int, name: str) -> os.stat_result | None:
    """``lstat`` of ``name`` in ``dir_fd``, or ``None`` if there is none."""
    try:
        return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def _why_not_directory(dir_fd: int, name: str, shown: str, where: str) -> Exception:
    info = lstat_at(dir_fd, name)
    if info is not None and stat.S_ISLNK(info.st_mode):
        return symlink_refused(shown, where)
    if info is None or stat.S_ISDIR(info.st_mode):
        return ToolExecutionFailed(
            f"path {shown!r}: {where!r} changed while it was opened; try again"
        )
    return ToolExecutionFailed(f"path {shown!r}: {where!r} is {kind_of(info.st_mode)}")


def make_directory(parent_fd: int, name: str) -> None:
    """``mkdir`` of ``name`` in ``parent_fd`` (one that exists already is fine)."""
    with contextlib.suppress(FileExistsError):
        os.mkdir(name, 0o777, dir_fd=parent_fd)


def open_directory(
    root_fd: int,
    parts: Sequence[str],
    *,
    shown: str,
    create: bool = False,
    make: Callable[[int, str], None] = make_directory,
) -> int:
    """A new fd of the directory ``parts`` below ``root_fd``; the caller closes it.

    Each component is opened relative to the previous one with ``O_NOFOLLOW``, so no
    symlink is ever followed, whenever it was swapped in. With ``create``, missing
    directories are made with ``make(parent_fd, name)`` (by default
    :func:`make_directory`; a workspace passes one that counts it against its quota),
    then opened the same way, so a symlink raced in after the ``mkdir`` is refused too.

    Raises:
        ToolPermissionDenied: a component is a symlink.
        ToolExecutionFailed: a component is missing (without ``create``) or not a
            directory.
    """
    fd = os.open(".", DIRECTORY_FLAGS, dir_fd=root_fd)
    try:
        for index, name in enumerate(parts):
            where = display(parts[: index + 1])
            try:
                try:
                    child = os.open(name, DIRECTORY_FLAGS, dir_fd=fd)
                except FileNotFoundError:
                    if not create:
                        raise ToolExecutionFailed(
                            f"path {shown!r}: directory {where!r} does not exist"
                        ) from None
                    # made meanwhile by someone else? then it is opened (and checked) below
                    make(fd, name)
                    child = os.open(name, DIRECTORY_FLAGS, dir_fd=fd)
            except OSError as error:
                if error.errno in (errno.ENOTDIR, errno.ELOOP):
                    raise _why_not_directory(fd, name, shown, where) from error
                raise
            os.close(fd)
            fd = child
    except BaseException:
        os.close(fd)
        raise
    return fd


def open_regular(dir_fd: int, name: str, *, shown: str) -> tuple[int, os.stat_result]:
    """Open regular file ``name`` in ``dir_fd`` for reading, never blocking on the open.

    Returns the fd (the caller closes it) and its ``fstat``.

    Raises:
        ToolExecutionFailed: it does not exist, or is a directory.
        ToolPermissionDenied: it is a symlink, FIFO, device or socket, or hard-linked.
    """
    info = lstat_at(dir_fd, name)
    if info is None:
        raise ToolExecutionFailed(f"{shown!r} does not exist")
    check_regular(info, shown)
    try:
        fd = os.open(name, _FILE_FLAGS, dir_fd=dir_fd)
    except FileNotFoundError as error:
        raise ToolExecutionFailed(f"{shown!r} vanished while it was opened") from error
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise symlink_refused(shown, shown) from error
        raise
    try:
        opened = os.fstat(fd)
        check_regular(opened, shown)
    except BaseException:
        os.close(fd)
        raise
    return fd, opened


def read_at_most(fd: int, limit: int) -> bytes:
    """Up to ``limit + 1`` bytes from ``fd`` (one more than allowed shows it is too big)."""
    chunks: list[bytes] = []
    size = 0
    while size <= limit:
        chunk = os.read(fd, min(_READ_CHUNK, limit + 1 - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def replace_file(dir_fd: int, name: str, data: bytes, *, mode: int | None) -> None:
    """Atomically make ``name`` in ``dir_fd`` hold ``data`` (temp file, fsync, rename).

    Args:
        dir_fd: The directory.
        name: The file's name in it.
        data: The whole new content.
        mode: Permission bits to give it (those of the file it replaces), or ``None``
            for a new file's default (``0o666`` less the umask).
    """
    temp = f"{TEMP_PREFIX}{secrets.token_hex(8)}.tmp"
    fd = os.open(temp, _TEMP_FLAGS, 0o666, dir_fd=dir_fd)
    try:
        try:
            if mode is not None:
                os.fchmod(fd, mode)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp, dir_fd=dir_fd)
        raise
    os.fsync(dir_fd)


def tree_usage(root_fd: int) -> TreeUsage:
    """Bytes of the regular files below ``root_fd``, and its entries of every kind.

    No symlink is followed. The walk keeps each open directory's ancestors open, so it
    opens every directory once, relative to its parent: its cost is linear in the
    entries. It goes :data:`_HELD_DEPTH` levels deep at most (a few fds per level);
    what other programs put deeper than that, where no file tool reaches, is not
    counted. Entries that vanish or turn into symlinks during the walk are skipped.
    """
    size = entries = 0

    def scan(fd: int) -> list[str]:
        nonlocal size, entries
        directories: list[str] = []
        for name, info in list_entries(fd):
            entries += 1
            if stat.S_ISREG(info.st_mode):
                size += info.st_size
            elif stat.S_ISDIR(info.st_mode):
                directories.append(name)
        return directories

    def open_child(parent: int, name: str) -> int | None:
        try:
            return os.open(name, DIRECTORY_FLAGS, dir_fd=parent)
        except OSError:
            return None  # vanished, swapped for a symlink, or unreadable

    top = os.open(".", DIRECTORY_FLAGS, dir_fd=root_fd)
    held: list[tuple[int, list[str]]] = []
    try:
        held.append((top, scan(top)))
        while held:
            fd, pending = held[-1]
            if not pending:
                os.close(fd)
                held.pop()
                continue
            name = pending.pop()
            if len(held) >= _HELD_DEPTH:
                continue  # deeper than any tool can go: not counted (see the docstring)
            child = open_child(fd, name)
            if child is None:
                continue
            try:
                below = scan(child)
            except OSError:
                os.close(child)
                continue
            held.append((child, below))
    finally:
        for fd, _ in held:
            os.close(fd)
    return TreeUsage(size, entries)


def list_entries(dir_fd: int) -> Iterator[tuple[str, os.stat_result]]:
    """``(name, lstat)`` of each entry of ``dir_fd`` (entries vanishing meanwhile skipped).

    ``os.scandir`` works on a duplicate of ``dir_fd`` that shares its read offset, so
    ``dir_fd`` must be an fd of the caller's own (as :func:`open_directory` returns).
    """
    with os.scandir(dir_fd) as scan:
        for entry in scan:
            try:
                yield entry.name, entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue


def check_operand(root_fd: int, parts: Sequence[str], *, shown: str) -> None:
    """Refuse a path (for a command to use) whose existing part leaves the workspace.

    Walks the components that exist without following any symlink; the first missing
    one ends the walk (a command may create it). A symlink anywhere, a hard-linked final
    file, or a file where a directory is expected is refused.

    Raises:
        ToolPermissionDenied: a symlink on the way, or a hard-linked final file.
        ToolExecutionFailed: a component that must be a directory is not one.
    """
    fd = os.open(".", DIRECTORY_FLAGS, dir_fd=root_fd)
    try:
        for index, name in enumerate(parts):
            where = display(parts[: index + 1])
            info = lstat_at(fd, name)
            if info is None:
                return
            if stat.S_ISLNK(info.st_mode):
                raise symlink_refused(shown, where)
            if index == len(parts) - 1:
                if stat.S_ISREG(info.st_mode) and info.st_nlink > 1:
                    check_regular(info, shown)
                return
            try:
                child = os.open(name, DIRECTORY_FLAGS, dir_fd=fd)
            except OSError as error:
                if error.errno in (errno.ENOTDIR, errno.ELOOP):
                    raise _why_not_directory(fd, name, shown, where) from error
                raise
            os.close(fd)
            fd = child
    finally:
        os.close(fd)
