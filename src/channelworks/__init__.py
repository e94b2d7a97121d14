"""channelworks: real-time Django over ASGI, speaking Django Channels' vocabulary."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("channelworks")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"

DEFAULT_CHANNEL_LAYER = "default"

__all__ = ["DEFAULT_CHANNEL_LAYER", "__version__"]
