"""The benchmark of ``make bench``: runas-async against the serial pipeline, behind latency.

Modules: :mod:`bench.latency` (the latency proxy), :mod:`bench.world` (the sandbox with the
proxy in front of every server), :mod:`bench.tools` (awscli in a venv of its own),
:mod:`bench.measure` (what is run and read), :mod:`bench.report` (BENCHMARKS.md and the
chart), :mod:`bench.run` (the whole run). See BENCHMARKS.md for the method and the results.
"""
