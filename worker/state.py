"""The state directory: the one place the worker keeps files (journal, lock, heartbeat).

It is private to the worker's user: created 0700, refused at start when another user owns it or
it is group- or world-writable (anyone who can plant a file there could redirect a write or forge
the journal), and every file in it is opened 0600 without following a symlink.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from worker.errors import ConfigFileError

_NOFOLLOW = os.O_NOFOLLOW | os.O_CLOEXEC


def problem(path: Path, st: os.stat_result, uid: int) -> str | None:
    """What makes `path` unfit as a state directory, or None."""
    if not stat.S_ISDIR(st.st_mode):
        return f"state_dir {path} is not a directory"
    if st.st_uid != uid:
        return (f"state_dir {path} is owned by uid {st.st_uid}, not by the worker's user (uid {uid}); "
                "give the worker a directory of its own (chown it, or point state_dir elsewhere)")
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return (f"state_dir {path} is group- or world-writable (mode {stat.S_IMODE(st.st_mode):04o}); another "
                f"user could plant files in it: chmod 700 {path}")
    return None


def prepare(path: Path) -> Path:
    """Create the state directory (0700) if needed and check it is the worker's alone; ConfigFileError if not."""
    try:
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        st = os.stat(path)
    except OSError as exc:
        raise ConfigFileError(f"state_dir {path} cannot be created or read: {exc.strerror}") from exc
    found = problem(path, st, os.geteuid())
    if found:
        raise ConfigFileError(found)
    return path


def open_private(path: Path, flags: int) -> int:
    """os.open for a file in the state directory: 0600 when created, never through a symlink."""
    return os.open(path, flags | _NOFOLLOW, 0o600)


def replace_file(path: Path, data: bytes, *, durable: bool = False) -> None:
    """Write `path` atomically (a sibling temp file renamed over it): a reader never sees half of it.

    A symlink planted at either name is replaced, never followed. `durable`: fsync the file and
    the directory, so the new content survives a power loss.
    """
    tmp = path.with_name(path.name + ".tmp")
    try:
        os.unlink(tmp)
    except FileNotFoundError:
        pass
    fd = open_private(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
    try:
        os.write(fd, data)
        if durable:
            os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    if durable:
        dir_fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def read_private(path: Path, limit: int | None = None) -> bytes:
    """A file in the state directory (at most `limit` bytes), never through a symlink."""
    with os.fdopen(open_private(path, os.O_RDONLY), "rb") as fh:
        return fh.read(limit if limit is not None else -1)
