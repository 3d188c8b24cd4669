"""Forms for the template pages. The builder's own fields are read by
``apps.message_templates.builder.draft_from_data`` (variable examples and buttons are dynamic);
these forms cover the list filters."""

from __future__ import annotations

from django import forms

from .models import MessageTemplate

LIST_STATUSES = ("APPROVED", "PENDING", "REJECTED", "PAUSED", "DISABLED", "DELETED")


class TemplateFilterForm(forms.Form):
    number = forms.TypedChoiceField(required=False, coerce=int, empty_value=None)
    status = forms.ChoiceField(required=False, choices=[("", "Any status")] + [
        (value, MessageTemplate.Status(value).label) for value in LIST_STATUSES])
    q = forms.CharField(required=False, max_length=100)

    def __init__(self, *args, numbers=(), **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["number"].choices = [("", "All numbers")] + [
            (n.pk, f"+{n.display_number}" + (f" · {n.display_name}" if n.display_name else "")) for n in numbers]

    def filters(self) -> dict:
        if not self.is_valid():
            return {}
        data = self.cleaned_data
        return {"phone_number_id": data.get("number"), "status": data.get("status") or None,
                "search": data.get("q") or None}
