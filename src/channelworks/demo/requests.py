from django.contrib.auth.models import User
from django.http import HttpRequest


class AuthenticatedRequest(HttpRequest):
    """The request of a ``login_required`` view, for type checkers: ``user`` is a ``User``."""

    user: User
