from django.urls import path

from . import views

app_name = "message_templates"

P = "t/<slug:tenant_slug>/templates/"

urlpatterns = [
    path(P, views.template_list_page, name="list"),
    path(P + "changes/", views.template_changes, name="changes"),
    path(P + "sync/", views.template_sync, name="sync"),
    path(P + "new/", views.template_create_page, name="create"),
    path(P + "new/preview/", views.template_preview, name="preview"),
    path(P + "<int:template_id>/", views.template_detail_page, name="detail"),
    path(P + "<int:template_id>/delete/", views.template_delete, name="delete"),
]
