from django.contrib import admin

from channelworks.demo.blog.models import Entry


@admin.register(Entry)
class EntryAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("title", "created", "updated")
