"""Reads for the agent inbox: the filtered conversation list with keyset pages and grouped
counts, a thread's messages with reactions attached to what they react to, what the side
panel shows, and "what changed since" for the 2-second poll.

Every function runs a fixed number of queries whatever the page size: related rows come
through select_related / one prefetch, and the list's last-message preview is denormalized
on the conversation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Count, Exists, OuterRef, Q, QuerySet, Sum
from django.http import Http404
from django.utils import timezone

from apps.contacts.models import Tag
from apps.message_templates.models import MessageTemplate
from apps.message_templates.rendering import render_body
from apps.phone_numbers.models import PhoneNumber
from apps.tenants.models import Membership, Tenant
from apps.tenants.roles import SECTION_ROLES

from .models import (
    CannedResponse,
    Conversation,
    ConversationLabel,
    ConversationTally,
    Label,
    Message,
    MessageText,
)

VIEWS = (("mine", "Mine"), ("unassigned", "Unassigned"), ("all", "All"))
VIEW_KEYS = tuple(key for key, _ in VIEWS)
DEFAULT_VIEW = "all"
DEFAULT_STATUS = Conversation.Status.OPEN
LIST_PAGE_SIZE = 50
THREAD_PAGE_SIZE = 50
# The poll re-reads rows changed shortly before its cursor: a transaction that stamped
# updated_at before the previous poll but committed after it is still seen.
CHANGE_LAG = timedelta(seconds=4)
CHANGE_LIMIT = 100
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
CUSTOMER_DIRECTIONS = (Message.Direction.INBOUND, Message.Direction.OUTBOUND)


def _int_or_none(value: Any) -> int | None:
    text = str(value or "").strip()
    return int(text) if text.isdigit() and len(text) < 19 else None


@dataclass(frozen=True)
class InboxFilters:
    view: str = DEFAULT_VIEW
    status: str = DEFAULT_STATUS
    number: int | None = None
    label: int | None = None
    q: str = ""

    @classmethod
    def from_query(cls, data: Any) -> InboxFilters:
        view = data.get("view") or DEFAULT_VIEW
        status = data.get("status") or DEFAULT_STATUS
        return cls(
            view=view if view in VIEW_KEYS else DEFAULT_VIEW,
            status=status if status in Conversation.Status.values else DEFAULT_STATUS,
            number=_int_or_none(data.get("number")),
            label=_int_or_none(data.get("label")),
            q=str(data.get("q") or "").strip()[:100],
        )

    def params(self, **overrides: Any) -> dict[str, Any]:
        values = {"view": self.view, "status": self.status, "number": self.number or "", "label": self.label or "",
                  "q": self.q, **overrides}
        defaults = {"view": DEFAULT_VIEW, "status": DEFAULT_STATUS, "number": "", "label": "", "q": ""}
        return {k: v for k, v in values.items() if v not in (None, "") and v != defaults.get(k)}

    def query(self, **overrides: Any) -> str:
        if overrides:
            return urlencode(self.params(**overrides))
        # Rendered into every row's links: computed once per filters object.
        cached = self.__dict__.get("_query")
        if cached is None:
            cached = urlencode(self.params())
            object.__setattr__(self, "_query", cached)
        return cached


@dataclass(frozen=True)
class Cursor:
    """A keyset position in the list: (last_message_at, id), newest first."""

    at: datetime
    id: int

    def encode(self) -> str:
        return f"{(self.at - EPOCH) // timedelta(microseconds=1)}_{self.id}"

    @classmethod
    def decode(cls, value: str | None) -> Cursor | None:
        match = re.fullmatch(r"(-?\d{1,19})_(\d{1,19})", value or "")
        if not match:
            return None
        return cls(at=EPOCH + timedelta(microseconds=int(match.group(1))), id=int(match.group(2)))


def timestamp_micros(moment: datetime | None) -> int:
    return (moment - EPOCH) // timedelta(microseconds=1) if moment else 0


def from_micros(value: Any) -> datetime | None:
    text = str(value or "").strip()
    if not re.fullmatch(r"\d{1,19}", text):
        return None
    return EPOCH + timedelta(microseconds=int(text))


# --- the list -----------------------------------------------------------------------------

# What a list row shows: loading only these keeps a page of 50 rows cheap to build.
ROW_FIELDS = (
    "id", "tenant_id", "phone_number_id", "contact_id", "assignee_id", "status", "window_expires_at",
    "last_message_at", "last_inbound_at", "last_message_preview", "last_message_type", "last_message_direction",
    "unread_count", "created_at", "updated_at",
    "contact__id", "contact__wa_id", "contact__name", "contact__profile_name",
    "assignee__id", "assignee__username", "assignee__first_name", "assignee__last_name", "assignee__email",
)


def attach_labels(*, tenant: Tenant, conversations: list[Conversation], labels: list[Label] | None = None) -> None:
    """Set ``label_list`` (sorted by name) on each conversation: one query for the links, and
    one for the workspace's labels unless the caller has them already."""
    for conversation in conversations:
        conversation.label_list = []
    if not conversations:
        return
    links = list(ConversationLabel.objects.for_tenant(tenant)
                 .filter(conversation_id__in=[c.pk for c in conversations])
                 .values_list("conversation_id", "label_id"))
    if not links:
        return
    by_id = {label.pk: label for label in (labels if labels is not None else label_list(tenant=tenant))}
    by_conversation = {c.pk: c for c in conversations}
    for conversation_id, label_id in links:
        if label_id in by_id:
            by_conversation[conversation_id].label_list.append(by_id[label_id])
    for conversation in conversations:
        conversation.label_list.sort(key=lambda label: label.name.lower())


