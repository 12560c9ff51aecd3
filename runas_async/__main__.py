"""``python -m runas_async``."""

from runas_async.cli import run

run()
