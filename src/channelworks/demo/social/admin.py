from django.contrib import admin

from channelworks.demo.social.models import Comment, DirectMessage, Like, Notification, Post

admin.site.register([DirectMessage, Notification, Post, Comment, Like])
