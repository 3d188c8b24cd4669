from django.urls import path

from . import views

app_name = "phone_numbers"

urlpatterns = [
    path("t/<slug:tenant_slug>/settings/numbers/", views.number_list, name="list"),
    path("t/<slug:tenant_slug>/settings/numbers/connect/", views.number_connect, name="connect"),
    path("t/<slug:tenant_slug>/settings/numbers/<int:phone_number_id>/", views.number_detail, name="detail"),
    path("t/<slug:tenant_slug>/settings/numbers/<int:phone_number_id>/test/", views.number_test, name="test"),
    path("t/<slug:tenant_slug>/settings/numbers/<int:phone_number_id>/enabled/", views.number_enabled,
         name="enabled"),
]
