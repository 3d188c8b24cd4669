from django.urls import path

from . import views

app_name = "providers"

urlpatterns = [
    path("webhooks/meta/", views.MetaWebhookView.as_view(), name="meta-webhook"),
    path("webhooks/gupshup/<str:token>/", views.GupshupWebhookView.as_view(), name="gupshup-webhook"),
    path("webhooks/gupshup-partner/<str:token>/", views.GupshupPartnerWebhookView.as_view(),
         name="gupshup-partner-webhook"),
]
