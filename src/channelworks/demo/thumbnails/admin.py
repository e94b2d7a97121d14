from django.contrib import admin

from channelworks.demo.thumbnails.models import Avatar

admin.site.register(Avatar)
