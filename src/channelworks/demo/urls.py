from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.templatetags.static import static
from django.urls import include, path, re_path
from django.views.generic import RedirectView
from django.views.static import serve

from channelworks.demo import operations, views

urlpatterns = [
    path("", views.home, name="home"),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("rooms/", include("channelworks.demo.chat.urls")),
    path("", include("channelworks.demo.social.urls")),
    path("blog/", include("channelworks.demo.blog.urls")),
    path("echo/", include("channelworks.demo.echo.urls")),
    path("avatar/", include("channelworks.demo.thumbnails.urls")),
    path("ops/", operations.page, name="ops"),
    path("ops/data/", operations.data, name="ops-data"),
    # The admin live view (channelworks.ops, docs/operations.md): close a connection there.
    path("admin/channelworks/", include("channelworks.ops.urls")),
    path("admin/", admin.site.urls),
    # Pages without the icon link (the admin's) make browsers ask for /favicon.ico.
    path("favicon.ico", RedirectView.as_view(url=static("demo/favicon.svg"), permanent=True)),
    # Uploaded avatars, from the data folder. A real site lets its web server do this.
    re_path(r"^media/(?P<path>.*)$", serve, {"document_root": settings.MEDIA_ROOT}),
]

handler403 = views.forbidden
handler404 = views.not_found
handler500 = views.server_error
