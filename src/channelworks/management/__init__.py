"""Django management commands of channelworks (``runserver``, ``runworker``)."""
