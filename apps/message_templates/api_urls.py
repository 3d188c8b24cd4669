from django.urls import path

from . import apis

urlpatterns = [
    path("templates", apis.TemplateListApi.as_view(), name="api-templates"),
    path("templates/sync", apis.TemplateSyncApi.as_view(), name="api-templates-sync"),
    path("templates/<int:template_id>", apis.TemplateDetailApi.as_view(), name="api-template"),
]
