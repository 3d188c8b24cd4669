"""Provider webhook endpoints. Each POST: verify, store the raw body, answer 200 -- nothing
else on the request path (anymail's webhook view shape). Processing happens in a task."""

from __future__ import annotations

import json
import logging

from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, HttpResponseForbidden
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.csrf import csrf_exempt

from apps.phone_numbers.models import PhoneNumber

from .models import WebhookEvent
from .services import gupshup_route_for, meta_routes_for, meta_signature_valid, webhook_event_record

logger = logging.getLogger(__name__)


def _json_object(body: bytes) -> dict | None:
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    return payload if isinstance(payload, dict) else None


@method_decorator([csrf_exempt, login_not_required], name="dispatch")
class MetaWebhookView(View):
    http_method_names = ["get", "post"]

    def get(self, request: HttpRequest) -> HttpResponse:
        """Meta's subscription handshake: echo hub.challenge when the verify token is a number's."""
        mode = request.GET.get("hub.mode")
        token = request.GET.get("hub.verify_token", "")
        challenge = request.GET.get("hub.challenge", "")
        known = bool(token) and PhoneNumber.all_tenants.filter(
            provider=PhoneNumber.Provider.META_CLOUD, verify_token=token).exists()
        if mode != "subscribe" or not known:
            return HttpResponseForbidden("verification failed")
        return HttpResponse(challenge, content_type="text/plain")

    def post(self, request: HttpRequest) -> HttpResponse:
        body = request.body
        payload = _json_object(body)
        if payload is None:
            return HttpResponseBadRequest("body must be a JSON object")
        routes = meta_routes_for(payload)
        if not routes:
            # Acknowledge, or Meta retries for days; nothing unauthenticated is stored.
            logger.warning("Meta webhook for unknown number(s); acknowledged and dropped")
            return HttpResponse("ok")
        route = meta_signature_valid(body=body, header=request.headers.get("X-Hub-Signature-256", ""), routes=routes)
        if route is None:
            return HttpResponseForbidden("bad signature")
        webhook_event_record(provider=WebhookEvent.Provider.META_CLOUD, body=body, headers=request.headers, route=route)
        return HttpResponse("ok")


@method_decorator([csrf_exempt, login_not_required], name="dispatch")
class GupshupWebhookView(View):
    """Gupshup signs nothing: the secret token in the callback URL identifies the number."""

    http_method_names = ["post"]
    provider = PhoneNumber.Provider.GUPSHUP

    def post(self, request: HttpRequest, token: str) -> HttpResponse:
        route = gupshup_route_for(self.provider, token)
        if route is None:
            return HttpResponseForbidden("unknown callback token")
        body = request.body
        if _json_object(body) is None:
            return HttpResponseBadRequest("body must be a JSON object")
        webhook_event_record(provider=self.provider, body=body, headers=request.headers, route=route)
        return HttpResponse("ok")


class GupshupPartnerWebhookView(GupshupWebhookView):
    provider = PhoneNumber.Provider.GUPSHUP_PARTNER