def _contact_search(q: str) -> Q:
    """A contact whose name, WhatsApp profile name or number contains ``q``."""
    contact = Q(name__icontains=q) | Q(profile_name__icontains=q)
    digits = re.sub(r"[\s+()\-.]", "", q)
    if digits.isdigit() and len(digits) >= 3:
        contact |= Q(wa_id__contains=digits)
    return contact


def _search(tenant: Tenant, q: str, *, correlated: bool = False) -> Q:
    """Name, number or the text of any message in the conversation.

    ``correlated`` suits a few thousand conversations named by id: their contacts are joined
    and each one's message texts are looked through by conversation. Otherwise the matching
    contacts and message texts are each found once (trigram indexes serve both on PostgreSQL)
    and the list is walked newest first until the page is full. Message texts are searched in
    MessageText, the copy a trigger keeps (models.py)."""
    contact = _contact_search(q)
    messages = MessageText.objects.for_tenant(tenant).filter(text__icontains=q)
    if correlated:
        joined = Q(*[(f"contact__{name}", value) for name, value in contact.children], _connector=Q.OR)
        return (joined | Q(last_message_preview__icontains=q)
                | Q(Exists(messages.filter(conversation_id=OuterRef("pk")))))
    from apps.contacts.models import Contact

    # The last message's preview is among the messages' texts: not tested again here, where it
    # would be matched against every conversation of the list.
    return (Q(contact_id__in=Contact.objects.for_tenant(tenant).filter(contact).values("pk"))
            | Q(pk__in=messages.values("conversation_id")))


# A search first looks among this many of the newest conversations the other filters show: a
# word many conversations contain fills the page there, after a few thousand index probes,
# and only a rarer one makes the search look through the whole workspace.
SEARCH_WINDOW = 1000


def _filtered(*, tenant: Tenant, user: AbstractBaseUser, filters: InboxFilters,
              search: bool = True) -> QuerySet[Conversation]:
    """Everything but the status: the view, number, label and (unless ``search`` is false) search."""
    qs = Conversation.objects.for_tenant(tenant).filter(last_message_at__isnull=False)
    if filters.view == "mine":
        qs = qs.filter(assignee_id=user.pk)
    elif filters.view == "unassigned":
        qs = qs.filter(assignee__isnull=True)
    if filters.number:
        qs = qs.filter(phone_number_id=filters.number)
    if filters.label:
        # A subquery, not a join: the planner then walks the recent-first index and probes the
        # label's conversations, instead of sorting every labelled conversation.
        qs = qs.filter(pk__in=ConversationLabel.objects.for_tenant(tenant).filter(label_id=filters.label)
                       .values("conversation_id"))
    if filters.q and search:
        qs = qs.filter(_search(tenant, filters.q))
    return qs


