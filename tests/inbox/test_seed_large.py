from io import StringIO

from django.core.management import call_command

from apps.conversations.models import Conversation, ConversationLabel, Message
from apps.tenants.demo import seed_large
from apps.tenants.models import Membership


def test_seed_demo_large_builds_the_large_workspace_once(db):
    out = StringIO()
    call_command("seed_demo", "--large", "--conversations", "25", stdout=out)
    assert "Workspace 'large' created (25 conversations)" in out.getvalue()
    conversations = Conversation.all_tenants.filter(tenant__slug="large")
    assert conversations.count() == 25
    assert Message.all_tenants.filter(tenant__slug="large").count() == 250
    assert ConversationLabel.all_tenants.filter(tenant__slug="large").count() == 5
    assert set(conversations.values_list("status", flat=True)) == {"open", "pending", "resolved"}
    newest = conversations.order_by("-last_message_at").first()
    last = Message.all_tenants.filter(conversation=newest).order_by("-id").first()
    assert newest.last_message_preview == last.text_preview
    assert Membership.all_tenants.filter(tenant__slug="large", user__email="demo@example.com", role="owner").exists()
    out = StringIO()
    call_command("seed_demo", "--large", "--conversations", "25", stdout=out)
    assert "already present" in out.getvalue() and conversations.count() == 25


def test_an_interrupted_seed_resumes_from_its_last_batch(db):
    seed_large(conversations=20, batch=10)
    seed_large(conversations=35, batch=10)
    tenant_conversations = Conversation.all_tenants.filter(tenant__slug="large")
    assert tenant_conversations.count() == 35
    assert Message.all_tenants.filter(tenant__slug="large").count() == 350


def test_growing_a_smaller_seed_does_not_collide(db):
    seed_large(conversations=25, batch=10)
    seed_large(conversations=40, batch=10)
    assert Conversation.all_tenants.filter(tenant__slug="large").count() == 40
