from django.apps import AppConfig


class DemoConfig(AppConfig):
    """The site itself: base templates, the browser code, the home and login pages."""

    name = "channelworks.demo"
    label = "demo"
    verbose_name = "channelworks demo"
