"""The agent inbox. One page (``inbox``) serves the list, a thread, and their fragments; the
actions answer with out-of-band swaps of exactly what changed, the same way the 2-second
poll (``inbox_changes``) does, so the composer and the scroll position are never reset."""

from __future__ import annotations

import mimetypes
import os
from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import FileResponse, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import push_url, reswap, retarget, trigger_client_event

from apps.core.exceptions import ApplicationError
from apps.tenants.decorators import TenantHttpRequest, tenant_member_required
from apps.tenants.models import Membership

from . import inbox_selectors as sel
from .inbox_selectors import Cursor, InboxFilters
from .models import CannedResponse, Conversation, Label, Media
from .selectors import access_media
from .services import inbox as actions
from .services.inbox_settings import (
    canned_response_delete,
    canned_response_save,
    label_delete,
    label_save,
)

PAGE = "conversations/inbox.html"
# Files a browser may show inline; anything else is served as a download.
INLINE_MIME_TYPES = {"image/jpeg", "image/png", "image/webp", "image/gif", "video/mp4", "video/3gpp", "audio/aac",
                     "audio/amr", "audio/mpeg", "audio/mp4", "audio/ogg"}
MANAGING_ROLES = (Membership.Role.OWNER, Membership.Role.ADMIN)
LABEL_SWATCHES = ("#2f6fd6", "#0d7a63", "#b7791f", "#c93b3b", "#7b4fd6", "#d6478f", "#3a8fa3", "#5f6b76")


def _render(request: TenantHttpRequest, template_name: str, context: dict[str, Any],
            status: int = 200) -> HttpResponse:
    """Render in the workspace's time zone, so times and day separators read locally."""
    with timezone.override(request.tenant.time_zone):
        return render(request, template_name, {"section": "inbox", **context}, status=status)


def _int(value: Any) -> int | None:
    text = str(value or "").strip()
    return int(text) if text.isdigit() and len(text) < 19 else None


def _fragment_request(request: TenantHttpRequest) -> bool:
    return bool(request.htmx) and not request.htmx.history_restore_request


# --- context builders -----------------------------------------------------------------------

def _list_context(request: TenantHttpRequest, filters: InboxFilters, active_id: int | None,
                  labels: list[Label] | None = None, lazy: bool = False) -> dict[str, Any]:
    """The list pane. ``lazy`` leaves the rows out: the list body then loads them in a request
    of its own, as it does the tab counts."""
    tenant, user = request.tenant, request.user
    labels = labels if labels is not None else list(sel.label_list(tenant=tenant))
    rows, next_cursor = (None, None) if lazy else sel.conversation_page(tenant=tenant, user=user, filters=filters,
                                                                        labels=labels)
    return {
        "filters": filters, "rows": rows, "next_cursor": next_cursor, "active_id": active_id,
        # The tab counts come in their own request (``?counts``): counting a large workspace
        # costs more than the page itself.
        "counts": None, "views": sel.VIEWS, "statuses": Conversation.Status.choices,
        "numbers": sel.inbox_numbers(tenant=tenant), "labels": labels,
        "list_url": reverse("conversations:inbox", kwargs={"tenant_slug": tenant.slug}),
    }


def _thread_context(request: TenantHttpRequest, conversation: Conversation,
                    labels: list[Label] | None = None) -> dict[str, Any]:
    tenant = request.tenant
    messages, has_older = sel.thread_messages(tenant=tenant, conversation=conversation)
    mode = sel.composer_mode(conversation)
    return {
        "conversation": conversation, "thread_messages": messages, "has_older": has_older,
        "oldest_id": messages[0].pk if messages else 0, "mode": mode,
        "labels": labels if labels is not None else list(sel.label_list(tenant=tenant)),
        "conversation_label_ids": {label.pk for label in conversation.label_list},
        "members": sel.inbox_members(tenant=tenant),
        "templates": sel.approved_templates(tenant=tenant, conversation=conversation) if mode == "template" else [],
        "tags": sel.contact_tags(tenant=tenant, conversation=conversation),
        "others": sel.other_conversations(tenant=tenant, conversation=conversation),
    }


