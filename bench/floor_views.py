"""The floors the intake benchmark reports its figures against (design.md, "Targets"): what
this machine's Django, web server and database manage for a POST when Parley adds nothing.

* ``bare``: answers 200 "ok".
* ``hmac_insert``: checks ``X-Hub-Signature-256`` (HMAC-SHA256 of the raw body with a fixed
  secret) and INSERTs the raw body into the webhook events table -- the least a webhook intake
  must do before it may acknowledge.

The API benchmark's floor:

* ``bare_api``: a DRF view that authenticates nothing, parses the JSON body and answers 202
  with a small JSON body -- ``POST /api/v1/messages`` without the key, the throttle, the
  validation and the writes.

All go through the same middleware stack as ``/webhooks/meta/`` and ``/api/v1/``: the short
``MACHINE_MIDDLEWARE`` (apps/core/wsgi.py), ``/_bench/`` being one of the machine paths. Routed
under ``/_bench/`` only when ``settings.PARLEY_BENCH_VIEWS`` is true (the benchmarks set it).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.providers.models import WebhookEvent

# The app secret of the intake benchmark's number too, so one set of signed bodies serves the
# floor and the real endpoint.
FLOOR_SECRET = b"parley-bench-app-secret"


@csrf_exempt
@login_not_required
@require_http_methods(["GET", "POST"])
def bare(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok")


@csrf_exempt
@login_not_required
@require_http_methods(["POST"])
def hmac_insert(request: HttpRequest) -> HttpResponse:
    body = request.body
    given = request.headers.get("X-Hub-Signature-256", "").removeprefix("sha256=")
    expected = hmac.new(FLOOR_SECRET, body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, given):
        return HttpResponseForbidden("bad signature")
    # A random digest: the same bodies are posted many times, and the unique key must not refuse them.
    WebhookEvent.all_tenants.create(provider=WebhookEvent.Provider.META_CLOUD, body=body,
                                    body_sha256=secrets.token_hex(32))
    return HttpResponse("ok")


class BareApi(APIView):
    authentication_classes = ()
    permission_classes = ()
    throttle_classes = ()

    def post(self, request: Request) -> Response:
        return Response({"status": "queued", "fields": len(request.data)}, status=202)
