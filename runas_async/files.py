"""The one home for how runas-async reads and writes a user's file.

Every file goes through here: the client's auth file (config.json, auth.json),
registries.toml, the state file, the helper's token cache, awscli's cache, ``--file``, a
job's directory and GitHub Actions' output files (:func:`append_user`). The rules, each
written once:

* **Bounded reads** (:func:`read_user`, :func:`read_stream`): at most a size cap; a FIFO,
  a device (``/dev/zero``) or a directory is a one-line error at once, never a hang; a
  symlink loop is a one-line error.
* **Depth-safe parsing** (:func:`parse_json`): nesting deeper than :data:`MAX_DEPTH`, and
  non-finite numbers (``Infinity``, ``NaN``, ``1e999``), are errors, never a traceback.
* **Locking** (:func:`locked`): every read-modify-write holds an ``flock`` on the
  directory that holds the file (no lock file, so nothing to plant a symlink at).
* **Atomic replace that keeps owner, mode and symlinks** (:func:`atomic_write`): a
  temporary file beside the real one, fsynced, renamed over it; a symlink is written
  through (dotfile managers link config.json and registries.toml), and the file keeps its
  owner. A file or directory we *create* (:func:`make_dirs`) in a directory that belongs to
  someone else (a ``sudo -E`` run in the user's HOME) gets that directory's owner.
* **Trust** (:func:`our_dir`, :func:`read_trusted`): a directory of ours owned by someone
  other than us or its parent's owner, or writable by group or others, is refused; our
  own caches and records are read only when the file is ours alone.
* **Our caches never cost an answer**: :func:`read_trusted` never raises, and
  :class:`Untrusted` is an ``OSError``, so the callers' "cannot write the cache: a
  warning" covers it.

Standard library only (the helper's warm path uses it).
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from runas_async.core.errors import ConfigError, RunasError

MAX_USER_FILE = 4 * 1024 * 1024
"""The most we read of a file a user or a tool writes (config.json, registries.toml, --file)."""

MAX_DEPTH = 64
"""The deepest nesting any of our formats needs (config.json nests four levels)."""

MAX_LINKS = 40
"""Symlinks followed before a path counts as a loop (the kernel's own limit)."""

KEEP = (-1, -1)
"""``atomic_write``'s default owner: the file's own, or for a new file its directory's."""

Error = type[RunasError]


class Untrusted(OSError):
    """A directory of ours that someone else could change: not used (an OSError, so the
    callers that treat a failed cache write as a warning treat this one alike)."""


# --- reading -------------------------------------------------------------------------------


def read_user(
    path: Path, *, what: str, limit: int = MAX_USER_FILE, error: Error = ConfigError
) -> bytes | None:
    """The bytes of a file a user or tool writes, or None when it does not exist.

    Follows symlinks (a loop is an error), refuses anything but a regular file (a FIFO or
    a device would block or never end) and anything over ``limit`` bytes. Every problem is
    ``error`` with one line naming ``what`` and the path.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as e:
        raise error(f"cannot read {what} {path}: {_reason(e)}") from e
    try:
        st = os.fstat(fd)
        trouble = _not_plain(st, limit)
        if trouble is not None:
            raise error(f"cannot read {what} {path}: {trouble}")
        data = _read_fd(fd, limit)
    except OSError as e:
        raise error(f"cannot read {what} {path}: {_reason(e)}") from e
    finally:
        os.close(fd)
    if len(data) > limit:
        raise error(f"cannot read {what} {path}: larger than {limit} bytes")
    return data


def read_stream(stream: IO[str], *, what: str, limit: int = MAX_USER_FILE, error: Error) -> str:
    """At most ``limit`` characters of a text stream (stdin); more is an error."""
    try:
        text = stream.read(limit + 1)
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise error(f"cannot read {what}: {e}") from e
    if text is None:  # a non-blocking stream with nothing yet
        return ""
    if len(text) > limit:
        raise error(f"cannot read {what}: larger than {limit} characters")
    return text


def decode(data: bytes, *, what: str, error: Error = ConfigError) -> str:
    """UTF-8 text (a byte order mark dropped); invalid UTF-8 is a one-line error."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise error(f"{what} is not UTF-8 text (byte {e.start})") from e


def _not_plain(st: os.stat_result, limit: int) -> str | None:
    if stat.S_ISDIR(st.st_mode):
        return "it is a directory"
    if not stat.S_ISREG(st.st_mode):
        return "not a regular file (a FIFO, socket or device)"
    if st.st_size > limit:
        return f"larger than {limit} bytes"
    return None


def _read_fd(fd: int, limit: int) -> bytes:
    chunks, size = [], 0
    while size <= limit:
        chunk = os.read(fd, min(1 << 20, limit + 1 - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def _reason(e: OSError) -> str:
    if e.errno == errno.ELOOP:
        return "a symlink loop"
    return e.strerror or str(e)


# --- parsing -------------------------------------------------------------------------------


class _Bad(ValueError):
    pass


def _no_constant(name: str) -> Any:
    raise _Bad(f"{name} is not a number JSON allows")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _Bad(f"number {text[:20]} is out of range")
    return value


def parse_json(
    data: bytes | str, *, what: str, error: Error = ConfigError, non_finite: bool = False
) -> Any:
    """A JSON document; invalid JSON, nesting deeper than :data:`MAX_DEPTH` and
    non-finite numbers are ``error`` with one line naming ``what``. With ``non_finite``,
    ``Infinity``, ``NaN`` and ``1e999`` are read as floats, for a caller that checks each
    number itself (the state file drops a bad record alone, not the whole file)."""
    numbers: dict[str, Any] = {"parse_constant": _no_constant, "parse_float": _finite}
    try:
        value = json.loads(data, **({} if non_finite else numbers))
    except RecursionError:
        raise error(f"{what} is not valid JSON: nested too deeply") from None
    except _Bad as e:
        raise error(f"{what} is not valid JSON: {e}") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise error(f"{what} is not valid JSON: {_short(e)}") from None
    if _depth(value) > MAX_DEPTH:
        raise error(f"{what} is not valid JSON for us: nested deeper than {MAX_DEPTH} levels")
    return value


def _short(e: Exception) -> str:
    text = " ".join(str(e).split())
    return text if len(text) <= 120 else text[:117] + "..."


def _depth(value: object) -> int:
    """How deep ``value`` nests (iterative: a deep document cannot exhaust the stack)."""
    deepest, todo = 0, [(value, 1)]
    while todo:
        item, depth = todo.pop()
        if isinstance(item, dict):
            item = list(item.values())
        if isinstance(item, list):
            deepest = max(deepest, depth)
            if depth <= MAX_DEPTH:
                todo.extend((v, depth + 1) for v in item)
    return deepest


# --- writing -------------------------------------------------------------------------------


def target_of(path: Path) -> Path:
    """The file behind ``path``: its symlinks followed (a loop is an OSError ELOOP)."""
    for _ in range(MAX_LINKS):
        try:
            link = os.readlink(path)
        except (FileNotFoundError, OSError) as e:
            if isinstance(e, FileNotFoundError) or e.errno == errno.EINVAL:
                return path  # absent, or not a symlink
            raise
        path = path.parent / link
    raise OSError(errno.ELOOP, "a symlink loop", str(path))


def owner_for(directory: Path) -> tuple[int, int] | None:
    """Who a file we create in ``directory`` should belong to: the directory's owner when
    we are root and it is someone else's (a ``sudo -E`` run in the user's HOME), else None
    (ours, as created)."""
    if os.geteuid() != 0:
        return None
    try:
        st = os.stat(directory)
    except OSError:
        return None
    return None if st.st_uid == 0 else (st.st_uid, st.st_gid)


def make_dirs(directory: Path, mode: int = 0o700) -> None:
    """``mkdir -p`` where each directory made takes its parent's owner (:func:`owner_for`)."""
    missing = []
    d = directory
    while not d.exists():
        missing.append(d)
        if d.parent == d:
            break
        d = d.parent
    for d in reversed(missing):
        try:
            d.mkdir(mode=mode)
        except FileExistsError:
            continue
        owner = owner_for(d.parent)
        if owner is not None:
            with contextlib.suppress(PermissionError):
                os.chown(d, *owner)


def _dir_trouble(directory: Path) -> str | None:
    """Why ``directory`` (one of ours) cannot be trusted, or None."""
    st = os.stat(directory)
    if not stat.S_ISDIR(st.st_mode):
        return "not a directory"
    if st.st_mode & 0o022:
        return f"writable by others (mode {stat.S_IMODE(st.st_mode):04o})"
    if st.st_uid != os.geteuid():
        try:
            parent_uid = os.stat(directory.parent).st_uid
        except OSError:
            parent_uid = -1
        if st.st_uid != parent_uid:
            return f"owned by uid {st.st_uid}"
    return None


def our_dir(directory: Path) -> Path:
    """A directory of ours (the cache's, the state's), made when missing; :class:`Untrusted`
    when it is owned by someone other than us or its parent's owner, or writable by
    group or others."""
    make_dirs(directory)
    trouble = _dir_trouble(directory)
    if trouble is not None:
        raise Untrusted(errno.EPERM, f"{directory} is not used: {trouble}")
    return directory


@contextlib.contextmanager
def locked(directory: Path) -> Iterator[None]:
    """Exclusive across processes: an ``flock`` on the directory itself (no lock file is
    made or followed). Blocking: call it from a worker thread in async code."""
    import fcntl

    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def atomic_write(
    path: Path,
    data: bytes,
    mode: int = 0o600,
    owner: tuple[int, int] | None = KEEP,
    still_current: Callable[[], bool] | None = None,
    *,
    through_links: bool = True,
    durable: bool = True,
) -> bool:
    """Replace ``path`` with ``data``: a temporary file beside it (created with ``mode``),
    fsynced, then ``os.replace``d. Readers see the old file or the new one, never a
    half-written one, and no temporary file is left behind on failure.

    A symlink at ``path`` is written through: the file it points to is replaced, the link
    stays (a user's file). Without ``through_links`` the link itself is replaced, and the
    file takes its directory's owner whoever owned the old one (our own caches and
    records, which are never read through a link or from a stranger).

    ``owner`` (uid, gid) is given to the new file as far as we may; by default
    (:data:`KEEP`) the file keeps its owner, and a new file takes its directory's
    (:func:`owner_for`): a ``sudo`` run keeps the user's file the user's.

    Without ``durable`` the data is not fsynced before the rename: after a power cut the
    file may be empty, which only a cache whose loss costs nothing may allow.

    ``still_current``, when given, is asked right before the rename: if it answers False
    (the file changed since the caller read it), nothing is replaced and False is
    returned, so the caller can read again. The check sits after the slow part (the
    write and fsync), which keeps the window for a writer that takes no lock small.
    """
    import tempfile

    if through_links:
        path = target_of(path)
    if owner == KEEP:  # a user's file keeps its owner; ours take their directory's
        owner = _current_owner(path) if through_links else owner_for(path.parent)
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
            if durable:
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


def append_user(
    path: Path, data: bytes, *, what: str, limit: int = MAX_USER_FILE, error: Error = ConfigError
) -> None:
    """Append ``data`` to a file a user or tool hands us to write to (GitHub Actions'
    ``$GITHUB_OUTPUT`` and ``$GITHUB_STEP_SUMMARY``), made when missing.

    The rules of a user's file: symlinks are followed (a loop is an error), anything but a
    regular file is refused at once (a FIFO never blocks us, a directory or a device is no
    place for it), a new file takes its directory's owner (:func:`owner_for`: a ``sudo``
    run leaves the user's file the user's), and at most ``limit`` bytes are written. Every
    problem is ``error`` with one line naming ``what`` and the path.
    """
    if len(data) > limit:
        raise error(f"cannot write {what} {path}: more than {limit} bytes to add")
    try:
        real = target_of(path)  # a link to a file not made yet: the file is made
        fd, created = _open_append(real)
    except OSError as e:
        raise error(f"cannot write {what} {path}: {_written_reason(e)}") from e
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise error(f"cannot write {what} {path}: {_NOT_PLAIN}")
        owner = owner_for(real.parent) if created else None
        if owner is not None:
            with contextlib.suppress(PermissionError):
                os.fchown(fd, *owner)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    except OSError as e:
        raise error(f"cannot write {what} {path}: {_written_reason(e)}") from e
    finally:
        os.close(fd)


_NOT_PLAIN = "not a regular file (a FIFO, socket or device)"


def _open_append(path: Path) -> tuple[int, bool]:
    """``path`` opened to append (never blocking on a FIFO), and whether it was made now."""
    flags = os.O_WRONLY | os.O_APPEND | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
    try:
        return os.open(path, flags | os.O_CREAT | os.O_EXCL, 0o666), True
    except FileExistsError:
        return os.open(path, flags), False


def _written_reason(e: OSError) -> str:
    if e.errno == errno.EISDIR:
        return "it is a directory"
    if e.errno == errno.ENXIO:  # a FIFO nobody reads
        return _NOT_PLAIN
    return _reason(e)


def _current_owner(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return owner_for(path.parent)
    return st.st_uid, st.st_gid


def read_trusted(path: Path, limit: int, what: str = "file") -> bytes | None:
    """The file's bytes if it is ours alone, else None (the reason logged at DEBUG, never raised).

    Ours alone: in a directory of ours that only its owner can change, opened without
    following a symlink, a regular file owned by us (or by the directory's owner: a file a
    ``sudo`` run made in the user's directory), no group or other permission bits, at most
    ``limit`` bytes. Used for our own caches and records (the helper's token cache, the
    state file) and awscli's credentials cache.
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
        reason = _dir_trouble(path.parent) or _file_trouble(os.fstat(fd), path, limit)
        if reason is None:
            data = _read_fd(fd, limit)
            if len(data) <= limit:
                return data
            reason = f"more than {limit} bytes"
        _debug("%s %s not trusted: %s", what, path, reason)
        return None
    except OSError as e:
        _debug("%s %s not readable: %s", what, path, e)
        return None
    finally:
        os.close(fd)


def _file_trouble(st: os.stat_result, path: Path, limit: int) -> str | None:
    if not stat.S_ISREG(st.st_mode):
        return "not a regular file"
    if st.st_uid != os.geteuid() and st.st_uid != os.stat(path.parent).st_uid:
        return f"owned by uid {st.st_uid}"
    if st.st_mode & 0o077:
        return f"mode {stat.S_IMODE(st.st_mode):04o} (want 0600)"
    if st.st_size > limit:
        return f"{st.st_size} bytes"
    return None


def _debug(message: str, *args: object) -> None:
    """A DEBUG line; logging is imported only then (the helper's warm path never is)."""
    import logging

    logging.getLogger(__name__).debug(message, *args)


def warn(message: str, *args: object) -> None:
    """A warning about one of our caches or records (never fatal)."""
    import logging

    logging.getLogger("runas_async").warning(message, *args)
