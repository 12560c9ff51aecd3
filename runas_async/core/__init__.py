"""The ground floor: pure data and parsing (errors, models, partitions, endpoints, plan, options,
the --file TOML, places, the registries mapping, the clients as data, the completion scripts).

Nothing here imports anyio, botocore, aiohttp or rich, or does I/O; tests/test_layers.py checks it.
"""
