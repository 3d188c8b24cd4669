from django.urls import path

from . import views

app_name = "contacts"

urlpatterns = [
    path("t/<slug:tenant_slug>/contacts/", views.contact_list_page, name="list"),
]
