"""The demo site: every idea of the seeds as one small Django project, run by ``channelworks demo``.

Read it app by app; each app holds one idea and names its modules after what they hold:

- ``chat``: rooms whose messages are saved and broadcast to a group (``consumers.py``);
- ``social``: direct messages, posts with comments and likes, and the per-user notification
  socket that shows a badge and a toast on every page (``notify.py``, ``consumers.py``);
- ``blog``: a live blog updated from model signals through the channel layer (``signals.py``);
- ``echo``: the smallest consumer;
- ``thumbnails``: a worker reached by channel name (``ChannelNameRouter``, ``consumers.py``).

``asgi.py`` puts them together; ``settings.py`` reads its configuration from the environment
that ``command.py`` (the ``channelworks demo`` command) sets.
"""
