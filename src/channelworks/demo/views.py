from django.contrib.auth import get_user_model
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from channelworks.demo.seed import DEMO_PASSWORD


def home(request: HttpRequest) -> HttpResponse:
    """What the demo shows, page by page, and who to log in as."""
    users = get_user_model().objects.order_by("username").values_list("username", flat=True)
    return render(request, "demo/home.html", {"users": users, "password": DEMO_PASSWORD})
