from django.urls import path

from . import views

app_name = "campaigns"

P = "t/<slug:tenant_slug>/campaigns/"

urlpatterns = [
    path(P, views.campaign_list_page, name="list"),
    path(P + "new", views.campaign_new, name="new"),
    path(P + "new/preview", views.campaign_preview, name="preview"),
    path(P + "new/test", views.campaign_test_send, name="test_send"),
    path(P + "<int:campaign_id>/", views.campaign_detail, name="detail"),
    path(P + "<int:campaign_id>/progress", views.campaign_progress, name="progress"),
    path(P + "<int:campaign_id>/recipients", views.campaign_recipients, name="recipients"),
    path(P + "<int:campaign_id>/export.csv", views.campaign_export, name="export"),
    path(P + "<int:campaign_id>/launch", views.campaign_launch, name="launch"),
    path(P + "<int:campaign_id>/pause", views.campaign_pause, name="pause"),
    path(P + "<int:campaign_id>/resume", views.campaign_resume, name="resume"),
    path(P + "<int:campaign_id>/cancel", views.campaign_cancel, name="cancel"),
]
