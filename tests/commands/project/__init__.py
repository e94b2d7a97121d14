"""A small Django project the command tests run ``runserver`` and ``runworker`` against.

Its settings (``tests.commands.project.settings``) install ``channelworks`` before
``django.contrib.staticfiles``, so ``runserver`` is ours; the application routes HTTP to
Django, a WebSocket echo and the ``thumbnail-generate`` worker channel.
"""
