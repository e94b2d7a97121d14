from django.contrib import admin

from channelworks.demo.chat.forms import RoomAdminForm
from channelworks.demo.chat.models import Message, Room


@admin.register(Room)
class RoomAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    form = RoomAdminForm
    list_display = ("name", "slug", "is_private")
    prepopulated_fields = {"slug": ["name"]}  # noqa: RUF012
    filter_horizontal = ("members",)


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("room", "author", "text", "created")
    list_filter = ("room",)
