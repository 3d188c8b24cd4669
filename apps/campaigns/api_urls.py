from django.urls import path

from . import apis

urlpatterns = [
    path("campaigns", apis.CampaignListCreateApi.as_view(), name="api-campaigns"),
    path("campaigns/<int:campaign_id>", apis.CampaignDetailApi.as_view(), name="api-campaign"),
    path("campaigns/<int:campaign_id>/recipients", apis.CampaignRecipientListApi.as_view(),
         name="api-campaign-recipients"),
    path("campaigns/<int:campaign_id>/pause", apis.CampaignPauseApi.as_view(), name="api-campaign-pause"),
    path("campaigns/<int:campaign_id>/resume", apis.CampaignResumeApi.as_view(), name="api-campaign-resume"),
    path("campaigns/<int:campaign_id>/cancel", apis.CampaignCancelApi.as_view(), name="api-campaign-cancel"),
]
