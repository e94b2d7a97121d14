"""The load generators: each runs in its own OS process and prints one JSON line of results.

Run as ``python -m benchmarks.clients KIND ...`` (see ``__main__``); the orchestrator in
``benchmarks.figures`` starts them against a server started by ``benchmarks.server``.
"""
