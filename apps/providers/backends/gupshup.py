"""Gupshup's classic WhatsApp API (protocol.md B1, B2).

Session messages: form-encoded ``POST {GUPSHUP_API_URL}/wa/api/v1/msg`` with header
``apikey: <api_key>`` and fields ``channel=whatsapp``, ``source`` (the number's display number),
``src.name`` (the Gupshup app name, ``provider_app_id``), ``destination`` and ``message`` (a JSON
string in Gupshup's own shapes, translated here from Meta's type objects). Templates:
``POST {GUPSHUP_API_URL}/wa/api/v1/template/msg`` with ``template={"id", "params"}`` (the
Gupshup template id and the variable values in placeholder order), ``message`` for a media
header and ``postbackTexts`` for quick-reply payloads. Answers are
``{"status": "submitted", "messageId": …}`` or ``{"status": "error", "message": …}``.

Not available through this API (``UnsupportedFeature``): reactions, mark as read, interactive
``cta_url``/``flow``/catalog/product messages, template buttons other than quick reply and
URL, more than one contact card per message, captions on audio and stickers, a footer on a
quick reply with a media header, templates sent as replies, media upload, media id look-up and
template creation. ``callback_data`` has no Gupshup field; Gupshup messages are matched by the
returned ``messageId``. Field names marked UNCONFIRMED in protocol.md (location, contact, list
``items[].title``/``footer``, reply ``context``) follow the best available source.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import replace
from posixpath import basename
from typing import Any
from urllib.parse import quote, urlparse

from django.conf import settings

from apps.providers.backends.base import (
    BaseBackend,
    ProviderRequest,
    build_provider_error,
    dump_json,
    http_status_error,
    int_or_none,
    parse_json,
    unreadable_success,
)
from apps.providers.errors import explain, explain_gupshup_message
from apps.providers.exceptions import ProviderError, ProviderPermanentError
from apps.providers.outbound import MEDIA_TYPES, OutboundMessage, SendResult

FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
GUPSHUP_MEDIA_TYPE = {"image": "image", "video": "video", "audio": "audio", "sticker": "sticker", "document": "file"}
CAPTIONED = frozenset({"image", "video", "document"})


def _digits(number: str) -> str:
    return number.strip().lstrip("+")


def gupshup_error(provider: str, status_code: int, headers: Mapping[str, str], body: bytes) -> ProviderError:
    """``{"status": "error", "message": …[, "code": …]}`` as a ProviderError."""
    data = parse_json(body)
    if not isinstance(data, dict):
        return http_status_error(provider, status_code, headers, body)
    message: Any = data.get("message")
    code = int_or_none(data.get("code"))
    if isinstance(message, dict):
        code = code if code is not None else int_or_none(message.get("code"))
        message = message.get("message") or message.get("reason") or ""
    message = str(message or data.get("reason") or "")
    if code is not None:
        explained = explain(provider, code)
        if not explained.known and message:
            explained = explain_gupshup_message(provider, message)
            explained = replace(explained, code=code)
    elif message:
        explained = explain_gupshup_message(provider, message)
    else:
        return http_status_error(provider, status_code, headers, body)
    return build_provider_error(explained, status_code=status_code, headers=headers, body=body,
                                details="" if explained.known else message, provider_message=message)


class GupshupBackend(BaseBackend):
    provider_name = "gupshup"

    @property
    def api_url(self) -> str:
        return settings.GUPSHUP_API_URL.rstrip("/")

    def form_headers(self) -> dict[str, str]:
        return {"apikey": self.credential("api_key"), "Content-Type": FORM_CONTENT_TYPE}

    def _common_fields(self, message: OutboundMessage) -> dict[str, str]:
        return {
            "channel": "whatsapp",
            "source": _digits(self.require("display_number")),
            "destination": _digits(message.to),
            "src.name": self.require("provider_app_id"),
        }

    # -- sending --------------------------------------------------------------------------

    def build_request(self, message: OutboundMessage) -> ProviderRequest:
        headers = self.form_headers()
        try:
            if message.type == "template":
                fields = self._template_fields(message)
                url = f"{self.api_url}/wa/api/v1/template/msg"
            else:
                payload, extra = self._session_message(message)
                if message.reply_to:
                    payload = {"context": {"msgId": message.reply_to}, **payload}
                fields = {"message": dump_json(payload), **extra}
                url = f"{self.api_url}/wa/api/v1/msg"
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ProviderPermanentError(
                f"{self.provider_name}: {message.type} content is not a valid Meta {message.type} object "
                f"({type(exc).__name__}: {exc})",
                provider=self.provider_name,
                title="Invalid message content",
                explanation=f"The {message.type} message is missing a field or has a wrong value, so it "
                            "cannot be translated for Gupshup.",
                details=f"{type(exc).__name__}: {exc}",
            ) from exc
        return ProviderRequest("POST", url, headers, data={**self._common_fields(message), **fields})

    def parse_send_response(
        self, status_code: int, headers: Mapping[str, str], body: bytes, request: ProviderRequest,
        message: OutboundMessage,
    ) -> SendResult:
        data = parse_json(body)
        ok = 200 <= status_code < 300
        if ok and isinstance(data, dict) and str(data.get("status", "")).lower() == "submitted" \
                and data.get("messageId"):
            return SendResult(str(data["messageId"]), None, "submitted", data, status_code)
        if ok and not (isinstance(data, dict) and str(data.get("status", "")).lower() == "error"):
            raise unreadable_success(self.provider_name, status_code, body)
        raise gupshup_error(self.provider_name, status_code, headers, body)

    def error_from_answer(self, status_code: int, headers: Mapping[str, str], body: bytes) -> ProviderError:
        return gupshup_error(self.provider_name, status_code, headers, body)

    # -- session message translation (Meta type object -> Gupshup message JSON) -----------

    def _session_message(self, message: OutboundMessage) -> tuple[dict[str, Any], dict[str, str]]:
        content = message.content
        if message.type == "text" and isinstance(content, dict):
            preview = bool(content.get("preview_url"))
            return {"type": "text", "text": content["body"]}, {"disablePreview": "false" if preview else "true"}
        if message.type in MEDIA_TYPES and isinstance(content, dict):
            return self._media(message.type, content), {}
        if message.type == "location" and isinstance(content, dict):
            location: dict[str, Any] = {"type": "location"}
            for key in ("longitude", "latitude", "name", "address"):
                if key in content:
                    location[key] = content[key]
            return location, {}
        if message.type == "contacts" and isinstance(content, list):
            if len(content) != 1:
                raise self.unsupported("send more than one contact card in one message",
                                       "Send one contacts message per card.")
            return {"type": "contact", "contact": content[0]}, {}
        if message.type == "interactive" and isinstance(content, dict):
            return self._interactive(content, message), {}
        if message.type == "reaction":
            raise self.unsupported("send reactions through its classic API",
                                   "Use the Gupshup Partner (v3) or Meta Cloud API provider for reactions.")
        if message.type == "mark_read":
            raise self.unsupported("mark messages as read through its classic API",
                                   "Use the Gupshup Partner (v3) or Meta Cloud API provider.")
        raise self.unsupported(f"send {message.type} messages through its classic API")

    def _media(self, media_type: str, media: dict[str, Any]) -> dict[str, Any]:
        gupshup_type = GUPSHUP_MEDIA_TYPE[media_type]
        out: dict[str, Any] = {"type": gupshup_type}
        link, media_id = media.get("link"), media.get("id")
        if link:
            if media_type == "image":
                out["originalUrl"] = link
                out["previewUrl"] = link
            else:
                out["url"] = link
        elif media_id:
            out["id"] = media_id
        else:
            raise self.unsupported(f"send {media_type} without a link or media id")
        if media_type == "document":
            out["filename"] = media.get("filename") or self._filename_from(link) or "document"
        if media.get("caption"):
            if media_type not in CAPTIONED:
                raise self.unsupported(f"put a caption on {media_type} messages",
                                       "Only image, video and document messages have captions.")
            out["caption"] = media["caption"]
        return out

    @staticmethod
    def _filename_from(link: Any) -> str:
        if not isinstance(link, str):
            return ""
        return basename(urlparse(link).path)

    def _interactive(self, interactive: dict[str, Any], message: OutboundMessage) -> dict[str, Any]:
        kind = interactive.get("type")
        body_text = (interactive.get("body") or {}).get("text", "")
        footer_text = (interactive.get("footer") or {}).get("text")
        header = interactive.get("header") or None
        action = interactive.get("action") or {}
        if kind == "button":
            content = self._quick_reply_content(header, body_text, footer_text)
            options = [
                {"title": button["reply"]["title"], "postbackText": button["reply"]["id"]}
                for button in action.get("buttons", [])
            ]
            out: dict[str, Any] = {"type": "quick_reply"}
            if message.callback_data:
                out["msgid"] = message.callback_data
            out["content"] = content
            out["options"] = options
            return out
        if kind == "list":
            if header and header.get("type", "text") != "text":
                raise self.unsupported("send a list message with a media header")
            out = {"type": "list", "title": (header or {}).get("text", ""), "body": body_text}
            if footer_text:
                out["footer"] = footer_text
            if message.callback_data:
                out["msgid"] = message.callback_data
            out["globalButtons"] = [{"type": "text", "title": action.get("button", "")}]
            items = []
            for section in action.get("sections", []):
                item: dict[str, Any] = {}
                if section.get("title"):
                    item["title"] = section["title"]
                item["options"] = [self._list_option(row) for row in section.get("rows", [])]
                items.append(item)
            out["items"] = items
            return out
        raise self.unsupported(
            f"send interactive {kind!r} messages through its classic API",
            "It supports reply buttons (quick_reply) and lists; use the Gupshup Partner (v3) or Meta Cloud "
            "API provider for call-to-action URL, flow, product and catalog messages.",
        )

    @staticmethod
    def _list_option(row: dict[str, Any]) -> dict[str, Any]:
        option: dict[str, Any] = {"type": "text", "title": row["title"]}
        if row.get("description"):
            option["description"] = row["description"]
        option["postbackText"] = row["id"]
        return option

    def _quick_reply_content(self, header: dict[str, Any] | None, body_text: str,
                             footer_text: str | None) -> dict[str, Any]:
        header_type = (header or {}).get("type", "text")
        if header is None or header_type == "text":
            content: dict[str, Any] = {"type": "text"}
            if header and header.get("text"):
                content["header"] = header["text"]
            content["text"] = body_text
            if footer_text:
                content["caption"] = footer_text
            return content
        if header_type not in ("image", "video", "document"):
            raise self.unsupported(f"send reply buttons with a {header_type} header")
        if footer_text:
            raise self.unsupported("send reply buttons with both a media header and a footer",
                                   "Drop the footer or use a text header.")
        media = header.get(header_type) or {}
        if not media.get("link"):
            raise self.unsupported("send reply buttons whose media header is a media id",
                                   "Use a public link for the header media.")
        content = {"type": GUPSHUP_MEDIA_TYPE[header_type], "url": media["link"]}
        if header_type == "document":
            content["filename"] = media.get("filename") or self._filename_from(media["link"]) or "document"
        content["caption"] = body_text
        return content

    # -- templates (protocol.md B2) -------------------------------------------------------

    def _template_fields(self, message: OutboundMessage) -> dict[str, str]:
        """Meta's template object as Gupshup's ``template``/``message``/``postbackTexts`` fields.

        ``params`` are the values in order of appearance: header text, body, then URL-button
        variables. With named parameters the values are taken in the order given, which must
        be the placeholders' order in the template.
        """
        if message.reply_to:
            raise self.unsupported("send a template as a reply")
        if not message.provider_template_id:
            name = message.content.get("name", "") if isinstance(message.content, dict) else ""
            raise self.configuration_error(
                f"the template {name!r} has no Gupshup template id (sync templates from Gupshup)"
            )
        content = message.content if isinstance(message.content, dict) else {}
        params: list[str] = []
        header_message: dict[str, Any] | None = None
        postbacks: list[dict[str, Any]] = []
        for component in content.get("components") or []:
            component_type = str(component.get("type", "")).lower()
            parameters = component.get("parameters") or []
            if component_type == "header":
                for parameter in parameters:
                    kind = parameter.get("type")
                    if kind in ("image", "video", "document"):
                        header_message = {"type": kind, kind: self._template_media(parameter[kind])}
                    elif kind == "location":
                        header_message = {"type": "location", "location": dict(parameter["location"])}
                    else:
                        params.append(self._param_value(parameter))
            elif component_type == "body":
                params.extend(self._param_value(parameter) for parameter in parameters)
            elif component_type == "button":
                sub_type = str(component.get("sub_type", "")).lower()
                if sub_type == "quick_reply":
                    index = int(component.get("index", 0))
                    for parameter in parameters:
                        text = parameter.get("payload") if parameter.get("type") == "payload" else parameter.get("text")
                        postbacks.append({"index": index, "text": str(text)})
                elif sub_type == "url":
                    params.extend(self._param_value(parameter) for parameter in parameters)
                else:
                    raise self.unsupported(f"fill template buttons of type {sub_type!r} through its classic API",
                                           "Quick-reply payloads and URL variables are supported.")
            else:
                raise self.unsupported(f"fill a template component of type {component_type!r}")
        fields = {"template": dump_json({"id": message.provider_template_id, "params": params})}
        if header_message is not None:
            fields["message"] = dump_json(header_message)
        if postbacks:
            fields["postbackTexts"] = dump_json(postbacks)
        return fields

    def _template_media(self, media: dict[str, Any]) -> dict[str, Any]:
        if media.get("link"):
            return {"link": media["link"]}
        if media.get("id"):
            return {"id": media["id"]}
        raise self.unsupported("send a template media header without a link or media id")

    def _param_value(self, parameter: dict[str, Any]) -> str:
        kind = parameter.get("type", "text")
        if kind == "text":
            return str(parameter.get("text", ""))
        if kind in ("currency", "date_time"):
            return str((parameter.get(kind) or {}).get("fallback_value", ""))
        raise self.unsupported(f"fill a template parameter of type {kind!r} through its classic API")

    # -- management -----------------------------------------------------------------------

    def _template_list(self) -> list[dict[str, Any]]:
        url = f"{self.api_url}/sm/api/v1/template/list/{quote(self.require('provider_app_id'), safe='')}"
        request = ProviderRequest("GET", url, {"apikey": self.credential("api_key")})
        answer = self.perform(request)
        data = answer.json()
        if not 200 <= answer.status_code < 300 or not isinstance(data, dict) \
                or str(data.get("status", "")).lower() != "success":
            raise gupshup_error(self.provider_name, answer.status_code, answer.headers, answer.body)
        return [t for t in data.get("templates") or [] if isinstance(t, dict)]

    def list_templates(self) -> Iterator[dict[str, Any]]:
        """The app's templates in Gupshup's shape (``id``, ``elementName``, ``languageCode``,
        ``status``, ``category``, ``data`` …); one page, Gupshup does not paginate."""
        yield from self._template_list()

    def check_connection(self) -> dict[str, Any]:
        templates = self._template_list()
        return {"provider": self.provider_name, "app": self.phone_number.provider_app_id,
                "template_count": len(templates)}

    def upload_media(self, *, content: bytes, mime_type: str, filename: str) -> str:
        raise self.unsupported("upload media through its classic API",
                               "Send media by public link instead, or use the Gupshup Partner (v3) provider.")

    def get_media_url(self, media_id: str) -> dict[str, Any]:
        raise self.unsupported("look up media ids",
                               "Gupshup callbacks carry a direct media URL; download that URL instead.")

    def download_media(self, url: str) -> tuple[bytes, str]:
        """Download a media URL from a Gupshup callback (no credentials are sent)."""
        return self.download(url, {})

    def create_template(self, payload: dict[str, Any]) -> dict[str, Any]:
        raise self.unsupported("create templates through its classic API",
                               "Create them in the Gupshup console (or with the Gupshup Partner provider), "
                               "then sync templates.")