def _with_row_data(qs: QuerySet[Conversation]) -> QuerySet[Conversation]:
    return qs.select_related("contact", "assignee").only(*ROW_FIELDS)


def conversation_page(*, tenant: Tenant, user: AbstractBaseUser, filters: InboxFilters, cursor: Cursor | None = None,
                      limit: int | None = None,
                      labels: list[Label] | None = None) -> tuple[list[Conversation], Cursor | None]:
    """One page of the list, newest activity first, and the cursor of the next page (None at
    the end). Keyset paging: the cost of page 100 is the cost of page 1."""
    limit = limit or LIST_PAGE_SIZE
    small_label = _small_label(tenant, filters) if filters.label and not filters.q else None
    found = _rare_search(tenant, filters.q) if filters.q else None
    if small_label is not None:
        # Among the label's few conversations (the other filters, without the label's subquery).
        rows = _rows_among(tenant, _unordered(tenant=tenant, user=user, filters=replace(filters, label=None),
                                              cursor=cursor).filter(pk__in=small_label), limit)
    elif found is not None:
        # A rare word or name: among the few conversations it was found in.
        contact_ids, conversation_ids = found
        rows = _rows_among(tenant, _unordered(tenant=tenant, user=user, filters=filters, cursor=cursor).filter(
            Q(contact_id__in=contact_ids) | Q(pk__in=conversation_ids)), limit)
    elif filters.q:
        # The newest SEARCH_WINDOW conversations first: when their matches fill the page, they
        # are the newest matches of all. Otherwise, the whole workspace.
        qs = _unordered(tenant=tenant, user=user, filters=filters, cursor=cursor).order_by("-last_message_at", "-id")
        window = list(qs.values_list("pk", flat=True)[:SEARCH_WINDOW])  # a list: the planner then probes by id
        rows = list(_with_row_data(qs.filter(pk__in=window).filter(_search(tenant, filters.q, correlated=True)))
                    [:limit + 1])
        if len(rows) <= limit:
            rows = list(_with_row_data(qs.filter(_search(tenant, filters.q)))[:limit + 1])
    else:
        qs = _unordered(tenant=tenant, user=user, filters=filters, cursor=cursor).order_by("-last_message_at", "-id")
        rows = list(_with_row_data(qs)[:limit + 1])
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = Cursor(at=rows[-1].last_message_at, id=rows[-1].pk)
    attach_labels(tenant=tenant, conversations=rows, labels=labels)
    return rows, next_cursor


# A label on at most this many conversations is listed from its own rows: the recent-first
# walk would look at every open conversation before it learns that the label has no open one.
LABEL_SCAN_MAX = 5000


def _small_label(tenant: Tenant, filters: InboxFilters) -> QuerySet[ConversationLabel] | None:
    """The label's links (a subquery), when it is on at most LABEL_SCAN_MAX conversations."""
    links = ConversationLabel.objects.for_tenant(tenant).filter(label_id=filters.label)
    return links.values("conversation_id") if links[:LABEL_SCAN_MAX + 1].count() <= LABEL_SCAN_MAX else None


def _unordered(*, tenant: Tenant, user: AbstractBaseUser, filters: InboxFilters,
               cursor: Cursor | None) -> QuerySet[Conversation]:
    """The list under ``filters`` (search aside) after ``cursor``, in no order."""
    qs = _filtered(tenant=tenant, user=user, filters=filters, search=False).filter(status=filters.status)
    if cursor is not None:
        # (last_message_at, id) < cursor, written as one range on the recent-first index (an OR
        # of two ranges makes SQLite merge and sort everything older).
        qs = qs.filter(last_message_at__lte=cursor.at).exclude(last_message_at=cursor.at, pk__gte=cursor.id)
    return qs.order_by()


