"""``Idempotency-Key`` on POST: the same key and body replay the first response (same status
and body); the same key with another body is a 409; keys are kept 24 h per tenant."""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable
from datetime import timedelta

from django.utils import timezone
from rest_framework.response import Response
from rest_framework.utils.encoders import JSONEncoder

from apps.core.exceptions import ApplicationError
from apps.core.rows import row_insert, row_update

from .models import IdempotencyKey

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255
KEEP = timedelta(hours=24)


def idempotent(handler: Callable) -> Callable:
    """Wrap an APIView's post(). Runs after authentication, so the tenant is known."""

    @functools.wraps(handler)
    def wrapper(view, request, *args, **kwargs):
        key = request.headers.get(HEADER)
        if key is None:
            return handler(view, request, *args, **kwargs)
        key = key.strip()
        if not key or len(key) > MAX_KEY_LENGTH:
            raise ApplicationError(f"{HEADER} must be 1 to {MAX_KEY_LENGTH} characters.", code="invalid_idempotency_key")
        tenant = request.auth.tenant
        raw = request._request.body  # read before DRF parses, so the fingerprint sees the exact bytes
        fingerprint = hashlib.sha256(b"\n".join([request.method.encode(), request.path.encode(), raw])).hexdigest()
        keys = IdempotencyKey.objects.for_tenant(tenant)
        # One statement claims the key (ON CONFLICT DO NOTHING): no transaction around it.
        record = row_insert(IdempotencyKey(tenant=tenant, key=key, fingerprint=fingerprint), ignore_conflicts=True)
        if record is None:
            record = keys.filter(key=key).first()
            if record is None:  # claimed and released (its request failed) in between: try again
                return wrapper(view, request, *args, **kwargs)
            if record.created_at < timezone.now() - KEEP:
                record.delete()
                return wrapper(view, request, *args, **kwargs)
            if record.fingerprint != fingerprint:
                raise ApplicationError(f"{HEADER} {key!r} was already used with a different request.",
                                       code="idempotency_key_reused", http_status=409) from None
            if not record.completed:
                raise ApplicationError(f"A request with {HEADER} {key!r} is still being processed.",
                                       code="idempotency_in_progress", http_status=409) from None
            response = Response(json.loads(record.response_body), status=record.status_code)
            response["Idempotent-Replayed"] = "true"
            return response
        try:
            response = handler(view, request, *args, **kwargs)
        except Exception:
            record.delete()
            raise
        if response.status_code >= 500:
            record.delete()
            return response
        row_update(IdempotencyKey, pk=record.pk, tenant_id=tenant.pk, values={
            "completed": True, "status_code": response.status_code,
            "response_body": json.dumps(response.data, cls=JSONEncoder), "updated_at": timezone.now()})
        return response

    return wrapper


def idempotency_keys_purge() -> int:
    deleted, _ = IdempotencyKey.all_tenants.filter(created_at__lt=timezone.now() - KEEP).delete()
    return deleted