def _poller_context(since=None) -> dict[str, Any]:
    return {"since": sel.timestamp_micros(since or timezone.now())}


# --- the page -------------------------------------------------------------------------------

@require_GET
@vary_on_headers("HX-Request", "HX-Target")
@tenant_member_required("inbox")
def inbox(request: TenantHttpRequest, tenant_slug: str, conversation_id: int | None = None) -> HttpResponse:
    """The inbox: the list, and the thread when a conversation is open. HTMX asks for one
    part: the next page of the list (``cursor``), earlier messages (``before``), the list pane
    (filters) or the thread pane (a conversation opened from the list)."""
    tenant = request.tenant
    filters = InboxFilters.from_query(request.GET)
    labels = list(sel.label_list(tenant=tenant)) if conversation_id is not None else None
    conversation = (sel.access_inbox_conversation(tenant=tenant, conversation_id=conversation_id, labels=labels)
                    if conversation_id is not None else None)
    fragment = _fragment_request(request)
    target = request.htmx.target if fragment else None
    active_id = conversation.pk if conversation else _int(request.GET.get("active"))

    if fragment and "cursor" in request.GET:
        rows, next_cursor = sel.conversation_page(tenant=tenant, user=request.user, filters=filters,
                                                  cursor=Cursor.decode(request.GET.get("cursor")))
        return _render(request, f"{PAGE}#conversation-page", {
            "rows": rows, "next_cursor": next_cursor, "filters": filters, "active_id": active_id,
            "list_url": reverse("conversations:inbox", kwargs={"tenant_slug": tenant.slug})})
    if fragment and conversation is not None and "before" in request.GET:
        messages, has_older = sel.thread_messages(tenant=tenant, conversation=conversation,
                                                  before_id=_int(request.GET.get("before")))
        return _render(request, f"{PAGE}#older-messages", {
            "conversation": conversation, "thread_messages": messages, "has_older": has_older})
    if fragment and "counts" in request.GET:
        return _render(request, f"{PAGE}#inbox-tabs", {
            "filters": filters, "views": sel.VIEWS, "statuses": Conversation.Status.choices,
            "counts": sel.conversation_counts(tenant=tenant, user=request.user, filters=filters),
            "list_url": reverse("conversations:inbox", kwargs={"tenant_slug": tenant.slug})})
    if fragment and target == "list-body":
        return _render(request, f"{PAGE}#list-body", _list_context(request, filters, active_id, labels=labels))

    if fragment and target == "thread-pane":
        context = {"filters": filters, "active_id": active_id,
                   "list_url": reverse("conversations:inbox", kwargs={"tenant_slug": tenant.slug})}
        if conversation is not None:
            context.update(_thread_context(request, conversation, labels=labels))
        return _render(request, f"{PAGE}#thread-pane-content", context)

    # A conversation opened by its address shows its thread first; the list follows at once in
    # its own request, so neither waits for the other.
    context = _list_context(request, filters, active_id, labels=labels, lazy=conversation is not None)
    if conversation is not None:
        context.update(_thread_context(request, conversation, labels=context["labels"]))
    context.update(_poller_context())
    return _render(request, PAGE, context)


# --- live updates ---------------------------------------------------------------------------

