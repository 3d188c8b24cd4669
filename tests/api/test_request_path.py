"""The API's request path kept cheap without losing anything: the key is remembered in the
cache but a revoked key, a disabled workspace or a new rate limit applies from the next
request on; last_used_at is written at most once a minute; the throttle counts every request;
a send to a known customer finds the contact with the conversation."""

from __future__ import annotations

import time
from datetime import timedelta

from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from apps.api import keycache
from apps.api.keycache import _entry_key, _generation_key, api_key_resolve, key_memo
from apps.api.throttling import count_request, counter_key, current_window
from apps.conversations.models import Conversation
from apps.conversations.selectors import conversation_list
from apps.tenants.models import ApiKey
from apps.tenants.services import api_key_revoke, hash_api_key

URL = "/api/v1/messages"


def _get(api_key: ApiKey):
    return APIClient().get(URL, HTTP_AUTHORIZATION=f"Bearer {api_key.plaintext}")


def _key_queries(captured: CaptureQueriesContext) -> list[str]:
    return [q["sql"] for q in captured.captured_queries if '"tenants_apikey"' in q["sql"]]


def test_the_key_is_read_once_then_comes_from_the_cache(api_key):
    with CaptureQueriesContext(connection) as first:
        assert _get(api_key).status_code == 200
    assert len(_key_queries(first)) == 2  # the lookup and the last_used_at stamp
    with CaptureQueriesContext(connection) as second:
        assert _get(api_key).status_code == 200
    assert _key_queries(second) == []


def test_a_revoked_key_is_refused_on_the_next_request(api_key, tenant):
    assert _get(api_key).status_code == 200  # now cached
    api_key_revoke(tenant=tenant, api_key_id=api_key.pk)
    response = _get(api_key)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "api_key_revoked"


def test_an_entry_cached_from_before_the_revocation_is_not_used(api_key, tenant):
    """A request that read the key just before the revocation committed and cached it after
    carries the old generation: later requests ignore it."""
    assert _get(api_key).status_code == 200
    stale = cache.get(_entry_key(hash_api_key(api_key.plaintext)))
    api_key_revoke(tenant=tenant, api_key_id=api_key.pk)
    cache.set(_entry_key(hash_api_key(api_key.plaintext)), stale, timeout=60)
    assert _get(api_key).status_code == 401


def test_a_disabled_workspace_and_a_new_rate_limit_apply_on_the_next_request(api_key, tenant):
    assert _get(api_key).status_code == 200
    tenant.api_requests_per_minute = 2
    tenant.save()
    assert _get(api_key).status_code == 200  # the second request of this minute
    assert _get(api_key).status_code == 429
    tenant.is_active = False
    tenant.save()
    response = _get(api_key)
    assert response.status_code == 401 and response.json()["error"]["code"] == "tenant_disabled"


def test_a_deleted_key_is_refused(api_key):
    assert _get(api_key).status_code == 200
    ApiKey.all_tenants.filter(pk=api_key.pk).first().delete()
    assert _get(api_key).json()["error"]["code"] == "invalid_api_key"


def test_unknown_keys_are_not_remembered(db):
    plaintext = "prl_000000000000.nope"
    assert api_key_resolve(plaintext=plaintext) is None
    assert cache.get(_entry_key(hash_api_key(plaintext))) is None


def test_last_used_at_is_written_at_most_once_a_minute(api_key):
    assert _get(api_key).status_code == 200
    first = ApiKey.all_tenants.get(pk=api_key.pk).last_used_at
    assert first is not None
    with CaptureQueriesContext(connection) as captured:
        for _ in range(3):
            assert _get(api_key).status_code == 200
    assert not any(q["sql"].startswith("UPDATE") for q in captured.captured_queries)
    # A minute later the entry has expired (and this process's memo, which lasts seconds) and
    # the stamp is older than a minute: written again.
    ApiKey.all_tenants.filter(pk=api_key.pk).update(last_used_at=timezone.now() - timedelta(minutes=2))
    cache.delete(_entry_key(hash_api_key(api_key.plaintext)))
    key_memo.clear()
    assert _get(api_key).status_code == 200
    assert ApiKey.all_tenants.get(pk=api_key.pk).last_used_at > first


def test_a_remembered_key_costs_one_round_trip_that_also_counts_the_request(api_key, monkeypatch):
    """Once this process remembers the key, a request reads only the key's generation, in the
    cache call that counts it for the throttle: no entry to unpickle, no second round trip."""
    assert _get(api_key).status_code == 200
    calls = []
    real_count = keycache.count

    def spy(name, **kwargs):
        calls.append((name, kwargs.get("read_key")))
        return real_count(name, **kwargs)

    monkeypatch.setattr(keycache, "count", spy)
    monkeypatch.setattr(keycache, "remembered_with_generation", None)  # would raise if called
    for _ in range(3):
        assert _get(api_key).status_code == 200
    hashed = hash_api_key(api_key.plaintext)
    assert calls == [(counter_key(api_key.pk, current_window(time.time())), _generation_key(hashed))] * 3


