from django.urls import path

from . import views

app_name = "tenants"

S = "t/<slug:tenant_slug>/settings/"

urlpatterns = [
    path("", views.home, name="home"),
    path("tenants/", views.tenant_picker, name="picker"),
    path("invitations/<str:token>/", views.invitation, name="invitation"),
    path("t/<slug:tenant_slug>/", views.tenant_root, name="root"),
    path(S, views.settings_overview, name="settings"),
    path(S + "team/", views.team, name="team"),
    path(S + "team/members/<int:membership_id>/role/", views.member_role, name="member_role"),
    path(S + "team/members/<int:membership_id>/remove/", views.member_remove, name="member_remove"),
    path(S + "team/members/<int:membership_id>/transfer/", views.member_transfer, name="member_transfer"),
    path(S + "team/invitations/<int:invitation_id>/withdraw/", views.invitation_withdraw,
         name="invitation_withdraw"),
    path(S + "api-keys/", views.api_keys, name="api_keys"),
    path(S + "api-keys/<int:api_key_id>/revoke/", views.api_key_revoke_view, name="api_key_revoke"),
]
