from django.urls import path

from . import apis

urlpatterns = [
    path("webhook-endpoints", apis.WebhookEndpointListCreateApi.as_view(), name="api-webhook-endpoints"),
    path("webhook-endpoints/<int:endpoint_id>", apis.WebhookEndpointDetailApi.as_view(), name="api-webhook-endpoint"),
    path("webhook-endpoints/<int:endpoint_id>/deliveries", apis.WebhookEndpointDeliveryListApi.as_view(),
         name="api-webhook-endpoint-deliveries"),
    path("webhook-endpoints/<int:endpoint_id>/test", apis.WebhookEndpointTestApi.as_view(),
         name="api-webhook-endpoint-test"),
    path("webhook-endpoints/<int:endpoint_id>/rotate-secret", apis.WebhookEndpointRotateSecretApi.as_view(),
         name="api-webhook-endpoint-rotate-secret"),
    path("webhook-deliveries/<int:delivery_id>", apis.WebhookDeliveryDetailApi.as_view(), name="api-webhook-delivery"),
    path("webhook-deliveries/<int:delivery_id>/replay", apis.WebhookDeliveryReplayApi.as_view(),
         name="api-webhook-delivery-replay"),
]
