"""What a run learns, recorded: :class:`Recorder` writes each login's record (state.py)
under the auth file's lock; :class:`Recording` is the reporter that tells it what is done.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runas_async.auth.entries import place_of
from runas_async.auth.state import LoginRecord, State, StateFile, auth_key
from runas_async.core.models import LoginResult, Status

if TYPE_CHECKING:
    from runas_async.core.plan import Plan
    from runas_async.engine import Reporter


class Recorder:
    """Collects what a run learns and writes it under the auth file's lock.

    The runner reports each token's expiry (:meth:`token`), the reporter each registry
    done (:meth:`result`); :meth:`write` is called by the merge with the auth file as
    written, so that every record describes an entry that is really there.
    """

    def __init__(
        self,
        state_file: StateFile,
        auth_path: Path,
        client: str,
        identities: Mapping[str, str | None] | None = None,
    ) -> None:
        self.state_file = state_file
        self.auth_path = auth_path
        self.client = client
        self.identities = dict(identities or {})
        self.expiries: dict[str, float | None] = {}
        self.done: dict[str, LoginResult] = {}

    def token(self, host: str, expires_at: float | None) -> None:
        self.expiries[host] = expires_at

    def result(self, result: LoginResult) -> None:
        if result.status is Status.OK and result.registry is not None:
            self.done[result.registry.host] = result

    def write(
        self, doc: Mapping[str, Any], added: Iterable[str] = (), removed: Iterable[str] = ()
    ) -> None:
        """Records for ``added`` hosts, none for ``removed`` ones (blocking: a lock)."""
        added, removed = list(added), list(removed)

        def change(state: State) -> None:
            records = state.logins.setdefault(auth_key(self.auth_path), {})
            for host in removed:
                records.pop(host, None)
            for host in added:
                records.pop(host, None)
                new = self._record(state, doc, host)
                if new is not None:
                    records[host] = new
            for result in self.done.values():
                identity = self.identities.get(result.target.key.profile)
                registry = result.registry
                if result.target.registry is None and identity and registry and registry.account:
                    state.accounts[f"{result.target.key.profile}\n{identity}"] = registry.account

        self.state_file.update(change)

    def _record(self, state: State, doc: Mapping[str, Any], host: str) -> LoginRecord | None:
        result, place = self.done.get(host), place_of(doc, host)
        if result is None or place is None or result.registry is None:
            return None  # finished after the run was cut short: not known to be ours
        return LoginRecord(
            expires_at=self.expiries.get(host),
            profile=result.target.key.profile,
            account=result.registry.account,
            region=result.registry.region,
            client=self.client,
            store=place.store,
            helper=place.helper,
            auth_hmac=None if place.auth is None else state.fingerprint(place.auth),
        )


class Recording:
    """A reporter that tells the recorder what is done, and shows the fresh rows too."""

    def __init__(
        self, inner: Reporter, recorder: Recorder | None, fresh: Sequence[LoginResult] = ()
    ) -> None:
        self.inner = inner
        self.recorder = recorder
        self.fresh = list(fresh)

    def start(self, plan: Plan) -> None:
        self.inner.start(plan)
        for result in self.fresh:
            self.inner.update(result)

    def update(self, result: LoginResult) -> None:
        if self.recorder is not None:  # None: nothing to record (a job's logins, secrets)
            self.recorder.result(result)
        self.inner.update(result)

    def finish(self, results: Sequence[LoginResult]) -> None:
        self.inner.finish([*self.fresh, *results])

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)  # paused(), stop() of the live table