def _rows_among(tenant: Tenant, qs: QuerySet[Conversation], limit: int) -> list[Conversation]:
    """A page of the few conversations ``qs`` names: their keys read unordered (so the planner
    probes them by id instead of walking the recent-first index), sorted here, and only the
    page's rows loaded."""
    keys = sorted(qs.values_list("last_message_at", "pk"), reverse=True)[:limit + 1]
    if not keys:
        return []
    return list(_with_row_data(Conversation.objects.for_tenant(tenant).filter(pk__in=[pk for _, pk in keys]))
                .order_by("-last_message_at", "-id"))


# A search whose words are in at most this many contacts and messages lists just those; a more
# common one walks the list newest first (see SEARCH_WINDOW), where matches come quickly.
RARE_SEARCH_MAX = 200


def _rare_search(tenant: Tenant, q: str) -> tuple[list[int], list[int]] | None:
    """(contact ids, conversation ids) matching ``q`` by name or number and by message text,
    or None when either has more than RARE_SEARCH_MAX rows. On PostgreSQL both are trigram
    index lookups."""
    from apps.contacts.models import Contact

    contact_ids = list(Contact.objects.for_tenant(tenant).filter(_contact_search(q))
                       .values_list("pk", flat=True)[:RARE_SEARCH_MAX + 1])
    if len(contact_ids) > RARE_SEARCH_MAX:
        return None
    conversation_ids = list(MessageText.objects.for_tenant(tenant).filter(text__icontains=q).order_by()
                            .values_list("conversation_id", flat=True)[:RARE_SEARCH_MAX + 1])
    if len(conversation_ids) > RARE_SEARCH_MAX:
        return None
    return contact_ids, sorted(set(conversation_ids))


def conversation_counts(*, tenant: Tenant, user: AbstractBaseUser, filters: InboxFilters) -> dict[str, dict[str, int]]:
    """``counts[view][status]`` for every view and status under the other filters: one grouped
    query."""
    counts = {view: dict.fromkeys(Conversation.Status.values, 0) for view in VIEW_KEYS}
    if filters.label or filters.q:
        # Grouped by (assignee, status), the order of the assignee index, which then covers
        # the whole count: a few dozen groups, added up here into the three views.
        rows = (_filtered(tenant=tenant, user=user, filters=replace(filters, view="all")).order_by()
                .values_list("assignee_id", "status").annotate(n=Count("pk")))
    else:
        # The whole workspace or one number: the tally the triggers keep (models.py) already
        # holds these groups, as a few rows of deltas each.
        tally = ConversationTally.objects.for_tenant(tenant)
        if filters.number:
            tally = tally.filter(phone_number_id=filters.number)
        rows = tally.order_by().values_list("assignee_id", "status").annotate(n=Sum("n"))
    for assignee_id, status, n in rows:
        if status not in counts["all"]:
            continue
        counts["all"][status] += n
        if assignee_id is None:
            counts["unassigned"][status] += n
        elif assignee_id == user.pk:
            counts["mine"][status] += n
    return counts


def conversation_matches(*, tenant: Tenant, user: AbstractBaseUser, filters: InboxFilters,
                         conversation_ids: list[int]) -> set[int]:
    """Which of these conversations the list, as filtered, shows."""
    if not conversation_ids:
        return set()
    return set(_filtered(tenant=tenant, user=user, filters=filters)
               .filter(status=filters.status, pk__in=conversation_ids).values_list("pk", flat=True))


def inbox_numbers(*, tenant: Tenant) -> QuerySet[PhoneNumber]:
    """Lazy: the list body reads it only when a number filter is on (it then shows the
    number's chip), so most list requests never run it."""
    return PhoneNumber.objects.for_tenant(tenant).order_by("display_number")


def label_list(*, tenant: Tenant) -> QuerySet[Label]:
    return Label.objects.for_tenant(tenant).order_by("name")


