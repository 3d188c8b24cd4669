"""Gupshup Partner API, v3 (Meta-format) messaging (protocol.md B4).

Send: ``POST {GUPSHUP_PARTNER_API_URL}/partner/app/{provider_app_id}/v3/message`` with
``Authorization: <app_token>`` (no "Bearer") and Meta's JSON send body, built by the Meta
backend's builder (so ``biz_opaque_callback_data`` and reply ``context`` travel as on Meta).
The answer's ``messages[0].id`` is a Gupshup message id; later v3 statuses carry it as
``gs_id``. Mark as read goes to ``/partner/app/{app}/v1/event`` as
``{"type": "message-event", "message": <Meta read body>}``.

Errors come either as Meta's Graph envelope (``{"error": {...}}``, passed through from Meta)
or as Gupshup's ``{"status": "error", "message": …}``; both are read.

Not available (``UnsupportedFeature``): media id look-up (inbound media carry a URL) and
template creation from Meta's template body (``create_template`` takes Gupshup's own form
fields: ``elementName``, ``languageCode``, ``content``, ``category``, ``templateType``, …).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from django.conf import settings

from apps.providers.backends.base import (
    BaseBackend,
    ProviderRequest,
    dump_json,
    excerpt,
    http_status_error,
    parse_json,
)
from apps.providers.backends.gupshup import gupshup_error
from apps.providers.backends.meta_cloud import build_meta_message_body, meta_error, parse_meta_send_answer
from apps.providers.exceptions import ProviderError, ProviderPermanentError
from apps.providers.outbound import OutboundMessage, SendResult


def partner_error(provider: str, status_code: int, headers: Mapping[str, str], body: bytes) -> ProviderError:
    data = parse_json(body)
    if isinstance(data, dict) and isinstance(data.get("error"), dict):
        return meta_error(provider, status_code, headers, body)
    if isinstance(data, dict) and (data.get("message") or data.get("code") is not None):
        return gupshup_error(provider, status_code, headers, body)
    return http_status_error(provider, status_code, headers, body)


def _is_error_body(data: Any) -> bool:
    return isinstance(data, dict) and (
        isinstance(data.get("error"), dict) or str(data.get("status", "")).lower() == "error"
    )


class GupshupPartnerBackend(BaseBackend):
    provider_name = "gupshup_partner"

    @property
    def app_url(self) -> str:
        base = settings.GUPSHUP_PARTNER_API_URL.rstrip("/")
        return f"{base}/partner/app/{self.require('provider_app_id')}"

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": self.credential("app_token")}

    def json_headers(self) -> dict[str, str]:
        return {**self.auth_headers(), "Content-Type": "application/json"}

    # -- sending --------------------------------------------------------------------------

    def build_request(self, message: OutboundMessage) -> ProviderRequest:
        body = build_meta_message_body(message)
        if message.type == "mark_read":
            return ProviderRequest("POST", f"{self.app_url}/v1/event", self.json_headers(),
                                   json={"type": "message-event", "message": body})
        return ProviderRequest("POST", f"{self.app_url}/v3/message", self.json_headers(), json=body)

    def parse_send_response(
        self, status_code: int, headers: Mapping[str, str], body: bytes, request: ProviderRequest,
        message: OutboundMessage,
    ) -> SendResult:
        data = parse_json(body)
        if not 200 <= status_code < 300 or _is_error_body(data):
            raise partner_error(self.provider_name, status_code, headers, body)
        if message.type == "mark_read":
            if isinstance(data, dict) and (str(data.get("status", "")).lower() == "success"
                                           or data.get("success") is True):
                return SendResult("", None, None, data, status_code)
            raise ProviderPermanentError(
                f"{self.provider_name}: mark as read was not accepted", provider=self.provider_name,
                title="Not marked as read", explanation="Gupshup did not confirm marking the message as read.",
                status_code=status_code, response_excerpt=excerpt(body),
            )
        return parse_meta_send_answer(self.provider_name, status_code, headers, body, message)

    def error_from_answer(self, status_code: int, headers: Mapping[str, str], body: bytes) -> ProviderError:
        return partner_error(self.provider_name, status_code, headers, body)

    def _request_ok(self, request: ProviderRequest) -> dict[str, Any]:
        data = self.request_json(request)
        if not isinstance(data, dict) or _is_error_body(data):
            raise ProviderPermanentError(
                f"{self.provider_name}: unexpected answer from {request.url}", provider=self.provider_name,
                title="Unexpected answer", explanation="Gupshup answered without the expected data.",
                response_excerpt=dump_json(data)[:500],
            )
        return data

    # -- media ----------------------------------------------------------------------------

    def upload_media(self, *, content: bytes, mime_type: str, filename: str) -> str:
        request = ProviderRequest("POST", f"{self.app_url}/media", self.auth_headers(),
                                  data={"file_type": mime_type}, files={"file": (filename, content, mime_type)})
        data = self._request_ok(request)
        if not data.get("mediaId"):
            raise ProviderPermanentError(f"{self.provider_name}: upload answer has no mediaId",
                                         provider=self.provider_name, title="Upload failed",
                                         explanation="Gupshup's answer to the upload has no media id.",
                                         response_excerpt=dump_json(data)[:500])
        return str(data["mediaId"])

    def get_media_url(self, media_id: str) -> dict[str, Any]:
        raise self.unsupported("look up media ids",
                               "Gupshup callbacks carry a direct media URL; download that URL instead.")

    def download_media(self, url: str) -> tuple[bytes, str]:
        """Download a media URL from a Gupshup callback (no credentials are sent)."""
        return self.download(url, {})

    # -- templates ------------------------------------------------------------------------

    def list_templates(self) -> Iterator[dict[str, Any]]:
        """The app's templates in Gupshup's shape (one page; Gupshup does not paginate)."""
        data = self._request_ok(ProviderRequest("GET", f"{self.app_url}/templates", self.auth_headers()))
        for template in data.get("templates") or []:
            if isinstance(template, dict):
                yield template

    def create_template(self, payload: dict[str, Any]) -> dict[str, Any]:
        """Submit a template with Gupshup's own form fields (``elementName``, ``languageCode``,
        ``content``, ``category``, ``templateType``, ``vertical``, ``example`` …)."""
        if "elementName" not in payload:
            raise self.unsupported(
                "create a template from Meta's template body",
                "Pass Gupshup's template fields (elementName, languageCode, content, category, "
                "templateType, vertical, example, …).",
            )
        form = {key: value if isinstance(value, str) else dump_json(value) for key, value in payload.items()}
        headers = {**self.auth_headers(), "Content-Type": "application/x-www-form-urlencoded"}
        return self._request_ok(ProviderRequest("POST", f"{self.app_url}/templates", headers, data=form))

    # -- health ---------------------------------------------------------------------------

    def check_connection(self) -> dict[str, Any]:
        """Read the app's wallet balance: a cheap call that proves the app id and token."""
        return self._request_ok(ProviderRequest("GET", f"{self.app_url}/wallet/balance", self.auth_headers()))
