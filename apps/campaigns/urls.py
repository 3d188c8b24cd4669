from django.urls import path

from . import views

app_name = "campaigns"

urlpatterns = [
    path("t/<slug:tenant_slug>/campaigns/", views.campaign_list_page, name="list"),
]