def access_label(*, tenant: Tenant, label_id: int) -> Label:
    label = label_list(tenant=tenant).filter(pk=label_id).first()
    if label is None:
        raise Http404("No such label")
    return label


def canned_response_list(*, tenant: Tenant, prefix: str = "") -> QuerySet[CannedResponse]:
    qs = CannedResponse.objects.for_tenant(tenant).order_by("shortcut")
    if prefix:
        qs = qs.filter(Q(shortcut__istartswith=prefix) | Q(content__icontains=prefix))
    return qs


def access_canned_response(*, tenant: Tenant, canned_response_id: int) -> CannedResponse:
    canned = CannedResponse.objects.for_tenant(tenant).filter(pk=canned_response_id).first()
    if canned is None:
        raise Http404("No such canned response")
    return canned


# --- a thread -----------------------------------------------------------------------------

def access_inbox_conversation(*, tenant: Tenant, conversation_id: int,
                              labels: list[Label] | None = None) -> Conversation:
    """The whole conversation (contact, number, assignee) with ``label_list``; 404 for anything
    that is not this workspace's."""
    conversation = (Conversation.objects.for_tenant(tenant).select_related("contact", "phone_number", "assignee")
                    .defer("phone_number__credentials").filter(pk=conversation_id).first())
    if conversation is None:
        raise Http404("No such conversation")
    attach_labels(tenant=tenant, conversations=[conversation], labels=labels)
    return conversation


# What a message row shows (templatetags/inbox.py, _message_row): loading only these -- not
# the delivery bookkeeping, pricing, or whole quoted messages and users -- keeps a page of 50
# cheap to build.
MESSAGE_ROW_FIELDS = (
    "id", "tenant_id", "conversation_id", "direction", "type", "content", "text_preview", "media_id", "reply_to_id",
    "reply_to_provider_id", "status", "accepted_at", "sent_at", "delivered_at", "read_at", "failed_at",
    "occurred_at", "created_at", "updated_at", "provider_message_id", "wa_message_id", "error_code", "error_title",
    "error_detail", "campaign_recipient_id", "sent_by_id",
    "media__id", "media__tenant_id", "media__status", "media__filename", "media__mime_type", "media__size",
    "media__error",
    "reply_to__id", "reply_to__tenant_id", "reply_to__direction", "reply_to__type", "reply_to__text_preview",
    "sent_by__id", "sent_by__username", "sent_by__first_name", "sent_by__last_name", "sent_by__email",
)


def _thread_queryset(tenant: Tenant, conversation: Conversation) -> QuerySet[Message]:
    return (Message.objects.for_tenant(tenant).filter(conversation_id=conversation.pk)
            .select_related("media", "reply_to", "sent_by").only(*MESSAGE_ROW_FIELDS))


def attach_reactions(*, tenant: Tenant, conversation: Conversation, messages: list[Message],
                     newest: bool = False) -> None:
    """Set ``reactions`` (the emojis shown under a message, one per side, latest wins) on each
    message, and ``reaction_target`` on reaction rows whose target is among ``messages``.

    ``newest`` says that ``messages`` run up to the newest message of the thread: a reaction
    always comes after what it reacts to, so every reaction to them is among them and no
    query is needed. Otherwise one query finds them wherever they are in the thread."""
    by_key: dict[str, Message] = {}
    for message in messages:
        message.reactions = []
        message.reaction_target = None
        for key in (message.wa_message_id, message.provider_message_id):
            if key:
                by_key[key] = message
    if not by_key:
        return
    if newest:
        reactions = [(m.pk, m.direction, m.content) for m in messages if m.type == Message.Type.REACTION]
    else:
        reactions = list(Message.objects.for_tenant(tenant)
                         .filter(conversation_id=conversation.pk, type=Message.Type.REACTION,
                                 content__message_id__in=list(by_key)).order_by("id")
                         .values_list("id", "direction", "content"))
    latest: dict[int, dict[str, str]] = {}
    for _, direction, content in reactions:
        content = content if isinstance(content, dict) else {}
        target = by_key.get(str(content.get("message_id", "")))
        if target is not None:
            latest.setdefault(target.pk, {})[direction] = str(content.get("emoji") or "")
    for message in messages:
        message.reactions = [{"emoji": emoji, "direction": direction}
                             for direction, emoji in latest.get(message.pk, {}).items() if emoji]
        if message.type == Message.Type.REACTION:
            message.reaction_target = by_key.get(str((message.content or {}).get("message_id", "")))


