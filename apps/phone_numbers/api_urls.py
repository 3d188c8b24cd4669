from django.urls import path

from . import apis

urlpatterns = [
    path("phone-numbers", apis.PhoneNumberListApi.as_view(), name="api-phone-numbers"),
    path("phone-numbers/<int:phone_number_id>", apis.PhoneNumberDetailApi.as_view(), name="api-phone-number"),
    path("phone-numbers/<int:phone_number_id>/status", apis.PhoneNumberStatusApi.as_view(),
         name="api-phone-number-status"),
]
