"""The login client's auth file (docker's config.json): read it safely, merge logins into it.

``docker login`` rewrites the whole file, so concurrent logins that share it
lose entries. runas-async gives every login its own temporary DOCKER_CONFIG
(seeded with the user's config.json so credsStore, credHelpers and proxies
still apply) and afterwards merges the new ``auths`` entries into the real
file in one write: under an exclusive lock (two runas-async processes at once),
re-reading the file under that lock, writing a temporary file beside it and
``os.replace``-ing it, so the file is never half-written. The lock is an
``flock`` on the directory that holds config.json.
"""

from __future__ import annotations

import contextlib
import json
import stat
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from runas_async import files
from runas_async.core.errors import DockerConfigError, RunasError
from runas_async.core.sanitize import show
from runas_async.files import atomic_write, locked, make_dirs, parse_json, read_user, target_of


class AuthFile:
    """A client's auth file in docker's format (``{"auths": {HOST: {...}}, ...}``).

    docker and nerdctl keep it at ``$DOCKER_CONFIG/config.json``, podman at
    ``$REGISTRY_AUTH_FILE`` (or ``$XDG_RUNTIME_DIR/containers/auth.json``),
    helm at ``$HELM_REGISTRY_CONFIG`` (or ``~/.config/helm/registry/config.json``).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.directory = path.parent

    def _target(self) -> Path:
        """The real file behind config.json (dotfile managers symlink it)."""
        try:
            return target_of(self.path)
        except OSError as e:
            raise DockerConfigError(f"cannot read {self.path}: a symlink loop") from e

    def read_bytes(self) -> bytes | None:
        """The current file, checked to be a JSON object; None when absent."""
        data = read_user(self.path, what="the auth file", error=DockerConfigError)
        if data is not None:
            self._parse(data)
        return data

    def _parse(self, data: bytes) -> dict[str, Any]:
        if not data.strip():
            return {}
        doc = parse_json(data, what=str(self.path), error=DockerConfigError)
        if not isinstance(doc, dict):
            raise DockerConfigError(f"{self.path} is not a JSON object")
        auths = doc.get("auths", {})
        if not isinstance(auths, dict):
            raise DockerConfigError(f"{self.path}: 'auths' is not a JSON object")
        return doc

    def preflight(self) -> bytes | None:
        """Check, before anything runs, that the file can be read and later replaced.

        Creates the directory (as docker does) and probes it; a read-only
        directory or an unreadable or invalid file raises DockerConfigError
        and nothing is changed. Returns the seed of each login's private copy: the
        file as docker reads it (see :meth:`seed`), or None when there is none.
        """
        data = self.read_bytes()
        try:
            make_dirs(self.directory)
            with self._lock():
                probe = tempfile.NamedTemporaryFile(
                    dir=self._target().parent, prefix=".runas-async-probe-", delete=True
                )
                probe.close()
        except OSError as e:
            raise DockerConfigError(f"cannot write next to {self.path}: {e.strerror or e}") from e
        return None if data is None else self.seed(data)

    def seed(self, data: bytes) -> bytes:
        """``data`` written back plainly: no byte order mark, no CRLF quirks.

        We read a file with a UTF-8 BOM (as Python's json does); Go's encoding/json, and so
        docker, does not, and would ignore the whole file, ``credsStore`` and
        ``credHelpers`` included, writing the token in plain text instead. Each login's
        private copy is therefore the same document in plain JSON.
        """
        return json.dumps(self._parse(data), indent="\t").encode() + b"\n"

    def document(self) -> dict[str, Any]:
        """The file's content as a dict (empty when absent)."""
        data = self.read_bytes()
        return {} if data is None else self._parse(data)

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        # flock on the directory itself: no lock file is left behind.
        with locked(self._target().parent):
            yield

    def merge_auths(self, entries: Mapping[str, Mapping[str, Any]], after: After = None) -> None:
        """Put ``entries`` into ``auths``, keeping every other key and entry.

        Blocking (takes a file lock): call it from a worker thread. ``after`` is called,
        still under the lock, with the document as written (state.py's records).
        """
        if entries:
            new = {h: dict(e) for h, e in entries.items()}
            self._update(lambda auths: auths.update(new), after)

    def remove_auths(self, hosts: Iterable[str], after: After = None) -> None:
        """Drop these hosts from ``auths`` in every spelling docker logout removes
        (``HOST``, ``https://HOST``, ``http://HOST``); everything else stays. Blocking.
        """
        gone = {spelling for host in hosts for spelling in spellings(host)}
        if gone:
            self._update(lambda auths: [auths.pop(h, None) for h in gone], after)

    def set_helpers(self, hosts: Iterable[str], helper: str, *, remove: bool = False) -> None:
        """Send these hosts to ``docker-credential-HELPER`` in ``credHelpers``, or with
        ``remove`` take out those of their entries that name it; everything else stays.
        Blocking."""
        wanted = list(hosts)

        def change(helpers: dict[str, Any]) -> None:
            for host in wanted:
                if not remove:
                    helpers[host] = helper
                elif helpers.get(host) == helper:
                    del helpers[host]

        if wanted:
            self._update(change, section="credHelpers")

    def _update(
        self,
        change: Callable[[dict[str, Any]], object],
        after: After = None,
        section: str = "auths",
    ) -> None:
        """Re-read under the lock, apply ``change`` to ``auths``, replace atomically.

        The lock keeps runas-async processes from losing each other's entries. A plain
        ``docker login`` takes no lock: the file is read again, and the change made
        again, if it was replaced while the new one was being written (up to
        :data:`UPDATE_TRIES` times; the last try writes whatever happens), so that only
        the moment between that check and the rename is left to chance.
        """
        target = self._target()
        try:
            with self._lock():
                for attempt in range(1, UPDATE_TRIES + 1):
                    checked = attempt < UPDATE_TRIES
                    doc = self._try_update(target, change, section, checked=checked)
                    if doc is not None:
                        if after is not None:
                            after(doc)
                        return
        except OSError as e:
            raise DockerConfigError(f"cannot update {self.path}: {e.strerror or e}") from e

    def _try_update(
        self,
        target: Path,
        change: Callable[[dict[str, Any]], object],
        section: str,
        *,
        checked: bool,
    ) -> dict[str, Any] | None:
        before = _identity(target)
        current = read_user(target, what="the auth file", error=DockerConfigError) or b""
        doc = self._parse(current)
        part = doc.setdefault(section, {})
        if not isinstance(part, dict):
            raise DockerConfigError(f"{self.path}: {show(section)} is not a JSON object")
        change(part)
        if not part and section != "auths":
            del doc[section]
        mode, owner = 0o600, files.KEEP
        if current:
            st = target.stat()
            mode, owner = stat.S_IMODE(st.st_mode), (st.st_uid, st.st_gid)
        data = json.dumps(doc, indent="\t").encode() + b"\n"
        unchanged = (lambda: _identity(target) == before) if checked else None
        return doc if atomic_write(target, data, mode, owner, unchanged) else None


UPDATE_TRIES = 3

After = Callable[[dict[str, Any]], None] | None
"""Called under the lock with the document just written."""


def _identity(path: Path) -> tuple[int, int, int, int] | None:
    """What changes when the file is replaced or rewritten: inode, size, mtime, ctime."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def parse_document(data: bytes | None) -> dict[str, Any]:
    """A config.json's content, or {} when there is none or it is not a JSON object."""
    if not data:
        return {}
    try:
        doc = parse_json(data, what="the auth file")
    except RunasError:
        return {}
    return doc if isinstance(doc, dict) else {}


CREDENTIAL_KEYS = ("auths", "credsStore", "credHelpers")
"""The keys of a docker config that hold or lead to credentials."""


def credential_free(doc: Mapping[str, Any]) -> dict[str, Any]:
    """``doc`` without anything that holds or leads to credentials (``proxies`` and the
    like stay): the settings a job's private auth file starts from."""
    return {key: value for key, value in doc.items() if key not in CREDENTIAL_KEYS}


def spellings(host: str) -> tuple[str, ...]:
    """The keys docker logout removes for ``host``."""
    return (host, f"https://{host}", f"http://{host}")


SELF_SERVING_HELPERS = frozenset({"ecr-login", "runas-async"})
"""Credential helpers that fetch ECR tokens themselves: a login stored there is not used."""


def helper_for(doc: Mapping[str, Any], host: str | None) -> str | None:
    """The credential helper docker would store ``host``'s login with, if any:
    ``credHelpers[host]``, else ``credsStore`` (also for a host not known yet: None)."""
    helpers = doc.get("credHelpers")
    if isinstance(helpers, dict) and host is not None:
        name = helpers.get(host)  # docker looks credHelpers up by the exact host
        if isinstance(name, str) and name:
            return name
    store = doc.get("credsStore")
    return store if isinstance(store, str) and store else None


def auth_entry(config_json: bytes, host: str) -> dict[str, Any] | None:
    """The ``auths`` entry for ``host`` in a config.json written by docker login."""
    try:
        doc = parse_json(config_json, what="the client's auth file")
    except RunasError:
        return None
    if not isinstance(doc, dict):
        return None
    auths = doc.get("auths")
    if not isinstance(auths, dict):
        return None
    entry = auths.get(host)
    return dict(entry) if isinstance(entry, dict) else None