def thread_messages(*, tenant: Tenant, conversation: Conversation, before_id: int | None = None,
                    limit: int | None = None) -> tuple[list[Message], bool]:
    """The newest ``limit`` messages (before ``before_id`` when given), oldest first, and
    whether older ones exist."""
    limit = limit or THREAD_PAGE_SIZE
    qs = _thread_queryset(tenant, conversation).order_by("-id")
    if before_id:
        qs = qs.filter(pk__lt=before_id)
    rows = list(qs[:limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    rows.reverse()
    attach_reactions(tenant=tenant, conversation=conversation, messages=rows, newest=before_id is None)
    attach_template_bodies(tenant=tenant, conversation=conversation, messages=rows)
    return rows, more


def attach_template_bodies(*, tenant: Tenant, conversation: Conversation, messages: list[Message]) -> None:
    """Set ``template_body`` on template messages: the whole body the customer read (the
    stored preview is cut at 255 characters). One query, only when the page has templates."""
    sent = [m for m in messages if m.type == Message.Type.TEMPLATE and isinstance(m.content, dict)]
    for message in messages:
        message.template_body = ""
    if not sent:
        return
    names = {str(m.content.get("name") or "") for m in sent}
    templates = {(t.name, t.language): t for t in MessageTemplate.objects.for_tenant(tenant)
                 .filter(waba_id=conversation.phone_number.waba_id, name__in=names)}
    for message in sent:
        language = message.content.get("language")
        code = language.get("code") if isinstance(language, dict) else language
        template = templates.get((message.content.get("name"), code))
        if template is not None:
            message.template_body = render_body(stored=template.components,
                                                parameter_format=template.parameter_format,
                                                send_components=message.content.get("components") or [])


def inbox_members(*, tenant: Tenant) -> list[Membership]:
    """Who a conversation may be assigned to: members whose role opens the inbox."""
    return list(Membership.objects.for_tenant(tenant).filter(role__in=SECTION_ROLES["inbox"])
                .select_related("user").order_by("user__first_name", "user__email"))


def inbox_member(*, tenant: Tenant, user_id: int | None) -> Membership | None:
    if user_id is None:
        return None
    return (Membership.objects.for_tenant(tenant).filter(user_id=user_id, role__in=SECTION_ROLES["inbox"])
            .select_related("user").first())


def approved_templates(*, tenant: Tenant, conversation: Conversation) -> list[MessageTemplate]:
    """The approved templates of the conversation's number's WhatsApp account."""
    return list(MessageTemplate.objects.for_tenant(tenant)
                .filter(waba_id=conversation.phone_number.waba_id, status=MessageTemplate.Status.APPROVED)
                .order_by("name", "language"))


def access_template(*, tenant: Tenant, conversation: Conversation, template_id: Any) -> MessageTemplate | None:
    template_id = _int_or_none(template_id)
    if template_id is None:
        return None
    return (MessageTemplate.objects.for_tenant(tenant)
            .filter(pk=template_id, waba_id=conversation.phone_number.waba_id,
                    status=MessageTemplate.Status.APPROVED).first())


def contact_tags(*, tenant: Tenant, conversation: Conversation) -> list[Tag]:
    return list(Tag.objects.for_tenant(tenant).filter(contact_tags__contact_id=conversation.contact_id)
                .order_by("name"))


def other_conversations(*, tenant: Tenant, conversation: Conversation, limit: int = 10) -> list[Conversation]:
    """The same contact's conversations on the workspace's other numbers."""
    return list(Conversation.objects.for_tenant(tenant).filter(contact_id=conversation.contact_id)
                .exclude(pk=conversation.pk).select_related("phone_number")
                .order_by("-last_message_at", "-id")[:limit])


def composer_mode(conversation: Conversation, *, now: datetime | None = None) -> str:
    """``reply`` inside the 24-hour window, ``template`` outside it, ``opted_out`` when the
    contact has opted out (nothing may be sent; notes still may)."""
    from apps.contacts.models import Contact

    if conversation.contact.opt_in_status == Contact.OptIn.OPTED_OUT:
        return "opted_out"
    now = now or timezone.now()
    if conversation.window_expires_at and conversation.window_expires_at > now:
        return "reply"
    return "template"


# --- what changed ---------------------------------------------------------------------------

@dataclass
class InboxChanges:
    now: datetime
    conversations: list[Conversation]
    matching_ids: set[int]
    counts: dict[str, dict[str, int]] | None
    conversation: Conversation | None
    conversation_changed: bool
    messages: list[Message]

    @property
    def empty(self) -> bool:
        return not self.conversations and not self.conversation_changed and not self.messages


def inbox_changes(*, tenant: Tenant, user: AbstractBaseUser, filters: InboxFilters, since: datetime,
                  conversation_id: int | None = None, from_message_id: int | None = None) -> InboxChanges:
    """Conversations changed since ``since`` (and which of them the filtered list shows), and,
    for the open conversation, its messages changed since then. Three indexed queries when
    nothing changed."""
    now = timezone.now()
    start = since - CHANGE_LAG
    changed = list(_with_row_data(Conversation.objects.for_tenant(tenant).filter(updated_at__gt=start))
                   .order_by("-updated_at")[:CHANGE_LIMIT])
    labels = list(label_list(tenant=tenant)) if changed else []
    attach_labels(tenant=tenant, conversations=changed, labels=labels)
    conversation = None
    conversation_changed = False
    messages: list[Message] = []
    if conversation_id:
        conversation_changed = any(c.pk == conversation_id for c in changed)
        conversation = (Conversation.objects.for_tenant(tenant).select_related("contact", "phone_number", "assignee")
                        .defer("phone_number__credentials").filter(pk=conversation_id).first())
        if conversation is not None and conversation_changed:
            attach_labels(tenant=tenant, conversations=[conversation], labels=labels)
        if conversation is not None:
            qs = _thread_queryset(tenant, conversation).filter(updated_at__gt=start)
            if from_message_id:
                qs = qs.filter(pk__gte=from_message_id)
            messages = list(qs.order_by("id")[:CHANGE_LIMIT])
            if messages:
                _attach_reactions_to_changes(tenant=tenant, conversation=conversation, messages=messages)
    matching: set[int] = set()
    counts = None
    if changed:
        matching = conversation_matches(tenant=tenant, user=user, filters=filters,
                                        conversation_ids=[c.pk for c in changed])
        counts = conversation_counts(tenant=tenant, user=user, filters=filters)
    return InboxChanges(now=now, conversations=changed, matching_ids=matching, counts=counts,
                        conversation=conversation, conversation_changed=conversation_changed, messages=messages)


def _attach_reactions_to_changes(*, tenant: Tenant, conversation: Conversation, messages: list[Message]) -> None:
    """A new reaction changes how its target looks: re-render the target too."""
    keys = {str((m.content or {}).get("message_id", "")) for m in messages if m.type == Message.Type.REACTION}
    keys.discard("")
    known = {m.pk for m in messages}
    if keys:
        targets = [m for m in _thread_queryset(tenant, conversation)
                   .filter(Q(wa_message_id__in=keys) | Q(provider_message_id__in=keys)) if m.pk not in known]
        messages.extend(targets)
        messages.sort(key=lambda m: m.pk)
    attach_reactions(tenant=tenant, conversation=conversation, messages=messages)
    attach_template_bodies(tenant=tenant, conversation=conversation, messages=messages)
