from __future__ import annotations

from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from .health import check_broker, check_database


@login_not_required
@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    database = check_database()
    broker = check_broker()
    ok = database["ok"] and broker["ok"]
    return JsonResponse({"status": "ok" if ok else "unavailable", "database": database, "broker": broker},
                        status=200 if ok else 503)
