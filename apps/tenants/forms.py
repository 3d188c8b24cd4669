"""Field shapes for the team and API key pages; the services decide."""

from __future__ import annotations

from django import forms

from .models import Membership

ROLE_HELP = {
    Membership.Role.OWNER: "Everything, including ownership and removing admins.",
    Membership.Role.ADMIN: "Everything but ownership: numbers, team, keys, webhooks, inbox and campaigns.",
    Membership.Role.AGENT: "The inbox, contacts and templates.",
    Membership.Role.MARKETER: "Campaigns, contacts and templates.",
    Membership.Role.DEVELOPER: "API keys, webhooks and templates.",
}


class InvitationForm(forms.Form):
    email = forms.EmailField(label="Email", max_length=254,
                             widget=forms.EmailInput(attrs={"placeholder": "colleague@company.com",
                                                            "autocomplete": "off"}))
    role = forms.ChoiceField(label="Role", choices=Membership.Role.choices, initial=Membership.Role.AGENT)

    def __init__(self, *args, allow_owner: bool = False, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if not allow_owner:
            self.fields["role"].choices = [c for c in Membership.Role.choices if c[0] != Membership.Role.OWNER]


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=Membership.Role.choices)


class ApiKeyForm(forms.Form):
    name = forms.CharField(label="Name", max_length=100, strip=True,
                           widget=forms.TextInput(attrs={"placeholder": "CRM integration", "autocomplete": "off"}))


class AcceptInvitationForm(forms.Form):
    name = forms.CharField(label="Your name", max_length=300, strip=True,
                           widget=forms.TextInput(attrs={"autocomplete": "name", "placeholder": "Ana Souza"}))
    password = forms.CharField(label="Choose a password", strip=False,
                               widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}))
    password_again = forms.CharField(label="Password again", strip=False,
                                     widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}))

    def clean(self) -> dict:
        data = super().clean()
        if data.get("password") and data.get("password_again") and data["password"] != data["password_again"]:
            self.add_error("password_again", "The two passwords differ.")
        return data