def test_every_request_is_counted_once_whichever_way_its_key_was_found(api_key, tenant):
    window = current_window(time.time())
    assert _get(api_key).status_code == 200  # from the database
    assert _get(api_key).status_code == 200  # remembered by this process
    key_memo.clear()
    assert _get(api_key).status_code == 200  # from the shared cache
    tenant.save()  # moves the generation on: the remembered key is read again
    assert _get(api_key).status_code == 200
    if current_window(time.time()) == window:
        assert cache.get(counter_key(api_key.pk, window)) == 4


def test_another_process_revoking_the_key_is_seen_on_the_next_request(api_key):
    """Another process's revocation moves the shared generation on; the row says revoked."""
    assert _get(api_key).status_code == 200
    ApiKey.all_tenants.filter(pk=api_key.pk).update(revoked_at=timezone.now())  # no signal here...
    cache.set(_generation_key(hash_api_key(api_key.plaintext)), "moved-on-elsewhere", timeout=None)  # ...but there
    assert _get(api_key).json()["error"]["code"] == "api_key_revoked"


def test_each_request_gets_its_own_copy_of_a_remembered_key(api_key):
    first = api_key_resolve(plaintext=api_key.plaintext)
    first.tenant.name = "changed by one request"
    second = api_key_resolve(plaintext=api_key.plaintext)
    assert second is not first and second.tenant is not first.tenant
    assert second.tenant.name != "changed by one request"


def test_the_throttle_counts_every_request(db):
    assert [count_request("parley:test-counter") for _ in range(3)] == [1, 2, 3]
    assert count_request("parley:another-counter") == 1


def test_a_send_to_a_known_customer_reads_the_contact_with_the_conversation(api_client, number, open_conversation):
    body = {"to": "14155550100", "type": "text", "text": {"body": "Hi"}}
    assert api_client.post(URL, body, format="json").status_code == 202  # the key and the number are cached
    with CaptureQueriesContext(connection) as captured:
        response = api_client.post(URL, body, format="json")
    assert response.status_code == 202, response.content
    assert response.json()["conversation_id"] == open_conversation.pk
    statements = [q["sql"] for q in captured.captured_queries]
    # The number comes from the process's number cache; one statement reads the conversation
    # with its contact (on PostgreSQL, the same statement also writes the message).
    if connection.vendor == "postgresql":
        assert len(statements) == 1 and statements[0].startswith("WITH target AS (SELECT ")
        selects = statements
    else:
        selects = [sql for sql in statements if sql.startswith("SELECT")]
    assert len(selects) == 1
    assert ' FROM "conversations_conversation" c JOIN "contacts_contact" ct ' in selects[0]
    # The contact is looked up through its (tenant, wa_id) key, then the conversation through
    # its (tenant, number, contact) key: without the contact's tenant named, the database scans
    # the contacts of every tenant for the number.
    assert (f'(SELECT id FROM "contacts_contact" WHERE tenant_id = {open_conversation.tenant_id} '
            f"AND wa_id = '14155550100')") in selects[0]


def test_the_conversation_list_filtered_by_customer_names_the_contact_tenant(tenant, open_conversation):
    qs = conversation_list(tenant=tenant, wa_id=open_conversation.contact.wa_id)
    assert list(qs) == [open_conversation]
    assert f'"contacts_contact"."tenant_id" = {tenant.pk}' in str(qs.query)


def test_a_send_to_a_new_customer_creates_contact_and_conversation(api_client, tenant, number, templates):
    response = api_client.post(URL, {"to": "14155550199", "type": "template", "template": {
        "name": "order_update", "language": "en", "variables": ["Ada", "#1"]}}, format="json")
    assert response.status_code == 202, response.content
    conversation = Conversation.all_tenants.select_related("contact").get(pk=response.json()["conversation_id"])
    assert conversation.contact.wa_id == "14155550199" and conversation.phone_number_id == number.pk
    assert conversation.tenant_id == tenant.pk


def test_the_send_body_is_validated_with_fields_built_once_and_shared_safely_by_threads():
    from concurrent.futures import ThreadPoolExecutor

    from apps.conversations.apis import MessageListCreateApi

    serializer_class = MessageListCreateApi.InputSerializer
    bodies = [
        {"to": "+14155550100", "type": "text", "text": {"body": "Hello"}},
        {"to": "+14155550100", "type": "text", "text": {}},
        {"to": "+14155550100", "type": "image", "image": {"link": "https://example.com/a.jpg", "caption": "A"}},
        {"to": "+14155550100", "type": "image", "image": {"caption": "no media"}},
        {"to": "+14155550100", "type": "location", "location": {"latitude": 1.5, "longitude": "x"}},
        {"type": "text", "text": {"body": "no recipient"}},
    ]

    def outcome(body: dict) -> tuple[bool, object]:
        serializer = serializer_class(data=body)
        valid = serializer.is_valid()
        return valid, (serializer.validated_data if valid else serializer.errors)

    expected = [outcome(body) for body in bodies]
    assert [valid for valid, _ in expected] == [True, False, True, False, False, False]
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(outcome, bodies * 200))
    assert results == expected * 200
    # One set of bound fields per set of type objects, shared by every request.
    first, second = serializer_class(data=bodies[0]), serializer_class(data=bodies[1])
    assert first.fields is second.fields and set(first.fields) >= {"to", "type", "text"}
    assert "image" not in first.fields
    # The schema (no data) sees every field, of its own.
    assert {"text", "image", "template", "interactive"} <= set(serializer_class().fields)
