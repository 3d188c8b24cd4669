"""Conversation services: every write about messages and conversations goes through here."""

from .dispatch import messages_dispatch, messages_sweep, record_send_results, ring_dispatch
from .receive import contact_opt_event_apply, message_receive
from .send import message_send, resolve_phone_number
from .status_apply import message_statuses_apply

__all__ = [
    "contact_opt_event_apply",
    "message_receive",
    "message_send",
    "message_statuses_apply",
    "messages_dispatch",
    "messages_sweep",
    "record_send_results",
    "resolve_phone_number",
    "ring_dispatch",
]
