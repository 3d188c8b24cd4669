from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from apps.core.views import healthz

handler404 = "apps.core.views.not_found"

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("accounts/login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("", include("apps.providers.urls")),
    path("", include("apps.api.urls")),
    path("", include("apps.tenants.urls")),
    path("", include("apps.phone_numbers.urls")),
    path("", include("apps.conversations.urls")),
    path("", include("apps.contacts.urls")),
    path("", include("apps.message_templates.urls")),
    path("", include("apps.webhooks.urls")),
    path("", include("apps.campaigns.urls")),
]

if settings.PARLEY_BENCH_VIEWS:
    urlpatterns.append(path("_bench/", include("bench.urls")))
