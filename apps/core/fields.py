"""Provider secrets encrypted at rest with Fernet (AES-128-CBC + HMAC-SHA256).

FIELD_ENCRYPTION_KEY holds one or more comma-separated Fernet keys: the first encrypts, every
one decrypts, so keys can be rotated by prepending a new one and re-saving rows.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models

PREFIX = "fernet:"


@lru_cache(maxsize=8)
def _fernet_for(keys: str) -> MultiFernet:
    parts = [k.strip() for k in keys.split(",") if k.strip()]
    if not parts:
        raise ImproperlyConfigured("FIELD_ENCRYPTION_KEY is empty: provider secrets cannot be encrypted.")
    try:
        return MultiFernet([Fernet(k) for k in parts])
    except ValueError as exc:
        raise ImproperlyConfigured(
            "FIELD_ENCRYPTION_KEY must be url-safe base64 Fernet keys (32 bytes each); "
            "make one with: python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'"
        ) from exc


def fernet() -> MultiFernet:
    return _fernet_for(settings.FIELD_ENCRYPTION_KEY)


def encrypt_str(value: str) -> str:
    return PREFIX + fernet().encrypt(value.encode()).decode()


def decrypt_str(value: str) -> str:
    if not value.startswith(PREFIX):
        raise ValueError("value is not an encrypted Parley field")
    try:
        return fernet().decrypt(value[len(PREFIX):].encode()).decode()
    except InvalidToken as exc:
        raise ImproperlyConfigured(
            "A stored secret cannot be decrypted with FIELD_ENCRYPTION_KEY (wrong or rotated-out key)."
        ) from exc


class EncryptedTextField(models.TextField):
    """A string stored encrypted. Not searchable; empty string stays empty."""

    def get_prep_value(self, value: Any) -> Any:
        value = super().get_prep_value(value)
        if value in (None, ""):
            return value
        return encrypt_str(str(value))

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Any:
        if value in (None, ""):
            return value
        return decrypt_str(value)


class EncryptedJSONField(models.TextField):
    """A JSON object stored encrypted as one opaque string."""

    def get_prep_value(self, value: Any) -> Any:
        if value is None:
            return None
        return encrypt_str(json.dumps(value, sort_keys=True))

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Any:
        if value in (None, ""):
            return {} if value == "" else None
        return json.loads(decrypt_str(value))

    def to_python(self, value: Any) -> Any:
        if isinstance(value, str) and value:
            if value.startswith(PREFIX):
                return json.loads(decrypt_str(value))
            return json.loads(value)
        return value

    def value_to_string(self, obj: Any) -> str:
        return json.dumps(self.value_from_object(obj))
