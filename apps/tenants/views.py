from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth import get_user_model, login
from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect

from apps.core.exceptions import ApplicationError
from apps.phone_numbers.models import PhoneNumber
from apps.phone_numbers.selectors import phone_number_list

from .decorators import TenantHttpRequest, tenant_member_required
from .forms import ROLE_HELP, AcceptInvitationForm, ApiKeyForm, InvitationForm, RoleForm
from .models import Membership
from .roles import landing_section, role_may
from .selectors import (
    access_api_key,
    access_invitation,
    access_membership,
    access_tenant,
    api_key_list,
    invitation_get_by_token,
    invitation_pending_list,
    member_list,
    membership_list_for_user,
)
from .services import (
    api_key_create,
    api_key_revoke,
    invitation_accept,
    invitation_accept_new_user,
    invitation_check,
    invitation_create,
    invitation_revoke,
    membership_remove,
    membership_role_change,
    ownership_transfer,
)

SECTION_URL_NAMES = {
    "inbox": "conversations:inbox",
    "campaigns": "campaigns:list",
    "contacts": "contacts:list",
    "templates": "message_templates:list",
    "settings": "tenants:settings",
}


def landing_url(*, tenant_slug: str, role: str) -> str:
    return reverse(SECTION_URL_NAMES[landing_section(role)], kwargs={"tenant_slug": tenant_slug})


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    """After login: the only workspace's landing page, or the picker."""
    memberships = list(membership_list_for_user(user=request.user)[:2])
    if len(memberships) == 1:
        membership = memberships[0]
        return redirect(landing_url(tenant_slug=membership.tenant.slug, role=membership.role))
    return redirect("tenants:picker")


@require_GET
def tenant_picker(request: HttpRequest) -> HttpResponse:
    memberships = membership_list_for_user(user=request.user)
    return render(request, "tenants/picker.html", {"memberships": memberships})


@require_GET
def tenant_root(request: HttpRequest, tenant_slug: str) -> HttpResponse:
    _, membership = access_tenant(user=request.user, tenant_slug=tenant_slug)
    return redirect(landing_url(tenant_slug=tenant_slug, role=membership.role))



# -- settings overview ------------------------------------------------------------------------


@require_GET
@tenant_member_required("settings")
def settings_overview(request: TenantHttpRequest, tenant_slug: str) -> HttpResponse:
    """A landing page: one card per settings section the role may open, with its state."""
    tenant, role = request.tenant, request.membership.role
    context: dict[str, Any] = {"section": "settings"}
    if role_may(role, "settings.numbers"):
        numbers = list(phone_number_list(tenant=tenant))
        context["numbers"] = numbers
        context["numbers_attention"] = [n for n in numbers if n.status in (PhoneNumber.Status.ERROR,
                                                                             PhoneNumber.Status.DISABLED)]
    if role_may(role, "settings.team"):
        context["members"] = list(member_list(tenant=tenant))
        context["pending_invitations"] = invitation_pending_list(tenant=tenant).count()
    if role_may(role, "settings.api_keys"):
        keys = list(api_key_list(tenant=tenant))
        context["active_keys"] = [k for k in keys if k.revoked_at is None]
    context["may_webhooks"] = role_may(role, "settings.webhooks")
    return render(request, "tenants/settings.html", context)


# -- team ---------------------------------------------------------------------------------------

TEAM_PAGE = "tenants/team.html"


def _team_context(request: TenantHttpRequest, **extra: Any) -> dict[str, Any]:
    members = list(member_list(tenant=request.tenant))
    return {
        "section": "settings", "members": members,
        "owner_count": sum(1 for m in members if m.role == Membership.Role.OWNER),
        "invitations": list(invitation_pending_list(tenant=request.tenant)),
        "roles": Membership.Role.choices, "role_help": [(Membership.Role(k).label, v) for k, v in ROLE_HELP.items()],
        "is_owner": request.membership.role == Membership.Role.OWNER,
        "invite_form": extra.pop("invite_form", None) or InvitationForm(allow_owner=_is_owner(request)),
        **extra,
    }


def _is_owner(request: TenantHttpRequest) -> bool:
    return request.membership.role == Membership.Role.OWNER


def _invitation_url(request: HttpRequest, token: str) -> str:
    return request.build_absolute_uri(reverse("tenants:invitation", kwargs={"token": token}))


