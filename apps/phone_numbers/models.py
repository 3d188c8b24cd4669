from __future__ import annotations

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from apps.core.fields import EncryptedJSONField
from apps.core.models import TenantScopedModel

MAX_MESSAGES_PER_SECOND = 1000
DEFAULT_MESSAGES_PER_SECOND = 80


class PhoneNumber(TenantScopedModel):
    """A WhatsApp business number connected through one provider.

    Provider ids:
      meta_cloud       phone_number_id = Meta's phone number id; waba_id = the WABA
      gupshup          provider_app_id = Gupshup app name (src.name); display_number = source
      gupshup_partner  provider_app_id = Partner app id; phone_number_id = Meta's id when known
    Secrets (access token, app secret, Gupshup api key, partner app token) live in
    ``credentials``, encrypted at rest, and are never shown again after they are saved.
    """

    class Provider(models.TextChoices):
        META_CLOUD = "meta_cloud", "Meta Cloud API"
        GUPSHUP = "gupshup", "Gupshup"
        GUPSHUP_PARTNER = "gupshup_partner", "Gupshup Partner (v3)"

    class Status(models.TextChoices):
        CONNECTED = "connected", "Connected"
        PENDING = "pending", "Pending"
        DISABLED = "disabled", "Disabled"
        ERROR = "error", "Error"

    class Quality(models.TextChoices):
        GREEN = "GREEN", "High"
        YELLOW = "YELLOW", "Medium"
        RED = "RED", "Low"
        UNKNOWN = "UNKNOWN", "Unknown"

    provider = models.CharField(max_length=32, choices=Provider.choices)
    display_number = models.CharField(max_length=20, help_text="E.164 digits, no '+'")
    display_name = models.CharField(max_length=200, blank=True)
    phone_number_id = models.CharField(max_length=64, blank=True, default="")
    waba_id = models.CharField(max_length=64, blank=True, default="")
    provider_app_id = models.CharField(max_length=128, blank=True, default="")
    graph_api_url = models.URLField(blank=True, default="", help_text="Overrides META_GRAPH_API_URL for this number")
    credentials = EncryptedJSONField(default=dict, blank=True)
    verify_token = models.CharField(max_length=128, blank=True, default="")
    webhook_token = models.CharField(max_length=64, unique=True)
    messages_per_second = models.PositiveIntegerField(
        default=DEFAULT_MESSAGES_PER_SECOND,
        validators=[MinValueValidator(1), MaxValueValidator(MAX_MESSAGES_PER_SECOND)],
    )
    quality_rating = models.CharField(max_length=8, choices=Quality.choices, default=Quality.UNKNOWN)
    messaging_limit_tier = models.CharField(max_length=32, blank=True, default="")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.CONNECTED)
    status_detail = models.TextField(blank=True, default="")
    last_webhook_at = models.DateTimeField(null=True, blank=True)

    # A provider id names exactly one number in the world, so webhook routing can find it
    # before any tenant is known.
    GLOBAL_UNIQUE_CONSTRAINTS = ("phone_number_unique_provider_id",)

    class Meta(TenantScopedModel.Meta):
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "phone_number_id"],
                condition=~models.Q(phone_number_id=""),
                name="phone_number_unique_provider_id",
            ),
            models.UniqueConstraint(fields=["tenant", "provider", "display_number"],
                                    name="phone_number_unique_display_per_tenant"),
            models.CheckConstraint(
                condition=models.Q(messages_per_second__gte=1, messages_per_second__lte=MAX_MESSAGES_PER_SECOND),
                name="phone_number_mps_in_range",
            ),
        ]
        indexes = [
            models.Index(fields=["verify_token"], name="phone_number_verify_token_idx"),
            models.Index(fields=["provider", "provider_app_id"], name="phone_number_app_idx"),
        ]
        ordering = ["display_number"]

    def __str__(self) -> str:
        return f"+{self.display_number} ({self.get_provider_display()})"
