"""aiohttp's import-time CA loading, taken off the start-up path (issue 21).

Importing ``aiohttp.connector`` builds two TLS contexts at module level (its
``_make_ssl_context``: the verified default and the unverified one), and each loads the
system's CA certificates (``SSLContext.set_default_verify_paths``, directly or through
``load_default_certs``): about 110 ms of the main thread, in the middle of start-up, on the
way to the first request. runas-async's AWS clients never use either (aiobotocore gives its
connections a context of its own, ``_transport.SharedTLSSession``); the built-in client's
registry connections use the verified one.

While :func:`defer` is in force, a ``set_default_verify_paths`` that aiohttp.connector's
own code calls does not load: it records the context, and gives it instance methods
(``wrap_bio``, ``wrap_socket``, the two that start every handshake, and the two that show
the store) that load first. :func:`resume` ends it once the heavy imports are done and,
for a run that will use the verified context, loads the recorded contexts in a thread
(the load runs without the GIL, on the other core). A context is therefore never used
without its certificates: its first handshake waits for the thread's load, or loads.

This hooks aiohttp's import-time behaviour, so it lives beside ``_transport.py`` (which
imports aiohttp itself, and so cannot run before it). Fallback: an aiohttp that builds its
contexts elsewhere, later, or not through ``set_default_verify_paths`` simply loads as it
always did (nothing comes from aiohttp.connector's code, nothing is deferred);
tests/test_lazyca.py checks both. Standard library only: this runs before the imports.
"""

from __future__ import annotations

import logging
import ssl
import sys
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

log = logging.getLogger(__name__)

_OWNER = "aiohttp.connector"
"""The module whose CA loading is deferred; nobody else's is."""

_GUARDED = ("wrap_bio", "wrap_socket", "get_ca_certs", "cert_store_stats")
"""The context's methods that need the certificates in: each loads them first."""

_real_load: Callable[[ssl.SSLContext], None] = ssl.SSLContext.set_default_verify_paths
_pending: list[_Pending] = []
_state = {"deferring": False, "load_after": False}


class _Pending:
    """One context whose certificates are still to be loaded; loads them once."""

    def __init__(self, context: ssl.SSLContext) -> None:
        self.context = context
        self._lock = threading.Lock()
        self._loaded = False
        for name in _GUARDED:
            setattr(context, name, self._guard(getattr(context, name)))

    def _guard(self, method: Callable[..., Any]) -> Callable[..., Any]:
        def loaded_first(*args: Any, **kwargs: Any) -> Any:
            self.load()
            return method(*args, **kwargs)

        return loaded_first

    def load(self) -> None:
        with self._lock:
            if self._loaded:
                return
            try:
                _real_load(self.context)
            finally:
                # Loaded (or failed as aiohttp's own call would have): the plain methods again.
                self._loaded = True
                for name in _GUARDED:
                    self.context.__dict__.pop(name, None)


def _from_owner() -> bool:
    """Whether the call being made comes from aiohttp.connector's code (through ssl's own
    ``create_default_context``/``load_default_certs``, or directly)."""
    frame: FrameType | None = sys._getframe(2)  # past set_default_verify_paths below
    for _ in range(4):
        if frame is None:
            return False
        name = frame.f_globals.get("__name__")
        if name != "ssl":
            return bool(name == _OWNER)
        frame = frame.f_back
    return False


def _deferred_load(self: ssl.SSLContext) -> None:
    if _state["deferring"] and _from_owner():
        _pending.append(_Pending(self))
        return
    _real_load(self)


def defer(*, load_after: bool) -> None:
    """Until :func:`resume`, defer the CA loading of aiohttp.connector's contexts.

    A no-op when aiohttp is imported already. ``load_after``: :func:`resume` loads them in
    a thread (the run uses the verified context: the built-in client); otherwise each
    loads at its first use, if it ever has one.
    """
    if _OWNER in sys.modules or _state["deferring"]:
        return
    _state.update(deferring=True, load_after=load_after)
    # The Python subclass's attribute; the C method stays on _ssl._SSLContext.
    ssl.SSLContext.set_default_verify_paths = _deferred_load  # type: ignore[method-assign]


def resume() -> None:
    """End :func:`defer`; load the deferred contexts in a thread if asked to. Idempotent."""
    if not _state["deferring"]:
        return
    _state["deferring"] = False
    if ssl.SSLContext.__dict__.get("set_default_verify_paths") is _deferred_load:
        del ssl.SSLContext.set_default_verify_paths
    waiting = list(_pending)
    log.debug("CA loading of %d of aiohttp's contexts deferred", len(waiting))
    if waiting and _state["load_after"]:
        threading.Thread(
            target=_load_all, args=(waiting,), name="runas-async-ca", daemon=True
        ).start()


def _load_all(waiting: list[_Pending]) -> None:
    for pending in waiting:
        try:
            pending.load()
        except (OSError, ssl.SSLError) as e:  # its first use meets it again, and reports it
            log.debug("CA certificates not loaded ahead: %s", type(e).__name__)


def deferred() -> int:
    """How many contexts had their loading deferred in this process (for the tests)."""
    return len(_pending)
