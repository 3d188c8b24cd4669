from django.urls import path

from . import views

app_name = "message_templates"

urlpatterns = [
    path("t/<slug:tenant_slug>/templates/", views.template_list_page, name="list"),
]
