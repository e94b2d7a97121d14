"""The built JS client ships as static files of the ``channelworks`` app."""

from __future__ import annotations

from pathlib import Path

from django.contrib.staticfiles import finders
from django.template import Context, Template
from django.test import override_settings

from tests.settings import INSTALLED_APPS

STATIC_APPS = [*INSTALLED_APPS, "django.contrib.staticfiles"]


@override_settings(INSTALLED_APPS=STATIC_APPS)
def test_the_static_tag_and_the_finder_serve_the_built_client() -> None:
    tags = '{% static "channelworks/client.js" %} {% static "channelworks/client.mjs" %}'
    rendered = Template("{% load static %}" + tags).render(Context())
    assert rendered == "/static/channelworks/client.js /static/channelworks/client.mjs"
    for name, marker in (("client.js", "var Channelworks="), ("client.mjs", "export{")):
        found = finders.find(f"channelworks/{name}")
        assert isinstance(found, str), f"no static file channelworks/{name}"
        text = Path(found).read_text()
        assert text.startswith("/* @channelworks/client "), text[:80]
        assert marker in text
