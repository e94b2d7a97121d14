from django.urls import path
from django.views.generic import TemplateView

app_name = "echo"
urlpatterns = [
    path("", TemplateView.as_view(template_name="echo/echo.html"), name="echo"),
]
