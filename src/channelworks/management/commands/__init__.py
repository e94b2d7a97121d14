"""``runserver`` (ASGI, with uvicorn) and ``runworker``; see docs/django.md, "Commands"."""
