"""Webhook URLs are tenant input: Parley must not be turned into a client for its own network."""

from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import responses
from django.utils import timezone

from apps.core.exceptions import ApplicationError
from apps.core.scoping import tenant_scope
from apps.webhooks import sender, services
from apps.webhooks.models import WebhookDelivery
from tests.factories import WebhookDeliveryFactory, WebhookEndpointFactory


@pytest.fixture(autouse=True)
def _refuse_private(settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_URLS = False


def attempt_to(tenant, url):
    endpoint = WebhookEndpointFactory(tenant=tenant, url=url)
    delivery = WebhookDeliveryFactory(endpoint=endpoint, next_attempt_at=timezone.now(),
                                      payload={"id": "evt_x", "type": "message.sent", "data": {}})
    with tenant_scope(tenant):
        result = services.webhook_delivery_attempt(delivery_id=delivery.pk)
    return result, result.attempts.get()


@pytest.mark.parametrize(("url", "reason"), [
    ("http://127.0.0.1:8000/hook", "loopback"),
    ("http://10.1.2.3/hook", "private"),
    ("http://192.168.0.10/hook", "private"),
    ("http://169.254.169.254/latest/meta-data/", "link-local"),
    ("http://[::1]/hook", "loopback"),
    ("http://[::ffff:127.0.0.1]/hook", "loopback"),
    ("http://0.0.0.0/hook", "unspecified"),
    ("http://100.64.0.1/hook", "non-public"),
])
@responses.activate
def test_private_addresses_are_refused(tenant, url, reason):
    result, attempt = attempt_to(tenant, url)

    assert len(responses.calls) == 0
    assert attempt.error.startswith("refused:")
    assert f"a {reason} address" in attempt.error
    assert attempt.status_code is None
    assert result.status == WebhookDelivery.Status.RETRYING


@responses.activate
def test_a_name_resolving_to_a_private_address_is_refused(tenant, monkeypatch):
    def getaddrinfo(host, port, *args, **kwargs):
        assert host == "intranet.example.com"
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", port)),
                (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.7", port))]

    monkeypatch.setattr(sender.socket, "getaddrinfo", getaddrinfo)
    _, attempt = attempt_to(tenant, "https://intranet.example.com/hook")

    assert len(responses.calls) == 0
    assert "intranet.example.com (10.0.0.7) is a private address" in attempt.error


@responses.activate
def test_a_public_address_is_posted(tenant, monkeypatch):
    monkeypatch.setattr(sender.socket, "getaddrinfo", lambda host, port, *a, **k: [
        (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", port))])
    responses.add(responses.POST, "https://hooks.example.com/in", status=200)

    result, attempt = attempt_to(tenant, "https://hooks.example.com/in")

    assert len(responses.calls) == 1
    assert result.status == WebhookDelivery.Status.SUCCEEDED
    assert attempt.error == ""


@responses.activate
def test_dns_failure_is_a_connection_error(tenant, monkeypatch):
    def getaddrinfo(*args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(sender.socket, "getaddrinfo", getaddrinfo)
    result, attempt = attempt_to(tenant, "https://nowhere.example.com/in")

    assert attempt.error.startswith("connection error")
    assert result.status == WebhookDelivery.Status.RETRYING


def test_the_connected_peer_is_checked_too(tenant, monkeypatch):
    """DNS rebinding: the name looked public when checked, the socket reached a loopback
    address. Nothing is written to it."""
    received = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            received.append(self.path)
            self.send_response(200)
            self.end_headers()

        def log_message(self, format, *args) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        monkeypatch.setattr(sender, "check_url", lambda url: None)
        result, attempt = attempt_to(tenant, f"http://127.0.0.1:{server.server_address[1]}/hook")
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)

    assert received == []
    assert attempt.error.startswith("refused:") and "loopback" in attempt.error
    assert result.status == WebhookDelivery.Status.RETRYING


def test_allowed_when_configured(settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_URLS = True
    sender.check_url("http://127.0.0.1:9/hook")
    settings.WEBHOOKS_ALLOW_PRIVATE_URLS = None
    settings.DEBUG = True
    assert sender.private_urls_allowed() is True
    settings.DEBUG = False
    assert sender.private_urls_allowed() is False


@pytest.mark.parametrize("url", ["ftp://example.com/x", "file:///etc/passwd", "http:///nohost", "http://example.com:99999/"])
def test_bad_urls_are_refused_even_when_private_is_allowed(settings, url):
    settings.WEBHOOKS_ALLOW_PRIVATE_URLS = True
    with pytest.raises(sender.UnsafeURLError):
        sender.check_url(url)


@pytest.mark.parametrize("url", ["http://127.0.0.1/hook", "http://localhost:8000/hook", "https://10.0.0.1/",
                                 "http://169.254.169.254/", "http://[::1]:8080/"])
def test_endpoint_create_refuses_private_literals(tenant, url):
    with pytest.raises(ApplicationError) as excinfo:
        services.webhook_endpoint_create(tenant=tenant, url=url)
    assert excinfo.value.code == "invalid_url"


def test_endpoint_create_accepts_private_literals_when_allowed(tenant, settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_URLS = True
    endpoint, _ = services.webhook_endpoint_create(tenant=tenant, url="http://localhost:8000/hook")
    assert endpoint.url == "http://localhost:8000/hook"
