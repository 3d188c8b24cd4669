from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from apps.conversations.models import Media, Message
from apps.conversations.services.media import MEDIA_KINDS
from apps.core.scoping import tenant_scope
from apps.providers.backends import locmem
from apps.providers.backends.locmem import LocmemBackend
from apps.providers.exceptions import ProviderPermanentError, ProviderTransientError
from tests.factories import ContactFactory, ConversationFactory, MediaFactory, PhoneNumberFactory

URL = "/api/v1/media"

SAMPLES = {
    "image": ("photo.jpg", "image/jpeg", b"\xff\xd8\xff\xe0\x00\x10JFIF" + b"\x01" * 64),
    "png": ("chart.png", "image/png", b"\x89PNG\r\n\x1a\n" + b"\x02" * 64),
    "sticker": ("smile.webp", "image/webp", b"RIFF\x24\x00\x00\x00WEBPVP8 " + b"\x03" * 32),
    "video": ("clip.mp4", "video/mp4", b"\x00\x00\x00\x18ftypmp42" + b"\x04" * 64),
    "audio": ("note.ogg", "audio/ogg", b"OggS\x00\x02" + b"\x05" * 64),
    "document": ("invoice.pdf", "application/pdf", b"%PDF-1.4\n" + b"\x06" * 64),
}


def upload(client, kind="image", **extra):
    name, mime_type, content = SAMPLES[kind]
    return client.post(URL, {"file": SimpleUploadedFile(name, content, content_type=mime_type), **extra},
                       format="multipart")


def error_code(response) -> str:
    return response.json()["error"]["code"]


def test_upload_stores_the_file_and_answers_201(api_client, tenant):
    response = upload(api_client, "document")
    assert response.status_code == 201, response.content
    body = response.json()
    name, mime_type, content = SAMPLES["document"]
    assert body == {"id": body["id"], "mime_type": "application/pdf", "size": len(content), "filename": name,
                    "sha256": hashlib.sha256(content).hexdigest()}
    with tenant_scope(tenant):
        media = Media.objects.get(pk=body["id"])
    assert media.source == "upload" and media.status == "ready" and media.provider_media_id == ""
    with media.file.open("rb") as handle:
        assert handle.read() == content
    assert locmem.outbox == []  # nothing reaches the provider until a message uses it


def test_metadata(api_client):
    created = upload(api_client, "png").json()
    response = api_client.get(f"{URL}/{created['id']}")
    assert response.status_code == 200
    body = response.json()
    assert {k: body[k] for k in created} == created
    assert body["source"] == "upload" and body["status"] == "ready" and body["phone_number_id"] is None
    assert body["created_at"]


def test_type_is_guessed_from_the_name_when_the_client_does_not_say(api_client):
    _, _, content = SAMPLES["document"]
    response = api_client.post(URL, {"file": SimpleUploadedFile("scan.pdf", content,
                                                                content_type="application/octet-stream")},
                               format="multipart")
    assert response.status_code == 201 and response.json()["mime_type"] == "application/pdf"


def test_too_large_is_413(api_client):
    limit = MEDIA_KINDS["image"]["max_bytes"]
    content = b"\xff\xd8\xff" + b"\x00" * limit
    response = api_client.post(URL, {"file": SimpleUploadedFile("big.jpg", content, content_type="image/jpeg")},
                               format="multipart")
    assert response.status_code == 413 and error_code(response) == "invalid_media"
    assert response.json()["error"]["details"]["max_bytes"] == limit


@pytest.mark.parametrize(("name", "mime_type", "content"), [
    ("anim.gif", "image/gif", b"GIF89a" + b"\x00" * 16),
    ("archive.zip", "application/zip", b"PK\x03\x04" + b"\x00" * 16),
    ("fake.png", "image/png", b"this is not a png at all"),
    ("mystery", "application/octet-stream", b"\x00" * 16),
])
def test_unsupported_or_mislabelled_files_are_refused(api_client, name, mime_type, content):
    response = api_client.post(URL, {"file": SimpleUploadedFile(name, content, content_type=mime_type)},
                               format="multipart")
    assert response.status_code == 422 and error_code(response) == "invalid_media"


def test_missing_file_is_400(api_client):
    response = api_client.post(URL, {"phone_number_id": 1}, format="multipart")
    assert response.status_code == 400 and "file" in response.json()["error"]["details"]


def test_upload_for_a_number(api_client, number, other_tenant):
    response = upload(api_client, phone_number_id=number.pk)
    assert response.status_code == 201
    assert api_client.get(f"{URL}/{response.json()['id']}").json()["phone_number_id"] == number.pk
    foreign = PhoneNumberFactory(tenant=other_tenant)
    response = upload(api_client, phone_number_id=foreign.pk)
    assert response.status_code == 404 and error_code(response) == "phone_number_not_found"


