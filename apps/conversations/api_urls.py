from django.urls import path, register_converter

from . import apis


class ObjectIdConverter:
    """An id segment that always reaches the view, so a malformed id gets the API's JSON 404
    instead of the site's HTML page; anything but digits becomes 0, which names nothing."""

    regex = "[^/]+"

    def to_python(self, value: str) -> int:
        return int(value) if value.isdigit() else 0

    def to_url(self, value: int) -> str:
        return str(value)


register_converter(ObjectIdConverter, "object_id")

urlpatterns = [
    path("messages", apis.MessageListCreateApi.as_view(), name="api-messages"),
    path("messages/<object_id:message_id>", apis.MessageDetailApi.as_view(), name="api-message-detail"),
    path("media", apis.MediaUploadApi.as_view(), name="api-media"),
    path("media/<object_id:media_id>", apis.MediaDetailApi.as_view(), name="api-media-detail"),
    path("conversations", apis.ConversationListApi.as_view(), name="api-conversations"),
    path("conversations/<object_id:conversation_id>", apis.ConversationDetailApi.as_view(),
         name="api-conversation-detail"),
    path("conversations/<object_id:conversation_id>/messages", apis.ConversationMessageListApi.as_view(),
         name="api-conversation-messages"),
]
