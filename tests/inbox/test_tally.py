"""The inbox's tab counts come from ConversationTally, which database triggers keep
(migration conversations.0009): whatever changes a conversation -- a service, a bulk insert, a
QuerySet.update(), a delete -- the tally's sums must equal a count of the conversations."""

from __future__ import annotations

import re
import threading
from collections import Counter
from datetime import timedelta

import pytest
from django.db import connection, connections, transaction
from django.db.migrations.executor import MigrationExecutor
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.conversations.inbox_selectors import InboxFilters, conversation_counts
from apps.conversations.models import Conversation, ConversationTally
from apps.conversations.services import message_receive
from apps.conversations.services.inbox import conversation_assign, conversation_status_set
from apps.conversations.services.tally import conversation_tallies_compact
from apps.conversations.text_triggers import ensure_sqlite_triggers
from apps.providers.events import InboundMessage
from tests.factories import (
    ContactFactory,
    ConversationFactory,
    ConversationLabelFactory,
    LabelFactory,
    MembershipFactory,
    PhoneNumberFactory,
    TenantFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


def counted(tenant) -> Counter:
    """What the tally should say: the listed conversations (with a message), grouped."""
    rows = (Conversation.all_tenants.filter(tenant=tenant, last_message_at__isnull=False)
            .values_list("phone_number_id", "assignee_id", "status"))
    return Counter(rows)


def tallied(tenant) -> Counter:
    sums: Counter = Counter()
    for number_id, assignee_id, status, n in (ConversationTally.all_tenants.filter(tenant=tenant)
                                              .values_list("phone_number_id", "assignee_id", "status", "n")):
        sums[(number_id, assignee_id, status)] += n
    return +sums  # groups that sum to zero are no count at all


def inbound(wamid: str, wa_id: str) -> InboundMessage:
    return InboundMessage(provider="meta_cloud", route_key="5550001", wa_id=wa_id, profile_name="Maya",
                          provider_message_id=wamid, timestamp=timezone.now(), type="text",
                          content={"body": "Hello"}, text="Hello", context_id=None, media=None, errors=(), raw={})


def test_every_kind_of_change_keeps_the_tally_equal_to_a_count(tenant, number, agent, owner):
    other_number = PhoneNumberFactory(tenant=tenant)
    steps = []

    def check(step: str) -> None:
        steps.append(step)
        assert tallied(tenant) == counted(tenant), steps

    check("empty")
    quiet = ConversationFactory(tenant=tenant, phone_number=number, last_message_at=None)
    check("a conversation without a message is not listed, so not counted")
    message_receive(phone_number=number, inbound=inbound("wamid.T1", "14155550111"))
    check("an inbound message opens a conversation")
    Conversation.all_tenants.filter(pk=quiet.pk).update(last_message_at=timezone.now())
    check("its first message lists it")
    made = Conversation.all_tenants.bulk_create([
        Conversation(tenant=tenant, phone_number=number, contact=ContactFactory(tenant=tenant),
                     last_message_at=timezone.now(), status=status)
        for status in ("open", "open", "pending", "resolved", "open")])
    check("a bulk insert")
    Conversation.all_tenants.bulk_create([Conversation(tenant=tenant, phone_number=number, contact=made[0].contact,
                                                       last_message_at=timezone.now())], ignore_conflicts=True)
    check("a conflicting insert that inserted nothing")
    conversation_assign(tenant=tenant, conversation=made[0], assignee=agent, by=owner)
    conversation_assign(tenant=tenant, conversation=made[1], assignee=agent, by=agent)
    check("assignments")
    conversation_status_set(tenant=tenant, conversation=made[0], status="resolved", by=agent)
    conversation_status_set(tenant=tenant, conversation=made[2], status="open", by=agent)
    check("status changes")
    Conversation.all_tenants.filter(tenant=tenant, status="open").update(status="pending", assignee=owner)
    check("one UPDATE moving several conversations at once")
    Conversation.all_tenants.filter(pk=made[3].pk).update(last_message_preview="seen", unread_count=0,
                                                          last_message_at=timezone.now())
    check("a last-message update moves nothing")
    Conversation.all_tenants.filter(pk=made[4].pk).update(phone_number=other_number)
    check("a conversation moved to another number")
    conversation = Conversation.all_tenants.get(pk=made[1].pk)
    conversation.status = "resolved"
    conversation.save()
    check("a save() writing every column")
    agent.delete()
    check("a deleted user's conversations become unassigned (SET_NULL)")
    Conversation.all_tenants.filter(pk=made[2].pk).update(last_message_at=None)
    check("a conversation no longer listed")
    Conversation.all_tenants.filter(pk__in=[made[3].pk, quiet.pk]).delete()
    check("deletes")
    other_number.delete()
    check("a number deleted with its conversations")
    assert sum(counted(tenant).values()) == 3


def test_the_counts_come_from_the_tally_in_one_query_and_match_the_grouped_count(tenant, number, agent):
    for status in ("open", "open", "pending", "resolved"):
        ConversationFactory(tenant=tenant, phone_number=number, status=status)
    ConversationFactory(tenant=tenant, phone_number=number, status="open", assignee=agent)
    ConversationFactory(tenant=tenant, phone_number=PhoneNumberFactory(tenant=tenant), status="open")
    ConversationFactory(tenant=tenant, phone_number=number, last_message_at=None)
    ConversationFactory(tenant=TenantFactory(), status="open")  # another workspace's
    label = LabelFactory(tenant=tenant)
    everything = conversation_counts(tenant=tenant, user=agent, filters=InboxFilters())
    with CaptureQueriesContext(connection) as queries:
        one_number = conversation_counts(tenant=tenant, user=agent, filters=InboxFilters(number=number.pk))
    assert len(queries) == 1 and "conversationtally" in queries[0]["sql"]
    assert everything == {"all": {"open": 4, "pending": 1, "resolved": 1},
                          "unassigned": {"open": 3, "pending": 1, "resolved": 1},
                          "mine": {"open": 1, "pending": 0, "resolved": 0}}
    assert one_number["all"] == {"open": 3, "pending": 1, "resolved": 1}
    # A label (or a search) narrows the conversations themselves: those are grouped, as before.
    ConversationLabelFactory(conversation=Conversation.all_tenants.filter(tenant=tenant, assignee=agent).get(),
                             label=label)
    with CaptureQueriesContext(connection) as queries:
        labelled = conversation_counts(tenant=tenant, user=agent, filters=InboxFilters(label=label.pk))
    assert "conversationtally" not in queries[-1]["sql"]
    assert labelled["mine"] == labelled["all"] == {"open": 1, "pending": 0, "resolved": 0}


def test_compaction_folds_the_deltas_and_forgets_groups_that_sum_to_zero(tenant, number):
    conversations = [ConversationFactory(tenant=tenant, phone_number=number) for _ in range(6)]
    for conversation in conversations[:4]:
        Conversation.all_tenants.filter(pk=conversation.pk).update(status="resolved")
    Conversation.all_tenants.filter(pk=conversations[5].pk).update(status="pending")
    Conversation.all_tenants.filter(pk=conversations[5].pk).delete()
    before = tallied(tenant)
    assert ConversationTally.all_tenants.filter(tenant=tenant).count() == 6 + 4 * 2 + 2 + 1
    report = conversation_tallies_compact()
    assert tallied(tenant) == before == counted(tenant)
    assert report.read == 6 + 4 * 2 + 2 + 1 and report.written == 2  # open 1, resolved 4; pending summed to 0
    assert sorted(ConversationTally.all_tenants.values_list("status", "n")) == [("open", 1), ("resolved", 4)]
    assert conversation_tallies_compact().read == 0  # nothing more to fold: the two sums are not rewritten
    assert sorted(ConversationTally.all_tenants.values_list("status", "n")) == [("open", 1), ("resolved", 4)]


def test_compaction_folds_only_the_groups_that_changed(tenant, number, agent):
    ConversationFactory(tenant=tenant, phone_number=number)
    ConversationFactory(tenant=tenant, phone_number=number)
    mine = ConversationFactory(tenant=tenant, phone_number=number, assignee=agent)
    conversation_tallies_compact()
    folded = dict(ConversationTally.all_tenants.values_list("assignee_id", "pk"))
    assert set(folded) == {None, agent.pk}
    Conversation.all_tenants.filter(pk=mine.pk).update(status="resolved")  # -1 open (agent), +1 resolved (agent)
    ConversationFactory(tenant=tenant, phone_number=number)  # +1 open (no assignee)
    report = conversation_tallies_compact()
    # The unassigned group (its folded row and one delta) and the agent's open group (its row and
    # the -1) are folded; the agent's resolved group has one row and stays as it was written.
    assert report.read == 4 and report.written == 1  # the agent's open count is now 0: gone
    assert tallied(tenant) == counted(tenant) == Counter({(number.pk, None, "open"): 3,
                                                          (number.pk, agent.pk, "resolved"): 1})
    assert not ConversationTally.all_tenants.filter(pk__in=folded.values()).exists()


def test_a_workspace_deleted_with_its_conversations_leaves_nothing_after_compaction(number, tenant):
    gone = TenantFactory()
    for _ in range(3):
        ConversationFactory(tenant=gone)
    ConversationFactory(tenant=tenant, phone_number=number)
    gone.delete()
    conversation_tallies_compact()
    assert set(ConversationTally.all_tenants.values_list("tenant_id", flat=True)) == {tenant.pk}


def test_the_inbox_tabs_show_what_the_tally_says_before_and_after_compaction(agent_client, tenant, number, agent):
    ConversationFactory(tenant=tenant, phone_number=number, assignee=agent)
    ConversationFactory(tenant=tenant, phone_number=number)
    ConversationFactory(tenant=tenant, phone_number=number, status="pending")

    def tabs() -> dict[str, str]:
        html = agent_client.get("/t/acme/inbox/?counts=1", HTTP_HX_REQUEST="true",
                                HTTP_HX_TARGET="inbox-tabs").content.decode()
        return dict(re.findall(r'value="(\w+)"[^>]*><span>\w+</span><b class="count">(\d+)</b>', html))

    # Views count the selected status (open); statuses count the selected view (all).
    expected = {"mine": "1", "unassigned": "1", "all": "2", "open": "2", "pending": "1", "resolved": "0"}
    assert tabs() == expected
    conversation_tallies_compact()
    assert tabs() == expected


@pytest.mark.django_db(transaction=True)
def test_compaction_beside_an_open_transaction_loses_none_of_its_deltas(tenant, number):
    if connection.vendor != "postgresql":
        pytest.skip("SQLite has one writer at a time: no transaction can be open beside the compaction")
    conversation = ConversationFactory(tenant=tenant, phone_number=number)
    ConversationFactory(tenant=tenant, phone_number=number)
    written, release, failures = threading.Event(), threading.Event(), []

    def agent_resolves() -> None:
        try:
            with transaction.atomic():
                Conversation.all_tenants.filter(pk=conversation.pk).update(status="resolved")
                written.set()
                release.wait(10)
        except Exception as exc:  # the assertion below reports it
            failures.append(exc)
        finally:
            connections.close_all()

    thread = threading.Thread(target=agent_resolves)
    thread.start()
    assert written.wait(10)
    report = conversation_tallies_compact()  # the open transaction's two deltas are not visible
    release.set()
    thread.join(10)
    assert not failures
    assert report.read == 2 and report.written == 1
    assert tallied(tenant) == counted(tenant) == Counter({(number.pk, None, "open"): 1,
                                                          (number.pk, None, "resolved"): 1})
    conversation_tallies_compact()
    assert sorted(ConversationTally.all_tenants.values_list("status", "n")) == [("open", 1), ("resolved", 1)]


@pytest.mark.django_db(transaction=True)
def test_the_migration_counts_the_conversations_already_there(tenant, number, migrated_back):
    agent = MembershipFactory(tenant=tenant, user=UserFactory(), role="agent").user
    ConversationFactory(tenant=tenant, phone_number=number, assignee=agent)
    ConversationFactory(tenant=tenant, phone_number=number, status="resolved")
    ConversationFactory(tenant=tenant, phone_number=number, last_message_at=None)
    executor = MigrationExecutor(connection)
    executor.migrate([("conversations", "0008_message_rewritten_in_place")])
    ConversationFactory(tenant=tenant, phone_number=number, status="pending")  # no tally, no trigger
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes("conversations"))
    assert tallied(tenant) == counted(tenant) and sum(tallied(tenant).values()) == 3
    ConversationFactory(tenant=tenant, phone_number=number, status="pending", last_message_at=timezone.now()
                        - timedelta(days=1))
    assert tallied(tenant) == counted(tenant)


def test_triggers_a_table_rebuild_dropped_are_created_again_after_migrate(tenant, number):
    if connection.vendor != "sqlite":
        pytest.skip("only SQLite rebuilds a table to alter it (and drops its triggers)")
    with connection.cursor() as cursor:
        cursor.execute("DROP TRIGGER conversations_tally_insert")
    ensure_sqlite_triggers()  # what post_migrate runs
    ConversationFactory(tenant=tenant, phone_number=number)
    assert tallied(tenant) == counted(tenant) == Counter({(number.pk, None, "open"): 1})


def test_beat_compacts_the_tally_every_minute(tenant, number):
    from django.conf import settings

    from apps.conversations.tasks import conversation_tallies_compact_task

    entry = settings.CELERY_BEAT_SCHEDULE["conversation-tallies-compact"]
    assert entry == {"task": "apps.conversations.tasks.conversation_tallies_compact_task", "schedule": 60.0}
    ConversationFactory(tenant=tenant, phone_number=number)
    ConversationFactory(tenant=tenant, phone_number=number)
    assert conversation_tallies_compact_task.apply().get() == {"read": 2, "written": 1}
