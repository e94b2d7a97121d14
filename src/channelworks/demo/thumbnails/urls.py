from django.urls import path

from channelworks.demo.thumbnails import views

app_name = "thumbnails"
urlpatterns = [
    path("", views.avatar, name="avatar"),
]