@require_http_methods(["GET", "POST"])
@tenant_member_required("settings.team")
def team(request: TenantHttpRequest, tenant_slug: str) -> HttpResponse:
    """GET: members, pending invitations and the invite form. POST: invite."""
    if request.method == "GET":
        return render(request, TEAM_PAGE, _team_context(request))
    # Bound with every role, so the service explains who may invite an owner; shown without it.
    form = InvitationForm(request.POST, allow_owner=True)
    valid = form.is_valid()
    if not _is_owner(request):
        form.fields["role"].choices = InvitationForm(allow_owner=False).fields["role"].choices
    sent = None
    if valid:
        try:
            invitation, token = invitation_create(
                tenant=request.tenant, email=form.cleaned_data["email"], role=form.cleaned_data["role"],
                invited_by=request.membership, accept_url_for=lambda t: _invitation_url(request, t))
        except ApplicationError as exc:
            form.add_error("email" if exc.code in ("invalid_email", "already_member") else None, exc.message)
        else:
            sent = {"invitation": invitation, "url": _invitation_url(request, token)}
            form = InvitationForm(initial={"role": form.cleaned_data["role"]}, allow_owner=_is_owner(request))
    context = _team_context(request, invite_form=form, sent=sent)
    if request.htmx:
        return render(request, f"{TEAM_PAGE}#invite-panel", context)
    return render(request, TEAM_PAGE, context, status=200 if sent else 422)


def _team_row(request: TenantHttpRequest, membership: Membership, error: str = "") -> HttpResponse:
    context = _team_context(request, m=membership, row_error=error)
    return render(request, f"{TEAM_PAGE}#member-row", context)


@require_POST
@tenant_member_required("settings.team")
def member_role(request: TenantHttpRequest, tenant_slug: str, membership_id: int) -> HttpResponse:
    membership = access_membership(tenant=request.tenant, membership_id=membership_id)
    form = RoleForm(request.POST)
    error = ""
    if not form.is_valid():
        error = "Choose one of the roles."
    else:
        try:
            membership = membership_role_change(tenant=request.tenant, actor=request.membership,
                                                membership_id=membership.pk, role=form.cleaned_data["role"])
        except ApplicationError as exc:
            error = exc.message
    if membership.pk == request.membership.pk and not error and not role_may(membership.role, "settings.team"):
        # You gave away your own access to this page.
        return _leave(request, f"You are now {membership.get_role_display().lower()}.")
    if request.htmx:
        membership.refresh_from_db()
        return _team_row(request, membership, error)
    if error:
        messages.error(request, error)
    else:
        messages.success(request, f"{membership.user.email} is now {membership.get_role_display().lower()}.")
    return redirect("tenants:team", tenant_slug=tenant_slug)


def _leave(request: TenantHttpRequest, message: str) -> HttpResponse:
    messages.success(request, message)
    url = reverse("tenants:root", kwargs={"tenant_slug": request.tenant.slug})
    if not Membership.objects.for_tenant(request.tenant).filter(user=request.user).exists():
        url = reverse("tenants:home")
    return HttpResponseClientRedirect(url) if request.htmx else redirect(url)


def _unconfirmed(request: TenantHttpRequest, message: str) -> HttpResponse:
    """Removal and transfer change who may enter: they need the form's explicit confirm value."""
    messages.error(request, message)
    url = reverse("tenants:team", kwargs={"tenant_slug": request.tenant.slug})
    return HttpResponseClientRedirect(url) if request.htmx else redirect(url)


@require_POST
@tenant_member_required("settings.team")
def member_remove(request: TenantHttpRequest, tenant_slug: str, membership_id: int) -> HttpResponse:
    membership = access_membership(tenant=request.tenant, membership_id=membership_id)
    if request.POST.get("confirm") != "remove":
        return _unconfirmed(request, "Confirm the removal: press Remove and accept the question.")
    try:
        membership_remove(tenant=request.tenant, actor=request.membership, membership_id=membership.pk)
    except ApplicationError as exc:
        if request.htmx:
            return _team_row(request, membership, exc.message)
        messages.error(request, exc.message)
        return redirect("tenants:team", tenant_slug=tenant_slug)
    if membership.pk == request.membership.pk:
        return _leave(request, f"You left {request.tenant.name}.")
    if request.htmx:
        return HttpResponse("")
    messages.success(request, f"Removed {membership.user.email} from {request.tenant.name}.")
    return redirect("tenants:team", tenant_slug=tenant_slug)


@require_POST
@tenant_member_required("settings.team")
def member_transfer(request: TenantHttpRequest, tenant_slug: str, membership_id: int) -> HttpResponse:
    membership = access_membership(tenant=request.tenant, membership_id=membership_id)
    if request.POST.get("confirm") != "transfer":
        return _unconfirmed(request, "Confirm the transfer: press Make owner and accept the question.")
    try:
        target = ownership_transfer(tenant=request.tenant, actor=request.membership, membership_id=membership.pk)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"{target.user.email} now owns {request.tenant.name}; you are an admin.")
    url = reverse("tenants:team", kwargs={"tenant_slug": tenant_slug})
    return HttpResponseClientRedirect(url) if request.htmx else redirect(url)