@pytest.fixture
def uploads(monkeypatch):
    """Every upload the provider backend receives."""
    calls = []
    original = LocmemBackend.upload_media

    def recording(self, *, content, mime_type, filename):
        provider_id = original(self, content=content, mime_type=mime_type, filename=filename)
        calls.append({"number": self.phone_number.pk, "content": content, "mime_type": mime_type,
                      "filename": filename, "id": provider_id})
        return provider_id

    monkeypatch.setattr(LocmemBackend, "upload_media", recording)
    return calls


def send_media(client, kind, media_id, *, phone_number_id=None, **extra):
    body = {"to": "14155550100", "type": kind, kind: {"id": str(media_id), **extra}}
    if phone_number_id:
        body["phone_number_id"] = phone_number_id
    return client.post("/api/v1/messages", body, format="json")


def test_an_uploaded_file_is_sent_by_id_after_a_lazy_upload(api_client, tenant, number, open_conversation,
                                                            uploads, django_capture_on_commit_callbacks):
    media_id = upload(api_client, "image").json()["id"]
    with django_capture_on_commit_callbacks(execute=True):
        response = send_media(api_client, "image", media_id, caption="Our menu")
    assert response.status_code == 202, response.content
    with tenant_scope(tenant):
        message = Message.objects.get(pk=response.json()["id"])
        media = Media.objects.get(pk=media_id)
    assert message.media_id == media_id and message.content == {"id": str(media_id), "caption": "Our menu"}
    assert message.status == "accepted"
    (upload_call,) = uploads
    assert upload_call["content"] == SAMPLES["image"][2] and upload_call["mime_type"] == "image/jpeg"
    assert upload_call["filename"] == "photo.jpg" and upload_call["id"].startswith("locmem-media-")
    (_, outbound), = locmem.outbox
    assert outbound.content == {"id": upload_call["id"], "caption": "Our menu"}
    assert media.provider_media_id == upload_call["id"] and media.phone_number_id == number.pk
    expected_expiry = timezone.now() + timedelta(days=30)
    assert abs((media.provider_media_expires_at - expected_expiry).total_seconds()) < 60

    # Used again: the cached provider id, no second upload.
    with django_capture_on_commit_callbacks(execute=True):
        assert send_media(api_client, "image", media_id).status_code == 202
    assert len(uploads) == 1 and locmem.outbox[-1][1].content == {"id": upload_call["id"]}


@pytest.mark.parametrize("kind", ["image", "video", "audio", "document", "sticker"])
def test_every_media_type_by_uploaded_id(api_client, number, open_conversation, uploads, kind,
                                         django_capture_on_commit_callbacks):
    media_id = upload(api_client, kind).json()["id"]
    with django_capture_on_commit_callbacks(execute=True):
        response = send_media(api_client, kind, media_id)
    assert response.status_code == 202, response.content
    (_, outbound), = locmem.outbox
    assert outbound.type == kind and outbound.content == {"id": uploads[0]["id"]}


def test_an_expired_provider_id_is_uploaded_again(api_client, tenant, number, open_conversation, uploads,
                                                   django_capture_on_commit_callbacks):
    media_id = upload(api_client).json()["id"]
    Media.all_tenants.filter(pk=media_id).update(phone_number=number, provider_media_id="old-id",
                                                 provider_media_expires_at=timezone.now() + timedelta(hours=2))
    with django_capture_on_commit_callbacks(execute=True):
        send_media(api_client, "image", media_id)
    assert len(uploads) == 1 and locmem.outbox[0][1].content == {"id": uploads[0]["id"]}
    assert Media.all_tenants.get(pk=media_id).provider_media_id == uploads[0]["id"]


def test_another_number_uploads_its_own_copy(api_client, tenant, number, open_conversation, uploads,
                                             django_capture_on_commit_callbacks):
    second = PhoneNumberFactory(tenant=tenant)
    ConversationFactory(tenant=tenant, phone_number=second, contact=open_conversation.contact,
                        window_expires_at=timezone.now() + timedelta(hours=1))
    media_id = upload(api_client).json()["id"]
    with django_capture_on_commit_callbacks(execute=True):
        send_media(api_client, "image", media_id, phone_number_id=number.pk)
        send_media(api_client, "image", media_id, phone_number_id=second.pk)
    assert [call["number"] for call in uploads] == [number.pk, second.pk]
    media = Media.all_tenants.get(pk=media_id)
    assert media.phone_number_id == number.pk and media.provider_media_id == uploads[0]["id"]


