"""The benchmarks' floor views, included under ``/_bench/`` by config/urls.py only when
``settings.PARLEY_BENCH_VIEWS`` is true."""

from django.contrib.auth.decorators import login_not_required
from django.urls import path

from . import floor_views

app_name = "bench"

urlpatterns = [
    path("bare/", floor_views.bare, name="bare"),
    path("hmac-insert/", floor_views.hmac_insert, name="hmac-insert"),
    path("bare-api/", login_not_required(floor_views.BareApi.as_view()), name="bare-api"),
]
