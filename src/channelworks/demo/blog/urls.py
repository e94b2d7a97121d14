from django.urls import path

from channelworks.demo.blog import views

app_name = "blog"
urlpatterns = [
    path("", views.entry_list, name="entries"),
    path("new/", views.entry_create, name="create"),
    path("<int:pk>/edit/", views.entry_edit, name="edit"),
    path("<int:pk>/delete/", views.entry_delete, name="delete"),
]