def test_a_refused_upload_fails_the_message_with_a_clear_error(api_client, tenant, number, open_conversation,
                                                                monkeypatch, django_capture_on_commit_callbacks):
    def refuse(self, **kwargs):
        raise ProviderPermanentError("rejected", code=131053, title="Media upload error",
                                     explanation="Unsupported file type.")

    monkeypatch.setattr(LocmemBackend, "upload_media", refuse)
    media_id = upload(api_client).json()["id"]
    with django_capture_on_commit_callbacks(execute=True):
        message_id = send_media(api_client, "image", media_id).json()["id"]
    body = api_client.get(f"/api/v1/messages/{message_id}").json()
    assert body["status"] == "failed" and locmem.outbox == []
    assert body["error"]["code"] == 131053 and body["error"]["title"] == "Media upload failed"
    assert f"media {media_id}" in body["error"]["detail"] and "Unsupported file type." in body["error"]["detail"]


def test_a_transient_upload_error_is_retried(api_client, tenant, number, open_conversation, monkeypatch,
                                             django_capture_on_commit_callbacks):
    def busy(self, **kwargs):
        raise ProviderTransientError("busy", status_code=503, title="Service unavailable")

    monkeypatch.setattr(LocmemBackend, "upload_media", busy)
    media_id = upload(api_client).json()["id"]
    with django_capture_on_commit_callbacks(execute=True):
        message_id = send_media(api_client, "image", media_id).json()["id"]
    message = Message.all_tenants.get(pk=message_id)
    assert message.status == "queued" and message.next_attempt_at > timezone.now()
    assert message.error_title == "Service unavailable" and locmem.outbox == []


def test_a_file_of_the_wrong_kind_is_refused(api_client, number, open_conversation):
    media_id = upload(api_client, "document").json()["id"]
    response = send_media(api_client, "image", media_id)
    assert response.status_code == 422 and error_code(response) == "invalid_media"
    # Any file may go out as a document.
    image_id = upload(api_client, "image").json()["id"]
    assert send_media(api_client, "document", image_id, filename="photo.jpg").status_code == 202


def test_a_file_not_downloaded_yet_cannot_be_sent(api_client, tenant, number, open_conversation):
    pending = MediaFactory(tenant=tenant, source="inbound", status="pending")
    response = send_media(api_client, "image", pending.pk)
    assert response.status_code == 422 and error_code(response) == "invalid_media"


def test_other_ids_are_passed_through_as_provider_media_ids(api_client, tenant, number, open_conversation,
                                                            django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = send_media(api_client, "image", "1037543291543636")
    assert response.status_code == 202
    assert Message.all_tenants.get(pk=response.json()["id"]).media_id is None
    assert locmem.outbox[0][1].content == {"id": "1037543291543636"}


def test_tenant_isolation(api_client, other_api_client, tenant, other_tenant, django_capture_on_commit_callbacks):
    media_id = upload(api_client).json()["id"]
    response = other_api_client.get(f"{URL}/{media_id}")
    assert response.status_code == 404 and error_code(response) == "not_found"
    # For the other tenant the id is not one of its files: it goes to its provider untouched.
    other_number = PhoneNumberFactory(tenant=other_tenant)
    ConversationFactory(tenant=other_tenant, phone_number=other_number,
                        contact=ContactFactory(tenant=other_tenant, wa_id="14155550100"),
                        window_expires_at=timezone.now() + timedelta(hours=1))
    with django_capture_on_commit_callbacks(execute=True):
        response = send_media(other_api_client, "image", media_id)
    assert response.status_code == 202
    assert Message.all_tenants.get(pk=response.json()["id"]).media_id is None
    assert locmem.outbox[0][1].content == {"id": str(media_id)}
    assert Media.all_tenants.get(pk=media_id).provider_media_id == ""


def test_unknown_media_is_404(api_client):
    for media_id in (424242, 10**30, "x"):
        response = api_client.get(f"{URL}/{media_id}")
        assert response.status_code == 404 and error_code(response) == "not_found"


def test_a_body_beyond_every_limit_is_refused_before_it_is_read(api_client):
    response = api_client.generic("POST", URL, b"", content_type="multipart/form-data; boundary=x",
                                  CONTENT_LENGTH=str(200 * 1024 * 1024))
    assert response.status_code == 413 and error_code(response) == "invalid_media"


@pytest.mark.parametrize("name", ["!!!.pdf", "../../etc/passwd.pdf", "résumé final.pdf", "..pdf"])
def test_any_file_name_is_stored_safely_and_kept_as_given(api_client, tenant, name):
    _, _, content = SAMPLES["document"]
    response = api_client.post(URL, {"file": SimpleUploadedFile(name, content, content_type="application/pdf")},
                               format="multipart")
    assert response.status_code == 201, response.content
    media = Media.all_tenants.get(pk=response.json()["id"])
    assert ".." not in media.file.name and media.file.name.startswith("media/")
    assert response.json()["filename"] == media.filename


def test_json_is_not_an_upload(api_client):
    response = api_client.post(URL, {"file": "aGVsbG8="}, format="json")
    assert response.status_code == 415 and error_code(response) == "unsupported_media_type"
