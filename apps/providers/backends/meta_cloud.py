"""Meta WhatsApp Cloud API.

Send: ``POST {graph_api_url}/{version}/{phone_number_id}/messages`` with
``Authorization: Bearer <access_token>`` and the JSON body of protocol.md A2. The body builder and
the answer/error parsers here are shared with the Gupshup Partner v3 backend, whose send API
takes Meta's body unchanged.

Body normalisation: every send carries ``messaging_product: "whatsapp"``,
``recipient_type: "individual"``, ``to`` and ``type`` (Meta's own examples sometimes omit
``recipient_type`` or ``type``; both are their defaults), then the type object exactly as given
in ``OutboundMessage.content``, ``context: {message_id}`` for replies and
``biz_opaque_callback_data`` (the Parley message id) when set. ``mark_read`` sends
``{"messaging_product", "status": "read", "message_id"[, "typing_indicator": {"type": "text"}]}``.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from dataclasses import replace
from typing import Any
from urllib.parse import urlencode

from django.conf import settings

from apps.providers.backends.base import (
    BaseBackend,
    ProviderRequest,
    build_provider_error,
    excerpt,
    http_status_error,
    int_or_none,
    parse_json,
    unreadable_success,
)
from apps.providers.errors import explain
from apps.providers.exceptions import ProviderError, ProviderPermanentError
from apps.providers.outbound import OutboundMessage, SendResult

PHONE_NUMBER_FIELDS = (
    "display_phone_number",
    "verified_name",
    "quality_rating",
    "throughput",
    "name_status",
    "whatsapp_business_manager_messaging_limit",
)
TEMPLATE_PAGE_SIZE = 100


def build_meta_message_body(message: OutboundMessage) -> dict[str, Any]:
    """The Cloud API send body for ``message`` (protocol.md A2)."""
    content = copy.deepcopy(message.content)
    if message.type == "mark_read" and isinstance(content, dict):
        body: dict[str, Any] = {
            "messaging_product": "whatsapp",
            "status": "read",
            "message_id": content["message_id"],
        }
        indicator = content.get("typing_indicator")
        if isinstance(indicator, dict):
            body["typing_indicator"] = indicator
        elif indicator:
            body["typing_indicator"] = {"type": "text"}
        return body
    body = {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": message.to,
        "type": message.type,
        message.type: content,
    }
    if message.reply_to:
        body["context"] = {"message_id": message.reply_to}
    if message.callback_data:
        body["biz_opaque_callback_data"] = message.callback_data
    return body


def meta_error(provider: str, status_code: int, headers: Mapping[str, str], body: bytes) -> ProviderError:
    """A Graph API error envelope (``{"error": {code, error_subcode, error_data, …}}``) as a
    ProviderError; without an envelope, judge by the HTTP status."""
    data = parse_json(body)
    envelope = data.get("error") if isinstance(data, dict) else None
    if not isinstance(envelope, dict):
        return http_status_error(provider, status_code, headers, body)
    code = int_or_none(envelope.get("code"))
    explained = explain(provider, code)
    message = str(envelope.get("message") or "")
    if not explained.known:
        explained = replace(explained, title=str(envelope.get("error_user_title") or message or explained.title))
    error_data = envelope.get("error_data")
    details = ""
    if isinstance(error_data, dict) and error_data.get("details"):
        details = str(error_data["details"])
    elif envelope.get("error_user_msg"):
        details = str(envelope["error_user_msg"])
    is_transient = envelope.get("is_transient")
    return build_provider_error(
        explained,
        status_code=status_code,
        headers=headers,
        body=body,
        transient=is_transient if isinstance(is_transient, bool) else None,
        details=details,
        error_subcode=int_or_none(envelope.get("error_subcode")),
        fbtrace_id=str(envelope.get("fbtrace_id") or ""),
        provider_message=message,
    )


def parse_meta_send_answer(
    provider: str, status_code: int, headers: Mapping[str, str], body: bytes, message: OutboundMessage
) -> SendResult:
    """Parse a Cloud-API-shaped send answer (protocol.md A3/A4)."""
    data = parse_json(body)
    if not 200 <= status_code < 300 or (isinstance(data, dict) and isinstance(data.get("error"), dict)):
        raise meta_error(provider, status_code, headers, body)
    if not isinstance(data, dict):
        raise unreadable_success(provider, status_code, body)
    if message.type == "mark_read":
        if data.get("success") is False:
            raise ProviderPermanentError(
                f"{provider}: mark as read was not accepted", provider=provider, title="Not marked as read",
                explanation="The provider did not mark the message as read.", status_code=status_code,
                response_excerpt=excerpt(body),
            )
        return SendResult("", None, None, data, status_code)
    messages = data.get("messages")
    first = messages[0] if isinstance(messages, list) and messages and isinstance(messages[0], dict) else {}
    if not first.get("id"):
        raise unreadable_success(provider, status_code, body)
    contacts = data.get("contacts")
    contact = contacts[0] if isinstance(contacts, list) and contacts and isinstance(contacts[0], dict) else {}
    wa_id = contact.get("wa_id")
    status = first.get("message_status")
    return SendResult(
        provider_message_id=str(first["id"]),
        wa_id=str(wa_id).strip() if wa_id else None,
        message_status=str(status) if status else None,
        raw=data,
        status_code=status_code,
    )


class MetaCloudBackend(BaseBackend):
    provider_name = "meta_cloud"

    # -- addresses ------------------------------------------------------------------------

    @property
    def graph_url(self) -> str:
        base = (self.phone_number.graph_api_url or settings.META_GRAPH_API_URL).rstrip("/")
        return f"{base}/{settings.META_GRAPH_API_VERSION}"

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.credential('access_token')}"}

    def json_headers(self) -> dict[str, str]:
        return {**self.auth_headers(), "Content-Type": "application/json"}

    # -- sending --------------------------------------------------------------------------

    def build_request(self, message: OutboundMessage) -> ProviderRequest:
        url = f"{self.graph_url}/{self.require('phone_number_id')}/messages"
        return ProviderRequest("POST", url, self.json_headers(), json=build_meta_message_body(message))

    def parse_send_response(
        self, status_code: int, headers: Mapping[str, str], body: bytes, request: ProviderRequest,
        message: OutboundMessage,
    ) -> SendResult:
        return parse_meta_send_answer(self.provider_name, status_code, headers, body, message)

    def error_from_answer(self, status_code: int, headers: Mapping[str, str], body: bytes) -> ProviderError:
        return meta_error(self.provider_name, status_code, headers, body)

    # -- media (protocol.md A7) -----------------------------------------------------------

    def upload_media(self, *, content: bytes, mime_type: str, filename: str) -> str:
        request = ProviderRequest(
            "POST",
            f"{self.graph_url}/{self.require('phone_number_id')}/media",
            self.auth_headers(),
            data={"messaging_product": "whatsapp", "type": mime_type},
            files={"file": (filename, content, mime_type)},
        )
        data = self.request_json(request)
        if not isinstance(data, dict) or not data.get("id"):
            raise ProviderPermanentError(f"{self.provider_name}: upload answer has no media id",
                                         provider=self.provider_name, title="Upload failed",
                                         explanation="Meta's answer to the upload has no media id.",
                                         response_excerpt=str(data)[:500])
        return str(data["id"])

    def get_media_url(self, media_id: str) -> dict[str, Any]:
        query = f"?{urlencode({'phone_number_id': self.phone_number.phone_number_id})}" \
            if self.phone_number.phone_number_id else ""
        data = self.request_json(ProviderRequest("GET", f"{self.graph_url}/{media_id}{query}", self.auth_headers()))
        if not isinstance(data, dict) or not data.get("url"):
            raise ProviderPermanentError(f"{self.provider_name}: media {media_id} has no URL",
                                         provider=self.provider_name, title="Media not found",
                                         explanation="Meta returned no download URL for this media id.",
                                         response_excerpt=str(data)[:500])
        size = int_or_none(data.get("file_size"))
        return {
            "id": str(data.get("id") or media_id),
            "url": str(data["url"]),
            "mime_type": str(data.get("mime_type") or ""),
            "sha256": str(data.get("sha256") or ""),
            "file_size": size,
        }

    def download_media(self, url: str) -> tuple[bytes, str]:
        """Download a URL from ``get_media_url`` (it expires after 5 minutes; 404 means fetch a new
        one). The access token is sent, so only pass URLs that came from Meta."""
        return self.download(url, self.auth_headers())

    # -- templates (protocol.md A8) -------------------------------------------------------

    def list_templates(self) -> Iterator[dict[str, Any]]:
        """Every template of the number's WABA, following ``paging.next`` links."""
        url: str | None = (f"{self.graph_url}/{self.require('waba_id')}/message_templates?"
                           f"{urlencode({'limit': TEMPLATE_PAGE_SIZE})}")
        seen: set[str] = set()
        while url and url not in seen:
            seen.add(url)
            data = self.request_json(ProviderRequest("GET", url, self.auth_headers()))
            if not isinstance(data, dict):
                return
            for template in data.get("data") or []:
                if isinstance(template, dict):
                    yield template
            paging = data.get("paging")
            url = paging.get("next") if isinstance(paging, dict) else None

    def create_template(self, payload: dict[str, Any]) -> dict[str, Any]:
        """POST Meta's template body (name, category, language, parameter_format, components);
        answers ``{"id", "status", "category"}``."""
        url = f"{self.graph_url}/{self.require('waba_id')}/message_templates"
        data = self.request_json(ProviderRequest("POST", url, self.json_headers(), json=payload))
        return data if isinstance(data, dict) else {"result": data}

    def delete_template(self, *, name: str, template_id: str = "") -> dict[str, Any]:
        """``DELETE /<WABA_ID>/message_templates?name=…[&hsm_id=…]``: by name deletes every
        language of the template; with ``hsm_id`` only that one. Answers ``{"success": true}``."""
        query = {"name": name, **({"hsm_id": template_id} if template_id else {})}
        url = f"{self.graph_url}/{self.require('waba_id')}/message_templates?{urlencode(query)}"
        data = self.request_json(ProviderRequest("DELETE", url, self.auth_headers()))
        return data if isinstance(data, dict) else {"result": data}

    # -- health ---------------------------------------------------------------------------

    def check_connection(self) -> dict[str, Any]:
        """Read the number from the Graph API: proves the token and id, and returns quality,
        throughput and messaging limit."""
        url = (f"{self.graph_url}/{self.require('phone_number_id')}?"
               f"{urlencode({'fields': ','.join(PHONE_NUMBER_FIELDS)})}")
        data = self.request_json(ProviderRequest("GET", url, self.auth_headers()))
        return data if isinstance(data, dict) else {"result": data}
