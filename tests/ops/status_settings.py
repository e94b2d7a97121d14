"""Settings for ``channelworks status`` in the tests: the Redis layer under OPS_TEST_PREFIX."""

import os

from tests.layers.backends import REDIS_URL

SECRET_KEY = "channelworks-ops-test"
INSTALLED_APPS: list[str] = []
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channelworks.layers.redis.RedisChannelLayer",
        "CONFIG": {"hosts": [REDIS_URL], "prefix": os.environ["OPS_TEST_PREFIX"]},
    }
}