def _changes_response(request: TenantHttpRequest, *, since, conversation_id: int | None,
                      with_poller: bool, force_thread: bool = False, allow_empty: bool = True) -> HttpResponse:
    """The out-of-band swaps of what changed since ``since``: conversation rows (or their
    removal from a list they no longer belong to), the tab counts, the open thread's head,
    side panel and composer (the latter only when its mode changed), and new or changed
    message rows. 204 when there is nothing to swap."""
    tenant, data = request.tenant, (request.POST if request.method == "POST" else request.GET)
    filters = InboxFilters.from_query(data)
    changes = sel.inbox_changes(tenant=tenant, user=request.user, filters=filters, since=since,
                                conversation_id=conversation_id, from_message_id=_int(data.get("from")))
    conversation = changes.conversation
    mode_changed = False
    if conversation is not None:
        if conversation.unread_count and request.method == "GET":
            # The agent is looking at it: what arrives while it is open is read.
            actions.conversation_mark_read(tenant=tenant, conversation=conversation)
            for row in changes.conversations:
                if row.pk == conversation.pk:
                    row.unread_count, row.updated_at = 0, conversation.updated_at
        mode_changed = sel.composer_mode(conversation) != data.get("composer")
    thread_changed = conversation is not None and (changes.conversation_changed or force_thread or mode_changed)
    if allow_empty and changes.empty and not thread_changed:
        return HttpResponse(status=204)
    context: dict[str, Any] = {
        "changes": changes, "filters": filters, "active_id": conversation_id, "counts": changes.counts,
        "conversation": conversation,
        "views": sel.VIEWS, "statuses": Conversation.Status.choices, "with_poller": with_poller,
        "thread_changed": thread_changed, "mode_changed": mode_changed, "thread_messages": changes.messages,
        "list_url": reverse("conversations:inbox", kwargs={"tenant_slug": tenant.slug}),
        **_poller_context(changes.now),
    }
    if thread_changed:
        labels = list(sel.label_list(tenant=tenant))
        if not hasattr(conversation, "label_list"):
            sel.attach_labels(tenant=tenant, conversations=[conversation], labels=labels)
        context.update({
            "conversation": conversation, "mode": sel.composer_mode(conversation),
            "labels": labels,
            "conversation_label_ids": {label.pk for label in conversation.label_list},
            "members": sel.inbox_members(tenant=tenant),
            "tags": sel.contact_tags(tenant=tenant, conversation=conversation),
            "others": sel.other_conversations(tenant=tenant, conversation=conversation),
            "oldest_id": _int(data.get("from")) or 0,
        })
        if mode_changed and context["mode"] == "template":
            context["templates"] = sel.approved_templates(tenant=tenant, conversation=conversation)
    return _render(request, f"{PAGE}#changes", context)


@require_GET
@tenant_member_required("inbox")
def inbox_changes(request: TenantHttpRequest, tenant_slug: str) -> HttpResponse:
    """Polled every 2 s: ``?since=<microseconds>&conversation=<id>`` plus the list's filters."""
    since = sel.from_micros(request.GET.get("since")) or timezone.now()
    return _changes_response(request, since=since, conversation_id=_int(request.GET.get("conversation")),
                             with_poller=True)


def _action_response(request: TenantHttpRequest, conversation: Conversation, started) -> HttpResponse:
    return _changes_response(request, since=started, conversation_id=conversation.pk, with_poller=False,
                             force_thread=True, allow_empty=False)


def _inline_error(request: TenantHttpRequest, error: ApplicationError, target: str) -> HttpResponse:
    response = _render(request, f"{PAGE}#inline-error", {"error": error})
    return reswap(retarget(response, target), "innerHTML")


# --- composing ------------------------------------------------------------------------------

@require_POST
@tenant_member_required("inbox")
def conversation_send(request: TenantHttpRequest, tenant_slug: str, conversation_id: int) -> HttpResponse:
    """A reply (text, or a file with its caption) or a private note. Answers with the new rows
    (queued: the clock shows at once, the ticks follow by the poll), or the service's error
    under the composer, the text left as it was."""
    started = timezone.now()
    conversation = sel.access_inbox_conversation(tenant=request.tenant, conversation_id=conversation_id)
    upload = request.FILES.get("attachment")
    try:
        if request.POST.get("mode") == "note":
            actions.note_add(tenant=request.tenant, conversation=conversation, body=request.POST.get("body", ""),
                             by=request.user)
        else:
            actions.conversation_reply_send(
                tenant=request.tenant, conversation=conversation, body=request.POST.get("body", ""), by=request.user,
                reply_to_id=request.POST.get("reply_to") or None, upload=upload,
                upload_name=upload.name if upload else "", upload_type=upload.content_type if upload else None)
    except ApplicationError as error:
        return _inline_error(request, error, "#composer-error")
    response = _action_response(request, conversation, started)
    return trigger_client_event(response, "parley:sent")


