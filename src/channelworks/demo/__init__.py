"""The demo site: every idea of the seeds as one small Django project, run by ``channelworks demo``.

Read it app by app; each app holds one idea and names its modules after what they hold:

- ``chat``: rooms whose messages are saved and broadcast to their topic, with presence, typing
  and resume (``topics.py``);
- ``social``: direct messages, posts with comments and likes, and the per-user notification
  topic that shows a badge and a toast on every page (``notify.py``, ``topics.py``);
- ``blog``: a live blog updated from model signals through its topic (``signals.py``);
- ``echo``: the smallest consumer;
- ``thumbnails``: a worker reached by channel name (``ChannelNameRouter``, ``consumers.py``).

Every live page rides one socket, the site's topics socket (``routing.py``); ``asgi.py`` puts
them together; ``settings.py`` reads its configuration from the environment
that ``command.py`` (the ``channelworks demo`` command) sets.
"""
