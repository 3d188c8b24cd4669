"""End to end over a real socket: a local receiver checks the signature the way a tenant's
server would."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from apps.webhooks import services, signing
from apps.webhooks.models import WebhookDelivery


class Receiver:
    def __init__(self, secret: str, status: int = 200) -> None:
        self.secret = secret
        self.status = status
        self.requests: list[dict] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                valid = signing.verify(receiver.secret, body, self.headers.get("Parley-Signature", ""))
                receiver.requests.append({"path": self.path, "headers": dict(self.headers), "body": body,
                                          "valid": valid})
                status = receiver.status if valid else 400
                answer = json.dumps({"ok": valid}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format, *args) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/parley/events"

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def receiver():
    with Receiver(secret="") as running:
        yield running


def test_a_real_receiver_verifies_the_signature(tenant, settings, receiver, django_capture_on_commit_callbacks):
    settings.WEBHOOKS_ALLOW_PRIVATE_URLS = True
    endpoint, secret = services.webhook_endpoint_create(tenant=tenant, url=receiver.url, events=["message.received"])
    receiver.secret = secret

    with django_capture_on_commit_callbacks(execute=True):
        [delivery] = services.event_emit(tenant=tenant, type="message.received",
                                         data={"message_id": 42, "text": "Olá"})

    assert len(receiver.requests) == 1
    request = receiver.requests[0]
    assert request["valid"] is True
    assert request["path"] == "/parley/events"
    assert request["headers"]["Parley-Event-Id"] == delivery.event_id
    assert request["headers"]["User-Agent"] == "Parley-Webhooks/1"
    envelope = json.loads(request["body"])
    assert envelope["id"] == delivery.event_id
    assert envelope["data"] == {"message_id": 42, "text": "Olá"}

    delivery.refresh_from_db()
    assert delivery.status == WebhookDelivery.Status.SUCCEEDED
    [attempt] = delivery.attempts.all()
    assert attempt.status_code == 200
    assert json.loads(attempt.response_excerpt) == {"ok": True}

    # After a rotation the old secret no longer verifies, the new one does.
    _, new_secret = services.webhook_endpoint_rotate_secret(tenant=tenant, endpoint_id=endpoint.pk)
    with django_capture_on_commit_callbacks(execute=True):
        services.webhook_test_event_send(tenant=tenant, endpoint_id=endpoint.pk)
    assert receiver.requests[-1]["valid"] is False
    receiver.secret = new_secret
    with django_capture_on_commit_callbacks(execute=True):
        test_delivery = services.webhook_test_event_send(tenant=tenant, endpoint_id=endpoint.pk)
    assert receiver.requests[-1]["valid"] is True
    test_delivery.refresh_from_db()
    assert test_delivery.status == WebhookDelivery.Status.SUCCEEDED
