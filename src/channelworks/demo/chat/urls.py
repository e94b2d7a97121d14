from django.urls import path

from channelworks.demo.chat import views

app_name = "chat"
urlpatterns = [
    path("", views.room_list, name="rooms"),
    path("<slug:slug>/", views.room_detail, name="room"),
    path("<slug:slug>/messages/", views.room_messages, name="messages"),
]
