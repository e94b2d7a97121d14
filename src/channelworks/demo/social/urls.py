from django.urls import path

from channelworks.demo.social import views

app_name = "social"
urlpatterns = [
    path("messages/", views.people, name="people"),
    path("messages/<str:username>/", views.conversation, name="conversation"),
    path("notifications/", views.notifications, name="notifications"),
    path("notifications/read/", views.notifications_read, name="notifications_read"),
    path("posts/", views.post_list, name="posts"),
    path("posts/<int:pk>/", views.post_detail, name="post"),
    path("posts/<int:pk>/like/", views.post_like, name="like"),
]
