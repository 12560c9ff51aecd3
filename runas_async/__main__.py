"""``python -m runas_async``."""

from runas_async.cli.main import run

run()