@require_POST
@tenant_member_required("settings.team")
def invitation_withdraw(request: TenantHttpRequest, tenant_slug: str, invitation_id: int) -> HttpResponse:
    invitation = access_invitation(tenant=request.tenant, invitation_id=invitation_id)
    try:
        invitation_revoke(tenant=request.tenant, invitation_id=invitation.pk)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        if request.htmx:
            return HttpResponse("")
        messages.success(request, f"Withdrew the invitation to {invitation.email}.")
    url = reverse("tenants:team", kwargs={"tenant_slug": tenant_slug})
    return HttpResponseClientRedirect(url) if request.htmx else redirect(url)


# -- invitations (no workspace in the URL: the token names it) -----------------------------


@login_not_required
@require_http_methods(["GET", "POST"])
def invitation(request: HttpRequest, token: str) -> HttpResponse:
    """Accept an invitation: a signed-in user joins with one click (if the invitation is
    theirs); someone without an account sets a name and password; someone with an account
    signs in first."""
    found = invitation_get_by_token(token=token)
    try:
        invite = invitation_check(found)
    except ApplicationError as exc:
        return render(request, "tenants/invitation.html", {"problem": exc.message}, status=exc.http_status)
    User = get_user_model()
    user = request.user
    has_account = User.objects.filter(username=invite.email).exists()
    form = AcceptInvitationForm(request.POST or None) if not user.is_authenticated and not has_account else None
    error = ""
    if request.method == "POST":
        try:
            if user.is_authenticated:
                membership = invitation_accept(token=token, user=user)
            elif form is not None and form.is_valid():
                membership = invitation_accept_new_user(token=token, name=form.cleaned_data["name"],
                                                        password=form.cleaned_data["password"])
                login(request, membership.user)
            else:
                membership = None
                if form is None:
                    error = f"An account for {invite.email} already exists: sign in to accept."
        except ApplicationError as exc:
            membership = None
            field = exc.details.get("field") if isinstance(exc.details, dict) else None
            if form is not None and field in ("name", "password"):
                form.add_error(field, exc.message)
            else:
                error = exc.message
        if membership is not None:
            messages.success(request, f"Welcome to {membership.tenant.name}. You joined as "
                                      f"{membership.get_role_display().lower()}.")
            return redirect("tenants:root", tenant_slug=membership.tenant.slug)
    wrong_user = user.is_authenticated and (user.email or "").lower() != invite.email
    return render(request, "tenants/invitation.html", {
        "invite": invite, "form": form, "error": error, "has_account": has_account, "wrong_user": wrong_user,
        "login_url": f"{reverse('login')}?next={request.path}",
    }, status=422 if request.method == "POST" else 200)


# -- API keys -----------------------------------------------------------------------------------

KEYS_PAGE = "tenants/api_keys.html"


def _keys_context(request: TenantHttpRequest, **extra: Any) -> dict[str, Any]:
    return {"section": "settings", "api_keys": list(api_key_list(tenant=request.tenant).select_related("created_by")),
            "form": extra.pop("form", None) or ApiKeyForm(),
            "api_base": request.build_absolute_uri("/api/v1"), **extra}


@require_http_methods(["GET", "POST"])
@tenant_member_required("settings.api_keys")
def api_keys(request: TenantHttpRequest, tenant_slug: str) -> HttpResponse:
    """GET: the keys. POST: create one; its plaintext is in this answer and nowhere else."""
    if request.method == "GET":
        return render(request, KEYS_PAGE, _keys_context(request))
    form = ApiKeyForm(request.POST)
    created = None
    if form.is_valid():
        try:
            api_key, plaintext = api_key_create(tenant=request.tenant, name=form.cleaned_data["name"],
                                                created_by=request.user)
        except ApplicationError as exc:
            form.add_error("name", exc.message)
        else:
            created = {"key": api_key, "plaintext": plaintext}
            form = ApiKeyForm()
    context = _keys_context(request, form=form, created=created)
    if request.htmx:
        response = render(request, f"{KEYS_PAGE}#key-panel", context)
    else:
        response = render(request, KEYS_PAGE, context, status=200 if created else 422)
    # The one answer that carries a plaintext key must never be cached anywhere.
    response["Cache-Control"] = "no-store"
    return response


@require_POST
@tenant_member_required("settings.api_keys")
def api_key_revoke_view(request: TenantHttpRequest, tenant_slug: str, api_key_id: int) -> HttpResponse:
    api_key = access_api_key(tenant=request.tenant, api_key_id=api_key_id)
    api_key = api_key_revoke(tenant=request.tenant, api_key_id=api_key.pk)
    if request.htmx:
        return render(request, f"{KEYS_PAGE}#key-row", {**_keys_context(request), "k": api_key})
    messages.success(request, f"Revoked the key “{api_key.name}”. Requests that use it are refused from now on.")
    return redirect("tenants:api_keys", tenant_slug=tenant_slug)