@require_http_methods(["GET", "POST"])
@tenant_member_required("inbox")
def conversation_template(request: TenantHttpRequest, tenant_slug: str, conversation_id: int) -> HttpResponse:
    """GET: the variable form and preview of the chosen template. POST: send it."""
    started = timezone.now()
    tenant = request.tenant
    conversation = sel.access_inbox_conversation(tenant=tenant, conversation_id=conversation_id)
    data = request.POST if request.method == "POST" else request.GET
    template = sel.access_template(tenant=tenant, conversation=conversation, template_id=data.get("template"))
    if request.method == "GET":
        return _render(request, f"{PAGE}#template-form", {
            "conversation": conversation, "template": template,
            "template_fields": actions.template_fields(template) if template else []})
    if template is None:
        return _inline_error(request, ApplicationError("Choose an approved template first."), "#template-error")
    values = {key: value for key, value in request.POST.items()
              if key == "header_media" or key.startswith(("body.", "header.", "button."))}
    try:
        actions.conversation_template_send(tenant=tenant, conversation=conversation, template=template,
                                           values=values, by=request.user)
    except ApplicationError as error:
        return _inline_error(request, error, "#template-error")
    return trigger_client_event(_action_response(request, conversation, started), "parley:sent")


# --- conversation actions -------------------------------------------------------------------

@require_POST
@tenant_member_required("inbox")
def conversation_assign(request: TenantHttpRequest, tenant_slug: str, conversation_id: int) -> HttpResponse:
    started = timezone.now()
    tenant = request.tenant
    conversation = sel.access_inbox_conversation(tenant=tenant, conversation_id=conversation_id)
    choice = request.POST.get("assignee", "")
    assignee = None
    if choice == "me":
        assignee = request.user
    elif choice:
        member = sel.inbox_member(tenant=tenant, user_id=_int(choice))
        if member is None:
            return _inline_error(request, ApplicationError("Choose a member of this workspace with inbox access."),
                                 "#thread-error")
        assignee = member.user
    try:
        actions.conversation_assign(tenant=tenant, conversation=conversation, assignee=assignee, by=request.user)
    except ApplicationError as error:
        return _inline_error(request, error, "#thread-error")
    return _action_response(request, conversation, started)


@require_POST
@tenant_member_required("inbox")
def conversation_status(request: TenantHttpRequest, tenant_slug: str, conversation_id: int) -> HttpResponse:
    started = timezone.now()
    conversation = sel.access_inbox_conversation(tenant=request.tenant, conversation_id=conversation_id)
    try:
        actions.conversation_status_set(tenant=request.tenant, conversation=conversation,
                                        status=request.POST.get("to", ""), by=request.user)
    except ApplicationError as error:
        return _inline_error(request, error, "#thread-error")
    return _action_response(request, conversation, started)


@require_POST
@tenant_member_required("inbox")
def conversation_label(request: TenantHttpRequest, tenant_slug: str, conversation_id: int,
                       label_id: int) -> HttpResponse:
    started = timezone.now()
    conversation = sel.access_inbox_conversation(tenant=request.tenant, conversation_id=conversation_id)
    label = sel.access_label(tenant=request.tenant, label_id=label_id)
    actions.conversation_label_toggle(tenant=request.tenant, conversation=conversation, label=label, by=request.user)
    return _action_response(request, conversation, started)


@require_POST
@tenant_member_required("inbox")
def conversation_read(request: TenantHttpRequest, tenant_slug: str, conversation_id: int) -> HttpResponse:
    """Sent by the thread when it opens on unread messages: the row loses its badge."""
    tenant = request.tenant
    conversation = sel.access_inbox_conversation(tenant=tenant, conversation_id=conversation_id)
    if not actions.conversation_mark_read(tenant=tenant, conversation=conversation):
        return HttpResponse(status=204)
    return _render(request, f"{PAGE}#row-update", {
        "c": conversation, "filters": InboxFilters.from_query(request.POST), "active_id": conversation.pk,
        "match": "update", "list_url": reverse("conversations:inbox", kwargs={"tenant_slug": tenant.slug})})


