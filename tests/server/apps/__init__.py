"""ASGI applications the real-server tests serve."""
