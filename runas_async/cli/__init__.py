"""The command line: argv to a typed command (main.py), one module per command (commands/), the
output formats and the env/exec printers.

:func:`run` is the console script ``runas-async`` (and ``python -m runas_async``): it
starts before any of the command line's own modules is imported.
"""

from __future__ import annotations

import gc
from typing import NoReturn

_gc = {"paused": False}
"""Whether :func:`pause_gc` turned the collector off and :func:`resume_gc` has not yet."""


def run() -> NoReturn:
    """The console script: the garbage collector paused and the regex cache installed
    (:mod:`runas_async._recache`) before anything else is imported, so that the command
    line's own imports are quick too; then :func:`runas_async.cli.main.run`."""
    import os

    from runas_async import _recache

    pause_gc()
    patterns = _recache.install(lambda: _recache.cache_file(os.environ))
    from runas_async.cli.main import run as run_main

    run_main(patterns)


def pause_gc() -> None:
    """Turn the garbage collector off, for start-up (the console script only).

    Importing aiobotocore and aiohttp makes hundreds of thousands of objects, none of them
    garbage: the collections they trigger (one full pass of about 25 ms, on the way to the
    first request) find nothing. :func:`resume_gc` turns it back on once they are made;
    a command that never gets there (``--help``, ``password``, ``env``) is short and ends
    with the collector still off.
    """
    if gc.isenabled():
        gc.disable()
        _gc["paused"] = True


def resume_gc() -> None:
    """After the heavy imports and the first request's clients (or before the event loop,
    for a command that sends none): freeze every object made so far (the collector never
    looks at them again) and collect from here on, as usual.

    A no-op unless :func:`pause_gc` paused it (so a command run in-process, as in the
    tests, leaves the caller's collector alone).
    """
    if not _gc["paused"]:
        return
    _gc["paused"] = False
    gc.freeze()
    gc.enable()
    import logging

    logging.getLogger("runas_async").debug(
        "garbage collector on again; %d objects frozen", gc.get_freeze_count()
    )
