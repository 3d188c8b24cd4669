"""The application as the Procfile serves it: granian's WSGI interface, over real HTTP.

Django's test client and the live server call the application in process, so they cannot tell
whether the production server hands it the request Django expects. This runs the Procfile's
own `web:` command and goes through what depends on the server: a provider webhook whose
signature covers the raw body byte for byte, an API send, a multipart upload, a sign-in with
its CSRF cookie and session, all on keep-alive connections."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import shlex
import sys
from datetime import timedelta
from pathlib import Path

import pytest
import requests
from django.utils import timezone

from apps.conversations.models import Message
from apps.providers.models import WebhookEvent
from apps.tenants.services import api_key_create
from tests.factories import (
    ContactFactory,
    ConversationFactory,
    MembershipFactory,
    PhoneNumberFactory,
    UserFactory,
)

from .harness import ROOT, Process, free_port, subprocess_env, wait_until

pytestmark = pytest.mark.e2e

APP_SECRET = "served-app-secret"


def procfile_web_command() -> str:
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.startswith("web:"):
            return line.removeprefix("web:").strip()
    raise AssertionError("the Procfile has no web: process")


@pytest.fixture
def served(transactional_db, e2e_logs):
    port = free_port()
    env = subprocess_env(PORT=str(port), WEB_CONCURRENCY="2", WEB_THREADS="2", DEBUG="0",
                         ALLOWED_HOSTS="127.0.0.1")
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"  # the environment's granian
    process = Process("web", ["bash", "-c", f"exec {procfile_web_command()}"], env, e2e_logs / "web.log").start()
    base = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        assert process.popen.poll() is None, (e2e_logs / "web.log").read_text()
        try:
            return requests.get(f"{base}/healthz", timeout=2).status_code == 200
        except requests.ConnectionError:
            return False

    wait_until(healthy, timeout=60, what="the Procfile's web server to answer /healthz")
    yield base
    process.stop()


def test_the_procfile_runs_granian():
    command = shlex.split(procfile_web_command())
    assert command[0] == "granian" and "--interface" in command and "wsgi" in command
    assert command[-1] == "config.wsgi:application"


def test_the_served_application_end_to_end(served, tenant):
    number = PhoneNumberFactory(tenant=tenant, credentials={"access_token": "t", "app_secret": APP_SECRET})
    contact = ContactFactory(tenant=tenant, wa_id="14155550123")
    ConversationFactory(tenant=tenant, phone_number=number, contact=contact,
                        window_expires_at=timezone.now() + timedelta(hours=20))
    _, key = api_key_create(tenant=tenant, name="served")
    session = requests.Session()  # one keep-alive connection for the calls below

    # A provider webhook: the signature is over the exact bytes sent, odd spacing and all.
    body = json.dumps({"object": "whatsapp_business_account", "entry": [{"id": "waba", "changes": [{
        "field": "messages", "value": {"messaging_product": "whatsapp", "metadata": {
            "display_phone_number": number.display_number, "phone_number_id": number.phone_number_id},
            "statuses": [{"id": "wamid.served-1", "status": "sent", "timestamp": "1700000000",
                          "recipient_id": "14155550123"}]}}]}]}, indent=1).encode() + b"  \n"
    signature = "sha256=" + hmac.new(APP_SECRET.encode(), body, hashlib.sha256).hexdigest()
    answer = session.post(f"{served}/webhooks/meta/", data=body, timeout=10,
                          headers={"Content-Type": "application/json", "X-Hub-Signature-256": signature})
    assert answer.status_code == 200, answer.text
    event = WebhookEvent.all_tenants.get(body_sha256=hashlib.sha256(body).hexdigest())
    assert bytes(event.body) == body and event.tenant_id == tenant.pk
    refused = session.post(f"{served}/webhooks/meta/", data=body + b" ", timeout=10,
                           headers={"Content-Type": "application/json", "X-Hub-Signature-256": signature})
    assert refused.status_code == 403

    # The API: a send is queued; an upload is read from a multipart body.
    auth = {"Authorization": f"Bearer {key}"}
    sent = session.post(f"{served}/api/v1/messages", headers=auth, timeout=10,
                        json={"to": "+14155550123", "type": "text", "text": {"body": "Served by granian"}})
    assert sent.status_code == 202, sent.text
    assert Message.all_tenants.get(pk=sent.json()["id"]).content["body"] == "Served by granian"
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40
    uploaded = session.post(f"{served}/api/v1/media", headers=auth, timeout=10,
                            files={"file": ("photo.png", png, "image/png")})
    assert uploaded.status_code == 201, uploaded.text
    assert uploaded.json()["size"] == len(png) and uploaded.json()["sha256"] == hashlib.sha256(png).hexdigest()
    assert session.get(f"{served}/api/v1/messages", headers={"X-API-Key": "nope"}, timeout=10).status_code == 401

    # A person signs in: CSRF cookie and token, the session cookie, a redirect, the inbox page.
    MembershipFactory(tenant=tenant, user=UserFactory(email="agent@served.test", password="pw-served-1"))
    browser = requests.Session()
    form = browser.get(f"{served}/accounts/login/", timeout=10)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text).group(1)
    signed_in = browser.post(f"{served}/accounts/login/", timeout=10, allow_redirects=False,
                             data={"csrfmiddlewaretoken": token, "username": "agent@served.test",
                                   "password": "pw-served-1"}, headers={"Referer": f"{served}/accounts/login/"})
    assert signed_in.status_code == 302, signed_in.text[:500]
    page = browser.get(served + signed_in.headers["Location"], timeout=10)
    assert page.status_code == 200 and "inbox" in page.text.lower()
    forged = requests.post(f"{served}/accounts/login/", data={"username": "x", "password": "y"}, timeout=10)
    assert forged.status_code == 403  # no CSRF cookie, no token
