"""Crash-safe file writes: write a temporary file in the target's folder, flush, fsync, rename over the
target, fsync the folder. A process killed at any moment leaves either the previous file or the new
one, complete, under the target name (never a half-written file); nothing is overwritten in place."""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _umask()  # read once at import (os.umask is process-wide; not safe to toggle from threads later)


@contextmanager
def atomic_file(path):
    """Write ``path`` all or nothing: a context manager that yields the open file to write.

    ``path`` gets the content only when the block ends without an exception (then atomically, durably);
    on an exception the temporary file is removed and the previous file, if any, is untouched."""
    named = path = os.fspath(path)
    if os.path.islink(path):  # write through a symlink, as open(path, "wb") would: replace its target
        path = os.path.realpath(path)
    folder = os.path.dirname(os.path.abspath(path))
    prefix = f".{_short_name(os.path.basename(path))}."
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=".tmp", dir=folder)
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        try:  # the permissions a plain open() would give (mkstemp makes 0600), or the old file's
            mode = os.stat(path).st_mode & 0o7777
        except OSError:
            mode = 0o666 & ~_UMASK
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException as exc:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass
        temporary = tmp is not None and _filename(exc) == tmp or _is_temporary(_filename(exc), folder, prefix)
        if isinstance(exc, OSError) and exc.errno is not None and (exc.filename is None or temporary) \
                and exc.filename2 in (None, path):
            # name the file the caller asked for, not the temporary file (an implementation detail)
            raise type(exc)(exc.errno, exc.strerror, named) from None
        raise
    _fsync_folder(folder)


def _filename(exc: BaseException):
    return getattr(exc, "filename", None)


def _is_temporary(name, folder: str, prefix: str) -> bool:
    """Whether ``name`` is one of this save's temporary names (``mkstemp`` may fail before returning it)."""
    return isinstance(name, str) and os.path.dirname(os.path.abspath(name)) == folder \
        and os.path.basename(name).startswith(prefix) and name.endswith(".tmp")


def _short_name(name: str, limit: int = 100) -> str:
    """``name`` cut to at most ``limit`` UTF-8 bytes, so that the temporary name (``.NAME.XXXXXXXX.tmp``)
    stays within the 255-byte limit of file names even when ``name`` itself is near it."""
    data = name.encode("utf-8", "surrogateescape")
    return name if len(data) <= limit else data[:limit].decode("utf-8", "ignore")


def atomic_write_bytes(path, data: bytes) -> None:
    with atomic_file(path) as f:
        f.write(data)


def _fsync_folder(folder: str) -> None:
    """Make the rename itself durable (POSIX); a no-op where folders cannot be opened (Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def refuse_existing(path, overwrite: bool) -> None:
    """``save(..., overwrite=False)``: FileExistsError when ``path`` exists (Keras asks at a prompt; a library
    call cannot)."""
    if not overwrite and os.path.lexists(os.fspath(path)):
        raise FileExistsError(f"{os.fspath(path)} exists and overwrite=False: nothing was written")
