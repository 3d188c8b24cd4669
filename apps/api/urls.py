"""The REST API (/api/v1/), its schema and docs, and the Meta-compatible endpoints (/graph/).
Each app keeps its own API routes in ``api_urls.py``."""

from django.contrib.auth.decorators import login_not_required
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

v1 = [
    path("", include("apps.conversations.api_urls")),
    path("", include("apps.contacts.api_urls")),
    path("", include("apps.message_templates.api_urls")),
    path("", include("apps.phone_numbers.api_urls")),
    path("", include("apps.webhooks.api_urls")),
    path("", include("apps.campaigns.api_urls")),
]

urlpatterns = [
    path("api/v1/", include(v1)),
    path("api/schema/", login_not_required(SpectacularAPIView.as_view()), name="api-schema"),
    path("api/docs/", login_not_required(SpectacularSwaggerView.as_view(url_name="api-schema")), name="api-docs"),
    path("graph/", include("apps.api.graph_urls")),
]
