"""Files that hold credentials: written whole or not at all, private from the first byte;
read only when they are ours alone. Standard library only (the warm paths use it)."""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Callable
from pathlib import Path


def atomic_write(
    path: Path,
    data: bytes,
    mode: int = 0o600,
    owner: tuple[int, int] | None = None,
    still_current: Callable[[], bool] | None = None,
) -> bool:
    """Replace ``path`` with ``data``: a temporary file beside it (created with ``mode``),
    fsynced, then ``os.replace``d. Readers see the old file or the new one, never a
    half-written one, and no temporary file is left behind on failure.

    ``owner`` (uid, gid) is given to the new file before it takes the old one's place, as
    far as we may (as docker's own writer does: a ``sudo`` run keeps the user's file the
    user's); where we may not, the file stays ours.

    ``still_current``, when given, is asked right before the rename: if it answers False
    (the file changed since the caller read it), nothing is replaced and False is
    returned, so the caller can read again. The check sits after the slow part (the
    write and fsync), which keeps the window for a writer that takes no lock small.
    """
    import tempfile

    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), mode)
            if owner is not None and owner != (os.geteuid(), os.getegid()):
                with contextlib.suppress(PermissionError):
                    os.fchown(f.fileno(), *owner)
                os.fchmod(f.fileno(), mode)  # chown may clear set-id bits; keep the mode
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if still_current is not None and not still_current():
            os.unlink(tmp)
            return False
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return True


def read_trusted(path: Path, limit: int, what: str = "file") -> bytes | None:
    """The file's bytes if it is ours alone, else None (the reason logged at DEBUG, never raised).

    Ours alone: opened without following a symlink, a regular file, owned by our uid, no
    group or other permission bits, at most ``limit`` bytes. Used for awscli's credentials
    cache (cache.py) and the state file (state.py).
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as e:
        why = "a symlink" if e.errno == errno.ELOOP else e.strerror
        _debug("%s %s not used: %s", what, path, why)
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            reason = "not a regular file"
        elif st.st_uid != os.geteuid():
            reason = f"owned by uid {st.st_uid}"
        elif st.st_mode & 0o077:
            reason = f"mode {stat.S_IMODE(st.st_mode):04o} (want 0600)"
        elif st.st_size > limit:
            reason = f"{st.st_size} bytes"
        else:
            with os.fdopen(os.dup(fd), "rb") as f:
                return f.read(limit + 1)
        _debug("%s %s not trusted: %s", what, path, reason)
        return None
    except OSError as e:
        _debug("%s %s not readable: %s", what, path, e)
        return None
    finally:
        os.close(fd)


def _debug(message: str, *args: object) -> None:
    """A DEBUG line; logging is imported only then (the helper's warm path never is)."""
    import logging

    logging.getLogger(__name__).debug(message, *args)
