"""Inbound media: fetched from the provider into Django storage by a task, served only
through authenticated views."""

from __future__ import annotations

import hashlib
import mimetypes
from urllib.parse import urlsplit

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import transaction

from apps.conversations.models import Media
from apps.core.netsafety import UnsafeURL, check_public_url
from apps.providers.backends import get_backend
from apps.providers.exceptions import ProviderError, ProviderTransientError

MAX_MEDIA_BYTES = 100 * 1024 * 1024


def _trusted_hosts(media: Media) -> set[str]:
    """The number's own Graph API host (e.g. the emulator) is configured by an operator."""
    hosts = set(getattr(settings, "PARLEY_TRUSTED_MEDIA_HOSTS", ()))
    if media.phone_number and media.phone_number.graph_api_url:
        parts = urlsplit(media.phone_number.graph_api_url)
        hosts |= {parts.hostname or "", parts.netloc}
    return hosts


def media_fetch(*, tenant_id: int, media_id: int) -> str:
    media = Media.objects.for_tenant(tenant_id).select_related("phone_number").filter(pk=media_id).first()
    if media is None or media.status == Media.Status.READY:
        return "skipped"
    if media.phone_number is None:
        return _fail(media, "The number this file arrived on no longer exists.")
    backend = get_backend(media.phone_number)
    try:
        url = media.source_url
        if media.provider_media_id:
            info = backend.get_media_url(media.provider_media_id)
            url = info.get("url") or url
            media.mime_type = media.mime_type or info.get("mime_type", "")
        if not url:
            return _fail(media, "The provider gave no way to download this file.")
        check_public_url(url, allowed_hosts=_trusted_hosts(media))
        content, content_type = backend.download_media(url)
    except UnsafeURL as exc:
        return _fail(media, f"Refused to download from a private address: {exc}")
    except ProviderTransientError:
        raise  # the task retries with backoff
    except ProviderError as exc:
        return _fail(media, f"{exc.title or 'Download failed'}: {exc.explanation or exc}")
    if len(content) > MAX_MEDIA_BYTES:
        return _fail(media, "The file is larger than 100 MB.")
    mime_type = media.mime_type or content_type or "application/octet-stream"
    extension = mimetypes.guess_extension(mime_type.split(";")[0].strip()) or ""
    name = media.filename or f"{media.pk}{extension}"
    with transaction.atomic():
        media.file.save(name, ContentFile(content), save=False)
        media.mime_type = mime_type
        media.size = len(content)
        media.sha256 = media.sha256 or hashlib.sha256(content).hexdigest()
        media.status = Media.Status.READY
        media.error = ""
        media.save()
    return "ready"


def _fail(media: Media, reason: str) -> str:
    media.status = Media.Status.FAILED
    media.error = reason
    media.save(update_fields=["status", "error", "mime_type", "updated_at"])
    return "failed"
