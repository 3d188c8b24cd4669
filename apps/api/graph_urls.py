"""``/graph/``: the Meta-compatible endpoints (``apps.api.graph``). Any other path answers in
Meta's error envelope too, so a Cloud API client never sees an HTML page."""

from django.urls import re_path

from .graph import GraphMediaApi, GraphMessagesApi, GraphUnknownApi

VERSION = r"(?P<version>v\d{1,3}\.\d{1,3})"
NUMBER = r"(?P<phone_number_id>[^/]{1,64})"

urlpatterns = [
    re_path(rf"^{VERSION}/{NUMBER}/messages/?$", GraphMessagesApi.as_view(), name="graph-messages"),
    re_path(rf"^{VERSION}/{NUMBER}/media/?$", GraphMediaApi.as_view(), name="graph-media"),
    re_path(r"^.*$", GraphUnknownApi.as_view(), name="graph-unknown"),
]
