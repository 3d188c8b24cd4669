"""Forms for the webhook endpoint settings pages. They only shape input; the services
(``webhook_endpoint_create`` / ``webhook_endpoint_update``) validate URLs, events and formats."""

from __future__ import annotations

from django import forms

from .models import EVENT_TYPES, WebhookEndpoint

EVENT_DESCRIPTIONS = {
    "message.received": "A customer sent a message",
    "message.accepted": "The provider accepted an outbound message",
    "message.sent": "An outbound message left WhatsApp's servers",
    "message.delivered": "An outbound message reached the phone",
    "message.read": "The customer read an outbound message",
    "message.failed": "An outbound message failed, with the reason",
    "conversation.opened": "A conversation was opened or reopened",
    "conversation.assigned": "A conversation was assigned to an agent",
    "conversation.resolved": "A conversation was resolved",
    "campaign.started": "A campaign started sending",
    "campaign.completed": "A campaign finished",
    "template.status_changed": "Meta approved, rejected or paused a template",
    "contact.opted_out": "A contact opted out",
}
# The event types Meta's webhook format can carry (the others never reach a Meta-format endpoint).
META_FORMAT_HINT = ("Meta's format carries received messages and message statuses only, signed with "
                    "X-Hub-Signature-256, so a bot written for the Cloud API reads it unchanged.")


class EndpointForm(forms.Form):
    SCOPE_ALL = "all"
    SCOPE_SELECTED = "selected"

    url = forms.CharField(label="Endpoint URL", max_length=500,
                          widget=forms.TextInput(attrs={"placeholder": "https://crm.example.com/parley/webhooks",
                                                        "autocomplete": "off", "spellcheck": "false"}),
                          help_text="Parley POSTs each event here as JSON and expects a 2xx within 10 seconds.")
    description = forms.CharField(label="Description", max_length=200, required=False,
                                  widget=forms.TextInput(attrs={"placeholder": "What receives these events"}))
    format = forms.ChoiceField(label="Format", choices=WebhookEndpoint.Format.choices,
                               initial=WebhookEndpoint.Format.PARLEY, widget=forms.RadioSelect)
    scope = forms.ChoiceField(label="Events", initial=SCOPE_ALL, widget=forms.RadioSelect,
                              choices=[(SCOPE_ALL, "Every event, including types added later"),
                                       (SCOPE_SELECTED, "Only the events I choose")])
    events = forms.MultipleChoiceField(label="Event types", required=False, widget=forms.CheckboxSelectMultiple,
                                       choices=[(event, event) for event in EVENT_TYPES])

    def clean(self) -> dict:
        data = super().clean()
        if data.get("scope") == self.SCOPE_SELECTED and not data.get("events"):
            self.add_error("events", "Choose at least one event type, or subscribe to every event.")
        return data

    @property
    def chosen_events(self) -> list[str]:
        """What the services take: an empty list means every event type."""
        if self.cleaned_data.get("scope") == self.SCOPE_ALL:
            return []
        return list(self.cleaned_data.get("events") or [])

    @classmethod
    def for_endpoint(cls, endpoint: WebhookEndpoint) -> EndpointForm:
        return cls(initial={
            "url": endpoint.url, "description": endpoint.description, "format": endpoint.format,
            "scope": cls.SCOPE_SELECTED if endpoint.events else cls.SCOPE_ALL, "events": list(endpoint.events),
        })

    def event_groups(self) -> list[tuple[str, list[tuple[str, str, bool]]]]:
        """Checkbox rows grouped by resource: ``[(group, [(event, description, checked), …]), …]``."""
        if self.is_bound:
            checked = set(self.data.getlist("events")) if hasattr(self.data, "getlist") else set()
        else:
            checked = set(self.initial.get("events") or [])
        groups: dict[str, list[tuple[str, str, bool]]] = {}
        for event in EVENT_TYPES:
            groups.setdefault(event.split(".")[0], []).append((event, EVENT_DESCRIPTIONS.get(event, ""), event in checked))
        return [(group.capitalize() + "s", rows) for group, rows in groups.items()]
