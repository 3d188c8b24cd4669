"""Property-based API testing from the OpenAPI schema: schemathesis generates requests for
every operation in /api/schema/ and checks that none answers 5xx and every answer matches
the schema. Bounded (few examples per operation, derandomized) so CI stays fast."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import checks

from config.wsgi import application

schema = schemathesis.openapi.from_wsgi("/api/schema/", application)


@pytest.fixture
def auth_headers(db, keep_test_connection):
    from apps.tenants.services import api_key_create
    from tests.factories import PhoneNumberFactory, TenantFactory

    tenant = TenantFactory(slug="fuzz", api_requests_per_minute=1_000_000)
    PhoneNumberFactory(tenant=tenant)
    _, key = api_key_create(tenant=tenant, name="fuzz")
    return {"Authorization": f"Bearer {key}"}


@schema.parametrize()
@settings(max_examples=12, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.filter_too_much])
def test_api_never_fails_and_matches_its_schema(case, auth_headers):
    # No 5xx, and every answer (status code, content type, body) is one the schema documents.
    # Business refusals of generated-but-valid data (a closed window, an unknown template)
    # are correct answers, so "positive data acceptance" is not asked for.
    case.call_and_validate(headers=auth_headers, checks=[
        checks.not_a_server_error, checks.status_code_conformance, checks.content_type_conformance,
        checks.response_schema_conformance, checks.ignored_auth,
    ])
