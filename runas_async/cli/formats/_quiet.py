"""The members of the Reporter protocol a display without a live table does nothing for."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from runas_async.core.models import TokenKey


class Quiet:
    """No notes shown, nothing to pause or stop."""

    def note(self, key: TokenKey | str, text: str | None) -> None:
        pass

    def paused(self) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()

    def begin(self) -> None:
        pass

    def stop(self) -> None:
        pass
