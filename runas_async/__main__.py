"""``python -m runas_async``."""

import sys

from runas_async.cli import main

sys.exit(main())
