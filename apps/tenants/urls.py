from django.urls import path

from . import views

app_name = "tenants"

urlpatterns = [
    path("", views.home, name="home"),
    path("tenants/", views.tenant_picker, name="picker"),
    path("t/<slug:tenant_slug>/", views.tenant_root, name="root"),
    path("t/<slug:tenant_slug>/settings/", views.settings_overview, name="settings"),
]