@require_POST
@tenant_member_required("inbox")
def conversation_unread(request: TenantHttpRequest, tenant_slug: str, conversation_id: int) -> HttpResponse:
    """Mark unread and close the thread, so it stays unread until someone opens it again."""
    tenant = request.tenant
    conversation = sel.access_inbox_conversation(tenant=tenant, conversation_id=conversation_id)
    actions.conversation_mark_unread(tenant=tenant, conversation=conversation)
    filters = InboxFilters.from_query(request.POST)
    conversation.unread_count = max(conversation.unread_count, 1)
    matching = sel.conversation_matches(tenant=tenant, user=request.user, filters=filters,
                                        conversation_ids=[conversation.pk])
    response = _render(request, f"{PAGE}#thread-closed", {
        "c": conversation, "filters": filters, "active_id": None, "matching": conversation.pk in matching,
        "list_url": reverse("conversations:inbox", kwargs={"tenant_slug": tenant.slug})})
    query = filters.query()
    return push_url(response, reverse("conversations:inbox", kwargs={"tenant_slug": tenant.slug})
                    + (f"?{query}" if query else ""))


@require_POST
@tenant_member_required("inbox")
def conversation_opt_in(request: TenantHttpRequest, tenant_slug: str, conversation_id: int) -> HttpResponse:
    started = timezone.now()
    conversation = sel.access_inbox_conversation(tenant=request.tenant, conversation_id=conversation_id)
    actions.conversation_contact_opt_set(tenant=request.tenant, conversation=conversation,
                                         opted_in=request.POST.get("opted_in") == "1", by=request.user)
    return _action_response(request, conversation, started)


# --- media ----------------------------------------------------------------------------------

@require_GET
@tenant_member_required("inbox")
def media_file(request: TenantHttpRequest, tenant_slug: str, media_id: int) -> HttpResponse:
    """A stored file, to members only. Types a browser could run (HTML, SVG ...) are always
    downloads, and nothing is sniffed."""
    media: Media = access_media(tenant=request.tenant, media_id=media_id)
    if media.status != Media.Status.READY or not media.file:
        return HttpResponse(status=204)
    mime_type = (media.mime_type or "application/octet-stream").split(";")[0].strip().lower()
    inline = mime_type in INLINE_MIME_TYPES and request.GET.get("download") != "1"
    extension = mimetypes.guess_extension(mime_type) or ""
    filename = media.filename or f"{os.path.basename(media.file.name) or f'media-{media.pk}{extension}'}"
    response = FileResponse(media.file.open("rb"), content_type=mime_type, as_attachment=not inline,
                            filename=filename)
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response["Cache-Control"] = "private, max-age=3600"
    return response


# --- canned responses and labels ------------------------------------------------------------

def _require_manager(request: TenantHttpRequest, what: str) -> None:
    if request.membership.role not in MANAGING_ROLES:
        raise PermissionDenied(f"Only owners and admins can change {what}.")


@require_http_methods(["GET", "POST"])
@tenant_member_required("inbox")
def canned_responses(request: TenantHttpRequest, tenant_slug: str) -> HttpResponse:
    """The list and the create form; ``?suggest=<prefix>`` is the composer's ``/`` menu."""
    tenant = request.tenant
    if request.method == "GET" and "suggest" in request.GET:
        suggestions = list(sel.canned_response_list(tenant=tenant, prefix=request.GET.get("suggest", "").strip())[:8])
        return _render(request, f"{PAGE}#canned-suggest", {"suggestions": suggestions})
    error, form = None, {"shortcut": "", "content": ""}
    if request.method == "POST":
        _require_manager(request, "canned responses")
        form = {"shortcut": request.POST.get("shortcut", ""), "content": request.POST.get("content", "")}
        try:
            canned = canned_response_save(tenant=tenant, canned=None, **form)
        except ApplicationError as exc:
            if _fragment_request(request):
                return _inline_error(request, exc, "#canned-form-error")
            error = exc
        else:
            if _fragment_request(request):
                response = _render(request, "conversations/canned.html#canned-created",
                                   {"item": canned, "can_manage": True})
                return trigger_client_event(response, "parley:saved")
            form = {"shortcut": "", "content": ""}
    return _render(request, "conversations/canned.html", {
        "items": sel.canned_response_list(tenant=tenant), "form": form, "error": error,
        "can_manage": request.membership.role in MANAGING_ROLES})


