from django.contrib.auth import get_user_model
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views import defaults

from channelworks.demo.seed import DEMO_PASSWORD


def home(request: HttpRequest) -> HttpResponse:
    """What the demo shows, page by page, and who to log in as."""
    users = get_user_model().objects.order_by("username").values_list("username", flat=True)
    return render(request, "demo/home.html", {"users": users, "password": DEMO_PASSWORD})


# The site's error pages, named under demo/ so that a project which installs the demo's apps
# keeps its own 404.html (the demo's urls.py names these as its handlers).
def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    return defaults.page_not_found(request, exception, template_name="demo/404.html")


def forbidden(request: HttpRequest, exception: Exception) -> HttpResponse:
    return defaults.permission_denied(request, exception, template_name="demo/403.html")


def server_error(request: HttpRequest) -> HttpResponse:
    return defaults.server_error(request, template_name="demo/500.html")
