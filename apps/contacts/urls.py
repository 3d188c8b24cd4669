from django.urls import path

from . import views

app_name = "contacts"

P = "t/<slug:tenant_slug>/contacts/"

urlpatterns = [
    path(P, views.contact_list_page, name="list"),
    path(P + "new/", views.contact_create, name="create"),
    path(P + "bulk/", views.contact_bulk, name="bulk"),
    path(P + "export.csv", views.contact_export, name="export"),
    path(P + "<int:contact_id>/", views.contact_detail, name="detail"),
    path(P + "<int:contact_id>/tags/", views.contact_tags, name="tags"),
    path(P + "<int:contact_id>/opt/", views.contact_opt, name="opt"),
    path(P + "<int:contact_id>/delete/", views.contact_remove, name="delete"),
    path(P + "attributes/", views.attributes_page, name="attributes"),
    path(P + "attributes/<int:attribute_id>/delete/", views.attribute_remove, name="attribute_delete"),
    path(P + "segments/", views.segment_create, name="segment_create"),
    path(P + "segments/<int:segment_id>/delete/", views.segment_remove, name="segment_delete"),
    path(P + "import/", views.import_page, name="import"),
    path(P + "import/<int:import_id>/", views.import_detail, name="import_detail"),
    path(P + "import/<int:import_id>/progress/", views.import_progress, name="import_progress"),
    path(P + "import/<int:import_id>/errors.csv", views.import_errors, name="import_errors"),
]
