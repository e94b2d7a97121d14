"""The ASGI applications the benchmark servers run: one module per contender.

Each module exposes ``application`` with the same routes:

- ``/echo``: echo every frame back (async flavour);
- ``/echo-sync``: the same with the framework's sync consumer (raw has no such flavour);
- ``/room``: every client joins one room; a frame from any client is sent to all of them.
"""
