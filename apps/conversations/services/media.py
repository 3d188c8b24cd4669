"""Media: inbound files fetched from the provider into Django storage by a task; uploaded
files stored here and forwarded to the provider only when a message uses them. Served only
through authenticated views."""

from __future__ import annotations

import hashlib
import mimetypes
import os
import re
from datetime import timedelta
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import transaction
from django.utils import timezone

from apps.conversations.models import Media, Message
from apps.core.exceptions import ApplicationError
from apps.core.netsafety import UnsafeURL, check_public_url
from apps.providers.backends import get_backend
from apps.providers.exceptions import ProviderError, ProviderPermanentError, ProviderTransientError
from apps.tenants.models import Tenant

if TYPE_CHECKING:
    from apps.phone_numbers.models import PhoneNumber
    from apps.providers.backends.base import BaseBackend

MAX_MEDIA_BYTES = 100 * 1024 * 1024
KB = 1024
MB = 1024 * 1024

# WhatsApp's accepted types and size limits per message type (protocol.md A7). A document may
# carry any file, so its own list only decides which uploads are accepted.
MEDIA_KINDS: dict[str, dict[str, Any]] = {
    "image": {"max_bytes": 5 * MB, "mime_types": {"image/jpeg", "image/png"}},
    "sticker": {"max_bytes": 500 * KB, "mime_types": {"image/webp"}},
    "video": {"max_bytes": 16 * MB, "mime_types": {"video/mp4", "video/3gpp"}},
    "audio": {"max_bytes": 16 * MB,
              "mime_types": {"audio/aac", "audio/amr", "audio/mpeg", "audio/mp4", "audio/ogg"}},
    "document": {"max_bytes": 100 * MB, "mime_types": {
        "text/plain", "application/pdf", "application/msword",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "application/vnd.ms-excel", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "application/vnd.ms-powerpoint",
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    }},
}
# Leading bytes of the formats that are easy to recognise; a file declared as one of them must
# start with them, so a mislabelled upload is refused here rather than by the provider later.
MAGIC_BYTES: dict[str, tuple[bytes, ...]] = {
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "application/pdf": (b"%PDF-",),
}
# Uploaded media ids live 30 days at the provider (A7); stop reusing one a day before.
PROVIDER_MEDIA_TTL = timedelta(days=30)
PROVIDER_MEDIA_REUSE_MARGIN = timedelta(days=1)


def normalize_mime_type(value: str | None) -> str:
    return (value or "").split(";")[0].strip().lower()


def media_kind(mime_type: str) -> str | None:
    """The WhatsApp message type an upload of ``mime_type`` is meant for, or None."""
    mime_type = normalize_mime_type(mime_type)
    return next((kind for kind, spec in MEDIA_KINDS.items() if mime_type in spec["mime_types"]), None)


def _storage_name(filename: str, mime_type: str) -> str:
    """A safe file name for storage (the original stays in ``Media.filename``)."""
    safe = re.sub(r"(?u)[^-\w.]", "", filename.replace(" ", "_")).strip("._-")[:100]
    if re.search(r"(?u)\w", safe):
        return safe
    return f"upload{mimetypes.guess_extension(mime_type) or ''}"


def _article(word: str) -> str:
    return "An" if word[:1] in "aeiou" else "A"


def _human_size(size: int) -> str:
    return f"{size // MB} MB" if size >= MB else f"{size // KB} KB"


def _looks_like(mime_type: str, head: bytes) -> bool:
    if mime_type == "image/webp":
        return head[:4] == b"RIFF" and head[8:12] == b"WEBP"
    signatures = MAGIC_BYTES.get(mime_type)
    return signatures is None or head.startswith(signatures)


