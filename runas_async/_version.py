"""The version, in one place: read by the build (hatch) and by ``--version``.

A module constant instead of importlib.metadata keeps ``--version`` fast.
"""

__version__ = "0.1.0"