@require_http_methods(["GET", "POST"])
@tenant_member_required("inbox")
def canned_response_edit(request: TenantHttpRequest, tenant_slug: str, canned_response_id: int) -> HttpResponse:
    """GET: the row as a form (``?cancel`` the row again). POST: save it."""
    canned = sel.access_canned_response(tenant=request.tenant, canned_response_id=canned_response_id)
    context: dict[str, Any] = {"item": canned, "can_manage": request.membership.role in MANAGING_ROLES}
    if request.method == "GET":
        editing = "cancel" not in request.GET and context["can_manage"]
        return _render(request, "conversations/canned.html#canned-row",
                       {**context, "editing": editing, "form": {"shortcut": canned.shortcut, "content": canned.content}})
    _require_manager(request, "canned responses")
    form = {"shortcut": request.POST.get("shortcut", canned.shortcut), "content": request.POST.get("content", "")}
    try:
        canned = canned_response_save(tenant=request.tenant, canned=canned, **form)
    except ApplicationError as error:
        return _render(request, "conversations/canned.html#canned-row",
                       {**context, "editing": True, "form": form, "error": error})
    return _render(request, "conversations/canned.html#canned-row", {**context, "item": canned, "editing": False})


@require_POST
@tenant_member_required("inbox")
def canned_response_remove(request: TenantHttpRequest, tenant_slug: str, canned_response_id: int) -> HttpResponse:
    canned: CannedResponse = sel.access_canned_response(tenant=request.tenant, canned_response_id=canned_response_id)
    _require_manager(request, "canned responses")
    canned_response_delete(tenant=request.tenant, canned=canned)
    return HttpResponse("")


@require_http_methods(["GET", "POST"])
@tenant_member_required("inbox")
def labels(request: TenantHttpRequest, tenant_slug: str) -> HttpResponse:
    tenant = request.tenant
    error, form = None, {"name": "", "color": LABEL_SWATCHES[0]}
    if request.method == "POST":
        _require_manager(request, "labels")
        form = {"name": request.POST.get("name", ""), "color": request.POST.get("color", "")}
        try:
            label = label_save(tenant=tenant, label=None, **form)
        except ApplicationError as exc:
            if _fragment_request(request):
                return _inline_error(request, exc, "#label-form-error")
            error = exc
        else:
            if _fragment_request(request):
                response = _render(request, "conversations/labels.html#label-created",
                                   {"item": label, "can_manage": True, "swatches": LABEL_SWATCHES})
                return trigger_client_event(response, "parley:saved")
            form = {"name": "", "color": LABEL_SWATCHES[0]}
    return _render(request, "conversations/labels.html", {
        "items": sel.label_list(tenant=tenant), "form": form, "error": error,
        "can_manage": request.membership.role in MANAGING_ROLES, "swatches": LABEL_SWATCHES})



@require_http_methods(["GET", "POST"])
@tenant_member_required("inbox")
def label_edit(request: TenantHttpRequest, tenant_slug: str, label_id: int) -> HttpResponse:
    label: Label = sel.access_label(tenant=request.tenant, label_id=label_id)
    context: dict[str, Any] = {"item": label, "can_manage": request.membership.role in MANAGING_ROLES,
                               "swatches": LABEL_SWATCHES}
    if request.method == "GET":
        editing = "cancel" not in request.GET and context["can_manage"]
        return _render(request, "conversations/labels.html#label-row",
                       {**context, "editing": editing, "form": {"name": label.name, "color": label.color}})
    _require_manager(request, "labels")
    form = {"name": request.POST.get("name", label.name), "color": request.POST.get("color", label.color)}
    try:
        label = label_save(tenant=request.tenant, label=label, **form)
    except ApplicationError as error:
        return _render(request, "conversations/labels.html#label-row",
                       {**context, "editing": True, "form": form, "error": error})
    return _render(request, "conversations/labels.html#label-row", {**context, "item": label, "editing": False})


@require_POST
@tenant_member_required("inbox")
def label_remove(request: TenantHttpRequest, tenant_slug: str, label_id: int) -> HttpResponse:
    label: Label = sel.access_label(tenant=request.tenant, label_id=label_id)
    _require_manager(request, "labels")
    label_delete(tenant=request.tenant, label=label)
    return HttpResponse("")

