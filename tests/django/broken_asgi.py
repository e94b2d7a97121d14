"""An ASGI module that fails while importing (for the ASGI_APPLICATION error test)."""

raise RuntimeError("broken on purpose")
