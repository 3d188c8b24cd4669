from django.urls import path

from . import apis

urlpatterns = [
    path("contacts", apis.ContactListCreateApi.as_view(), name="api-contacts"),
    path("contacts/bulk", apis.ContactBulkUpsertApi.as_view(), name="api-contacts-bulk"),
    path("contacts/<int:contact_id>", apis.ContactDetailApi.as_view(), name="api-contact"),
]