@transaction.atomic
def media_upload(*, tenant: Tenant, file: IO[bytes], filename: str, mime_type: str | None,
                 phone_number: PhoneNumber | None = None) -> Media:
    """Store an uploaded file for later messages. The provider sees it only when a message
    uses it (``media_provider_id``)."""
    filename = os.path.basename((filename or "").replace("\\", "/")).strip()[:255]
    declared = normalize_mime_type(mime_type)
    if not declared or declared == "application/octet-stream":
        declared = normalize_mime_type(mimetypes.guess_type(filename)[0]) if filename else ""
    kind = media_kind(declared)
    if kind is None:
        accepted = sorted(set().union(*(spec["mime_types"] for spec in MEDIA_KINDS.values())))
        raise ApplicationError(
            f"WhatsApp does not accept files of type {declared or 'unknown'!r}.", code="invalid_media",
            http_status=422, details={"mime_type": declared, "accepted": accepted})
    limit = MEDIA_KINDS[kind]["max_bytes"]
    size = getattr(file, "size", None)
    if size is not None and size > limit:
        raise ApplicationError(
            f"{_article(kind)} {kind} ({declared}) may be at most {_human_size(limit)}; this file has {size} bytes.",
            code="invalid_media", http_status=413, details={"size": size, "max_bytes": limit, "kind": kind})
    digest = hashlib.sha256()
    total = 0
    head = b""
    if hasattr(file, "seek"):
        file.seek(0)
    chunks = file.chunks() if hasattr(file, "chunks") else iter(lambda: file.read(64 * KB), b"")
    for chunk in chunks:
        if len(head) < 16:
            head += chunk[:16 - len(head)]
        total += len(chunk)
        if total > limit:
            raise ApplicationError(
                f"{_article(kind)} {kind} ({declared}) may be at most {_human_size(limit)}.", code="invalid_media",
                http_status=413, details={"max_bytes": limit, "kind": kind})
        digest.update(chunk)
    if total == 0:
        raise ApplicationError("The file is empty.", code="invalid_media", http_status=422)
    if not _looks_like(declared, head):
        raise ApplicationError(f"The file's content is not {declared}.", code="invalid_media", http_status=422,
                               details={"mime_type": declared})
    if hasattr(file, "seek"):
        file.seek(0)
    media = Media(tenant=tenant, phone_number=phone_number, source=Media.Source.UPLOAD, status=Media.Status.READY,
                  filename=filename, mime_type=declared, size=total, sha256=digest.hexdigest())
    media.file.save(_storage_name(filename, declared), file, save=False)
    media.save()
    return media


def check_media_for_send(*, tenant: Tenant, type: str, media_id: Any) -> Media | None:
    """The tenant's Media a send names by id ({"image": {"id": "<Media id>"}}), checked to fit
    the message type; None when the id is not one of this tenant's files (then it is a
    provider media id, passed through as is)."""
    reference = str(media_id).strip()
    if not reference.isdigit() or not 0 < int(reference) < 2**63:
        return None
    media = Media.objects.for_tenant(tenant).filter(pk=int(reference)).first()
    if media is None:
        return None
    if media.status != Media.Status.READY or not media.file:
        raise ApplicationError(f"Media {media.pk} has no file to send ({media.get_status_display().lower()}).",
                               code="invalid_media", http_status=422, details={"media_id": media.pk})
    if type != "document":
        allowed = MEDIA_KINDS[type]["mime_types"]
        if normalize_mime_type(media.mime_type) not in allowed:
            raise ApplicationError(
                f"Media {media.pk} is {media.mime_type or 'of unknown type'}; a {type} must be one of "
                f"{', '.join(sorted(allowed))}.", code="invalid_media", http_status=422,
                details={"media_id": media.pk, "mime_type": media.mime_type, "accepted": sorted(allowed)})
    return media


def media_provider_id(*, media: Media, phone_number: PhoneNumber, backend: BaseBackend) -> str:
    """The provider's id for a stored file, uploading it through ``phone_number`` on first use.

    The id is cached on the row for the number it was uploaded through (or the first number
    that sends a file uploaded without one) until shortly before the provider forgets it; a
    send from another number uploads again without disturbing that cache. Raises
    ``ProviderError`` when the file cannot be read or the provider refuses it."""
    now = timezone.now()
    bound_here = media.phone_number_id in (None, phone_number.pk)
    if (media.phone_number_id == phone_number.pk and media.provider_media_id and media.provider_media_expires_at
            and media.provider_media_expires_at > now + PROVIDER_MEDIA_REUSE_MARGIN):
        return media.provider_media_id
    if not media.file:
        raise ProviderPermanentError(f"media {media.pk} has no stored file", title="Media not available",
                                     explanation=f"Parley holds no file for media {media.pk}, so it cannot be sent.")
    try:
        with media.file.open("rb") as handle:
            content = handle.read()
    except OSError as exc:
        raise ProviderPermanentError(f"media {media.pk} could not be read: {exc}", title="Media not available",
                                     explanation=f"The stored file of media {media.pk} could not be read.") from exc
    filename = media.filename or os.path.basename(media.file.name)
    provider_id = backend.upload_media(content=content, mime_type=media.mime_type or "application/octet-stream",
                                       filename=filename)
    if bound_here:
        expires_at = now + PROVIDER_MEDIA_TTL
        Media.objects.for_tenant(media.tenant_id).filter(pk=media.pk).update(
            provider_media_id=provider_id, provider_media_expires_at=expires_at, phone_number=phone_number,
            updated_at=now)
        media.provider_media_id, media.provider_media_expires_at = provider_id, expires_at
        media.phone_number = phone_number
    return provider_id


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
        _touch_messages(media)
    return "ready"


def _fail(media: Media, reason: str) -> str:
    media.status = Media.Status.FAILED
    media.error = reason
    media.save(update_fields=["status", "error", "mime_type", "updated_at"])
    _touch_messages(media)
    return "failed"


def _touch_messages(media: Media) -> None:
    """The messages showing this file render differently now: bump their updated_at so open
    inboxes pick the change up (update() does not touch auto_now fields)."""
    Message.objects.for_tenant(media.tenant_id).filter(media=media).update(updated_at=timezone.now())
