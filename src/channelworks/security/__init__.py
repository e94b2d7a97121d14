"""Security middleware; today the WebSocket origin checks of ``channelworks.security.websocket``."""

from channelworks.security.websocket import AllowedHostsOriginValidator, OriginValidator

__all__ = ["AllowedHostsOriginValidator", "OriginValidator"]
