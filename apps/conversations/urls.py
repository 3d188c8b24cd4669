from django.urls import path

from . import views

app_name = "conversations"

urlpatterns = [
    path("t/<slug:tenant_slug>/inbox/", views.inbox, name="inbox"),
]
