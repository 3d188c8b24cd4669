"""The served application: the paths only programs call go through the short machine stack,
every other path through the browser's, and nothing a machine path relies on is lost."""

from __future__ import annotations

import json

import pytest
from django.conf import settings
from django.test import RequestFactory
from django.urls import URLPattern, URLResolver, get_resolver

from apps.core.wsgi import MachineHandler, PathDispatcher
from apps.tenants.services import api_key_create
from config.wsgi import application
from tests.factories import PhoneNumberFactory, TenantFactory


def _call(request) -> tuple[int, dict[str, str], list[str], bytes]:
    """Run one request built by RequestFactory through the served WSGI application."""
    answer: dict[str, object] = {}

    def start_response(status, headers, exc_info=None):
        answer["status"], answer["headers"] = status, headers

    body = b"".join(application(request.environ, start_response))
    headers = dict(answer["headers"])
    cookies = [value.strip() for name, value in answer["headers"] if name == "Set-Cookie"]
    return int(str(answer["status"]).split()[0]), headers, cookies, body


def test_the_served_application_dispatches_by_path():
    assert isinstance(application, PathDispatcher)
    assert isinstance(application.machine, MachineHandler)
    assert application.prefixes == tuple(settings.MACHINE_PATH_PREFIXES)


def test_building_the_machine_handler_leaves_the_browser_middleware_setting_alone():
    before = list(settings.MIDDLEWARE)
    handler = MachineHandler()
    assert settings.MIDDLEWARE == before
    loaded = [type(getattr(m, "__self__", m)).__module__ for m in handler._view_middleware]
    assert not any("csrf" in name for name in loaded)


@pytest.mark.django_db
def test_an_api_request_skips_the_browser_layers_and_keeps_the_security_headers(keep_test_connection):
    tenant = TenantFactory(slug="wsgi", api_requests_per_minute=1_000)
    number = PhoneNumberFactory(tenant=tenant)
    _, key = api_key_create(tenant=tenant, name="wsgi")

    status, headers, cookies, body = _call(RequestFactory().get("/api/v1/phone-numbers",
                                                                HTTP_AUTHORIZATION=f"Bearer {key}"))

    assert status == 200
    assert [item["id"] for item in json.loads(body)["data"]] == [number.pk]
    assert headers["X-Content-Type-Options"] == "nosniff"  # SecurityMiddleware still runs
    assert "X-Frame-Options" not in headers and "Cookie" not in headers.get("Vary", "")
    assert cookies == []


@pytest.mark.django_db
def test_a_refused_api_key_is_still_the_api_error(keep_test_connection):
    status, headers, _, body = _call(RequestFactory().post("/api/v1/messages", data="{}",
                                                           content_type="application/json"))
    assert status == 401
    assert json.loads(body)["error"]["code"] == "unauthenticated"


@pytest.mark.django_db
def test_a_provider_webhook_with_a_bad_signature_is_refused_by_the_view_not_by_csrf(keep_test_connection):
    number = PhoneNumberFactory(tenant=TenantFactory(slug="wsgi-hook"))
    payload = {"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": number.display_number, "phone_number_id": number.phone_number_id}}}]}]}
    status, headers, _, body = _call(RequestFactory().post(
        "/webhooks/meta/", data=json.dumps(payload).encode(),
        content_type="application/json", HTTP_X_HUB_SIGNATURE_256="sha256=" + "0" * 64))
    assert status == 403
    assert b"CSRF" not in body
    assert "X-Frame-Options" not in headers


@pytest.mark.django_db
def test_pages_keep_the_browser_stack(keep_test_connection):
    status, headers, cookies, _ = _call(RequestFactory().get("/accounts/login/"))
    assert status == 200
    assert headers["X-Frame-Options"] == "DENY"
    assert any(cookie.startswith(f"{settings.CSRF_COOKIE_NAME}=") for cookie in cookies)

    # And a page behind the login still redirects to it.
    status, headers, _, _ = _call(RequestFactory().get("/tenants/"))
    assert status == 302 and headers["Location"].startswith("/accounts/login/?next=")


def _routes(patterns, prefix: str = ""):
    for pattern in patterns:
        route = prefix + str(pattern.pattern).lstrip("^")
        if isinstance(pattern, URLResolver):
            yield from _routes(pattern.url_patterns, route)
        elif isinstance(pattern, URLPattern):
            yield "/" + route, pattern.callback


def test_every_view_under_a_machine_path_was_already_exempt_from_csrf_and_the_login():
    # The machine stack leaves out CsrfViewMiddleware and LoginRequiredMiddleware. That changes
    # nothing only if every view it serves was exempt from both: each authenticates by a key or a
    # signature of its own. A page put under one of these prefixes by mistake fails here.
    prefixes = tuple(settings.MACHINE_PATH_PREFIXES)
    machine = [(route, view) for route, view in _routes(get_resolver().url_patterns) if route.startswith(prefixes)]
    assert len(machine) > 30
    for route, view in machine:
        assert getattr(view, "csrf_exempt", False), route
        assert getattr(view, "login_required", True) is False, route


def test_loading_the_application_imports_every_view_before_the_first_request():
    # A worker's first request used to import the URLconf and every view: most of a second.
    import os
    import subprocess
    import sys

    code = ("import sys, config.wsgi; "
            "print(all(m in sys.modules for m in ('apps.conversations.apis', 'apps.providers.views', "
            "'apps.conversations.views', 'apps.api.graph')))")
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120,
                          cwd=settings.BASE_DIR)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "True"
