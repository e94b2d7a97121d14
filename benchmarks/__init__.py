"""Side-by-side benchmarks: a raw ASGI app, channelworks and Django Channels under uvicorn.

Run ``uv run --group bench python -m benchmarks`` (see benchmarks/README.md).
"""
