"""Safe output files: checked before long work, written atomically, one writer at a time.

One place for the three rules every tool of the project follows when it writes a file a user
relies on (a checkpoint, a certification log's settings, a report):

* :func:`check_output_path` -- refuse an output location that cannot be written *before* any
  long work starts (a parent that is a file, a folder that is not writable, a path that is a
  folder), with a message naming the path;
* :func:`atomic_output` / :func:`atomic_write_text` -- write to a temporary file in the same
  folder and rename it over the final name only when the write has finished, so a crash or a
  kill during a save never leaves a truncated file under the final name;
* :func:`exclusive_lock` -- an advisory lock (``fcntl.flock``) on ``<path>.lock`` held for a whole
  run, so that two processes never append to the same log; the second one fails at once with a
  message naming the holder's process id.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import tempfile
from pathlib import Path
from typing import Iterator, Union

#: What the functions here accept as a path: a string or any path-like object.
StrPath = Union[str, "os.PathLike[str]"]

__all__ = ["OutputPathError", "LockedError", "check_output_path", "atomic_output", "atomic_write_text",
           "exclusive_lock", "lock_path", "file_sha256"]

LOCK_SUFFIX = ".lock"


class OutputPathError(ValueError):
    """An output location that cannot be written (the message names the path and why)."""


class LockedError(RuntimeError):
    """Another process holds the lock on an output file (the message names its process id)."""


def _nearest_existing(path: Path) -> Path:
    p = path
    while not p.exists():
        if p.parent == p:
            break
        p = p.parent
    return p


def check_output_path(path: StrPath, *, name: str = "--out", overwrite: bool = True) -> Path:
    """Check that ``path`` can be created or replaced as a file; return it as a ``Path``.

    Creates nothing. The folders that do not exist yet must be creatable: the nearest existing
    ancestor must be a writable folder (not a file).

    Parameters
    ----------
    path : str or path-like
        The output file.
    name : str
        How the path is called in messages (a flag such as ``"--out"``).
    overwrite : bool
        When False, an existing file is refused too.

    Raises
    ------
    OutputPathError
        With a message naming ``name``, the path and the reason.
    """
    p = Path(os.fspath(path))
    if str(p) == "":
        raise OutputPathError(f"{name} must not be empty")
    if p.is_dir():
        raise OutputPathError(f"{name} ({str(p)!r}) is a folder; give a file path inside it")
    if p.exists() and not overwrite:
        raise OutputPathError(f"{name} ({str(p)!r}) exists; refusing to overwrite it")
    parent = p.parent if str(p.parent) else Path(".")
    anchor = _nearest_existing(parent)
    if not anchor.is_dir():
        raise OutputPathError(f"{name} ({str(p)!r}) cannot be created: {str(anchor)!r} is a file, not a folder")
    if not os.access(anchor, os.W_OK | os.X_OK):
        raise OutputPathError(f"{name} ({str(p)!r}) cannot be written: the folder {str(anchor)!r} is not writable")
    if p.exists() and not os.access(p, os.W_OK) and not os.access(parent, os.W_OK):
        raise OutputPathError(f"{name} ({str(p)!r}) cannot be replaced: it and its folder are read-only")
    return p


@contextlib.contextmanager
def atomic_output(path: StrPath) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it over ``path``.

    The temporary file lives in the same folder (so the rename is atomic on POSIX), is flushed to
    disk before the rename, and is removed if the block raises (KeyboardInterrupt included); the
    final name then keeps its previous content, or does not exist.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "settings.json"
    >>> with atomic_output(target) as tmp:
    ...     _ = tmp.write_text("{}")
    >>> target.read_text()
    '{}'
    """
    final = Path(os.fspath(path))
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        if final.exists():  # keep the permissions of the file being replaced
            os.chmod(tmp, final.stat().st_mode & 0o7777)
        else:
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, final)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def atomic_write_text(path: StrPath, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically (see :func:`atomic_output`)."""
    with atomic_output(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(os.fspath(path))


def lock_path(path: StrPath) -> Path:
    """The lock file that guards ``path``: ``<path>.lock``."""
    return Path(os.fspath(path) + LOCK_SUFFIX)


@contextlib.contextmanager
def exclusive_lock(path: StrPath, *, what: str = "output") -> Iterator[Path]:
    """Hold an exclusive advisory lock on ``<path>.lock`` for the duration of the block.

    The lock file records the holder's process id. A second process (or a second call in the same
    process) that asks for the same lock fails at once -- it does not wait -- with
    :class:`LockedError` naming the path and the holder's pid. The lock is released when the block
    ends or the process dies (the kernel drops ``flock`` locks with the file descriptor); the lock
    file itself is left in place, harmless, so that a racing process cannot lock a deleted inode.

    Raises
    ------
    LockedError
        If another holder has the lock.
    """
    import fcntl

    lpath = lock_path(path)
    lpath.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lpath, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise
            holder = os.pread(fd, 64, 0).decode("ascii", "replace").strip() or "unknown"
            raise LockedError(f"{what} {os.fspath(path)!r} is in use by another process (pid {holder}, lock file "
                              f"{str(lpath)!r}); wait for it to finish or choose another output") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        yield lpath
    finally:
        os.close(fd)  # releases the lock


def file_sha256(path: StrPath) -> str:
    """The SHA-256 of a file's bytes, as 64 hex digits (read in 1 MiB blocks).

    Identifies a checkpoint in a log's settings, so ``--resume`` and the report cache can tell
    whether the model is the same one.
    """
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
