"""Forms for the numbers settings pages: field shapes only; the services decide. Secret fields
use PasswordInput without render_value, so a submitted secret is never written back into the
page, not even after a validation error."""

from __future__ import annotations

from django import forms

from .models import DEFAULT_MESSAGES_PER_SECOND, MAX_MESSAGES_PER_SECOND, PhoneNumber
from .services import PROVIDER_SECRETS


def _secret(label: str, help_text: str = "", required: bool = True) -> forms.CharField:
    return forms.CharField(label=label, help_text=help_text, required=required, max_length=1000, strip=True,
                           widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password",
                                                                                  "spellcheck": "false"}))


def _text(label: str, help_text: str = "", required: bool = True, max_length: int = 128, **attrs: str) -> forms.CharField:
    return forms.CharField(label=label, help_text=help_text, required=required, max_length=max_length, strip=True,
                           widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false", **attrs}))


class _ThroughputMixin(forms.Form):
    messages_per_second = forms.IntegerField(
        label="Throughput budget (messages/s)", min_value=1, max_value=MAX_MESSAGES_PER_SECOND,
        initial=DEFAULT_MESSAGES_PER_SECOND,
        help_text=f"Parley never sends faster than this. Meta's standard is 80/s; up to {MAX_MESSAGES_PER_SECOND}/s "
                  "once Meta raises the number's throughput.")


class MetaCloudNumberForm(_ThroughputMixin):
    provider = PhoneNumber.Provider.META_CLOUD
    phone_number_id = _text("Phone number ID", "WhatsApp Manager → API Setup. Digits, not the phone number.",
                            inputmode="numeric", placeholder="106540352242922")
    waba_id = _text("WhatsApp Business Account ID", placeholder="102290129340398", inputmode="numeric")
    access_token = _secret("Access token", "A permanent system-user token with whatsapp_business_messaging.")
    app_secret = _secret("App secret", "App settings → Basic. Parley checks every webhook's signature with it.")
    display_number = _text("Display number", "Leave empty and Parley asks Meta for it.",
                           required=False, max_length=32, placeholder="+1 555 000 1111", inputmode="tel")
    display_name = _text("Name in Parley", required=False, max_length=200, placeholder="Support line")
    graph_api_url = forms.URLField(
        label="Graph API base URL", required=False, assume_scheme="https",
        help_text="Leave empty for Meta (https://graph.facebook.com). Set it to a Cloud API emulator's address "
                  "for testing.", widget=forms.URLInput(attrs={"placeholder": "https://graph.facebook.com"}))


class GupshupNumberForm(_ThroughputMixin):
    provider = PhoneNumber.Provider.GUPSHUP
    app_name = _text("App name", "The Gupshup app's name (src.name).", placeholder="AcmeSupport")
    api_key = _secret("API key", "Gupshup dashboard → your profile → API key.")
    source = _text("Source number", "The business number registered on the app, with country code.",
                   max_length=32, placeholder="+91 78348 11114", inputmode="tel")
    display_name = _text("Name in Parley", required=False, max_length=200, placeholder="Support line")


class GupshupPartnerNumberForm(_ThroughputMixin):
    provider = PhoneNumber.Provider.GUPSHUP_PARTNER
    app_id = _text("App ID", "The partner app's id (a UUID).", placeholder="a3f5c1e2-…")
    app_token = _secret("App token", "Partner portal → the app → token.")
    display_number = _text("Display number", "The number registered on the app, with country code.",
                           max_length=32, placeholder="+1 555 000 1111", inputmode="tel")
    display_name = _text("Name in Parley", required=False, max_length=200, placeholder="Support line")


CONNECT_FORMS: dict[str, type[forms.Form]] = {
    PhoneNumber.Provider.META_CLOUD: MetaCloudNumberForm,
    PhoneNumber.Provider.GUPSHUP: GupshupNumberForm,
    PhoneNumber.Provider.GUPSHUP_PARTNER: GupshupPartnerNumberForm,
}


class NumberSettingsForm(forms.Form):
    display_name = _text("Name in Parley", required=False, max_length=200)
    messages_per_second = _ThroughputMixin.base_fields["messages_per_second"]
    graph_api_url = MetaCloudNumberForm.base_fields["graph_api_url"]
    access_token = _secret("New access token", required=False)
    app_secret = _secret("New app secret", required=False)
    api_key = _secret("New API key", required=False)
    app_token = _secret("New app token", required=False)

    SECRET_FIELDS = ("access_token", "app_secret", "api_key", "app_token")

    def __init__(self, *args, phone_number: PhoneNumber, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        keep = set(PROVIDER_SECRETS[phone_number.provider])
        for name in self.SECRET_FIELDS:
            if name not in keep:
                del self.fields[name]
        if phone_number.provider != PhoneNumber.Provider.META_CLOUD:
            del self.fields["graph_api_url"]

    def secret_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in self.SECRET_FIELDS if name in self.fields]
