from __future__ import annotations

from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
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


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """404s under /api/ and /graph/ speak JSON like the rest of the API; pages get the HTML page."""
    if request.path.startswith("/api/"):
        return JsonResponse({"error": {"code": "not_found", "message": "Not found.", "details": {}}}, status=404)
    if request.path.startswith("/graph/"):
        return JsonResponse({"error": {"message": "Unsupported request: this path does not exist.",
                                       "type": "GraphMethodException", "code": 100}}, status=404)
    return render(request, "404.html", status=404)
