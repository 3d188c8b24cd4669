"""Provider backends, chosen per phone number by its ``provider`` (settings.WHATSAPP_BACKENDS)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.utils.module_loading import import_string

from apps.providers.exceptions import ProviderConfigurationError

if TYPE_CHECKING:
    from apps.phone_numbers.models import PhoneNumber
    from apps.providers.backends.base import BaseBackend


def get_backend(phone_number: PhoneNumber, **options: Any) -> BaseBackend:
    """The backend for ``phone_number``, like Django's ``get_connection``."""
    try:
        path = settings.WHATSAPP_BACKENDS[phone_number.provider]
    except KeyError:
        raise ProviderConfigurationError(
            f"no backend configured for provider {phone_number.provider!r}",
            provider=str(phone_number.provider),
            title="Unknown provider",
            explanation=f"WHATSAPP_BACKENDS has no entry for the provider {phone_number.provider!r}.",
        ) from None
    backend_class = import_string(path)
    return backend_class(phone_number=phone_number, **options)
