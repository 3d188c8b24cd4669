from django.urls import path

from . import views

app_name = "conversations"

urlpatterns = [
    path("t/<slug:tenant_slug>/inbox/", views.inbox, name="inbox"),
    path("t/<slug:tenant_slug>/inbox/changes/", views.inbox_changes, name="changes"),
    path("t/<slug:tenant_slug>/inbox/media/<int:media_id>/", views.media_file, name="media"),
    path("t/<slug:tenant_slug>/inbox/canned/", views.canned_responses, name="canned"),
    path("t/<slug:tenant_slug>/inbox/canned/<int:canned_response_id>/", views.canned_response_edit,
         name="canned_edit"),
    path("t/<slug:tenant_slug>/inbox/canned/<int:canned_response_id>/delete/", views.canned_response_remove,
         name="canned_delete"),
    path("t/<slug:tenant_slug>/inbox/labels/", views.labels, name="labels"),
    path("t/<slug:tenant_slug>/inbox/labels/<int:label_id>/", views.label_edit, name="label_edit"),
    path("t/<slug:tenant_slug>/inbox/labels/<int:label_id>/delete/", views.label_remove, name="label_delete"),
    path("t/<slug:tenant_slug>/inbox/<int:conversation_id>/", views.inbox, name="thread"),
    path("t/<slug:tenant_slug>/inbox/<int:conversation_id>/send/", views.conversation_send, name="send"),
    path("t/<slug:tenant_slug>/inbox/<int:conversation_id>/template/", views.conversation_template, name="template"),
    path("t/<slug:tenant_slug>/inbox/<int:conversation_id>/assign/", views.conversation_assign, name="assign"),
    path("t/<slug:tenant_slug>/inbox/<int:conversation_id>/status/", views.conversation_status, name="status"),
    path("t/<slug:tenant_slug>/inbox/<int:conversation_id>/labels/<int:label_id>/", views.conversation_label,
         name="label_toggle"),
    path("t/<slug:tenant_slug>/inbox/<int:conversation_id>/read/", views.conversation_read, name="read"),
    path("t/<slug:tenant_slug>/inbox/<int:conversation_id>/unread/", views.conversation_unread, name="unread"),
    path("t/<slug:tenant_slug>/inbox/<int:conversation_id>/opt-in/", views.conversation_opt_in, name="opt_in"),
]
