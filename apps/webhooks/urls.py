from django.urls import path

from . import views

app_name = "webhooks"

P = "t/<slug:tenant_slug>/settings/webhooks/"

urlpatterns = [
    path(P, views.endpoint_list_page, name="endpoint_list"),
    path(P + "new/", views.endpoint_create_page, name="endpoint_create"),
    path(P + "<int:endpoint_id>/", views.endpoint_detail_page, name="endpoint_detail"),
    path(P + "<int:endpoint_id>/edit/", views.endpoint_edit_page, name="endpoint_edit"),
    path(P + "<int:endpoint_id>/test/", views.endpoint_test, name="endpoint_test"),
    path(P + "<int:endpoint_id>/toggle/", views.endpoint_toggle, name="endpoint_toggle"),
    path(P + "<int:endpoint_id>/rotate-secret/", views.endpoint_rotate_secret, name="endpoint_rotate_secret"),
    path(P + "deliveries/<int:delivery_id>/", views.delivery_attempts_fragment, name="delivery_attempts"),
    path(P + "deliveries/<int:delivery_id>/replay/", views.delivery_replay, name="delivery_replay"),
    # Kept apart from the endpoint's own paths, which all stop existing once it is deleted.
    path(P + "delete/<int:endpoint_id>/", views.endpoint_delete, name="endpoint_delete"),
]
