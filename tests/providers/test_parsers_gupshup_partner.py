"""Gupshup Partner v3 callback parser: Meta's envelope plus gs_id, enqueued, ms timestamps,
missing entry.id / metadata and a top-level gs_app_id."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from apps.providers.events import InboundMessage, OtherEvent, ParseError, StatusUpdate, TemplateStatusUpdate
from apps.providers.webhooks import parse_gupshup_partner, parse_meta

WEBHOOKS = Path(__file__).resolve().parent.parent / "fixtures" / "webhooks"
GS_APP_ID = "82ed52f4-30c0-4f12-81b4-e7ad07bd41de"


def load(relative: str, case: str | None = None) -> dict[str, Any]:
    data = json.loads((WEBHOOKS / relative).read_text(encoding="utf-8"))
    return copy.deepcopy(data[case] if case is not None else data)


def only(found: list[Any]) -> Any:
    assert len(found) == 1, found
    return found[0]


def as_v3(meta_body: dict[str, Any], *, metadata: bool = True, entry_id: bool = True) -> dict[str, Any]:
    """A Meta webhook body as Gupshup v3 relays it: gs_app_id on top, maybe without metadata
    or entry.id."""
    body = copy.deepcopy(meta_body)
    body["gs_app_id"] = GS_APP_ID
    for entry in body["entry"]:
        if not entry_id:
            entry.pop("id", None)
        for change in entry["changes"]:
            if not metadata:
                change["value"].pop("metadata", None)
    return body


def test_enqueued_with_millisecond_timestamp_and_gs_id() -> None:
    body = load("gupshup/v3_status_enqueued.json")
    status = only(parse_gupshup_partner(body))
    assert isinstance(status, StatusUpdate)
    assert status.provider == "gupshup_partner"
    assert status.status == "accepted"
    assert status.provider_message_id == "2baff204-c39a-4121-90b5-f53f26d522b3"  # gs_id
    assert status.wa_message_id == "wamid.HBgMOTE5MTYzODA1ODczFQIAERgSNkZCMThGMEEwQzJDOUFGQjFBAA=="
    assert status.timestamp == datetime(2024, 3, 20, 13, 29, 53, 420000, tzinfo=UTC)
    assert status.recipient_wa_id == "9191****873"
    assert status.route_key == GS_APP_ID  # no metadata, no entry.id
    assert status.raw is body["entry"][0]["changes"][0]["value"]["statuses"][0]


def test_sent_with_string_seconds_and_metadata() -> None:
    status = only(parse_gupshup_partner(load("gupshup/v3_status_sent.json")))
    assert status.status == "sent"
    assert status.provider_message_id == "7daeb742-f2dc-4c09-90e0-d879d20f7b98"
    assert status.wa_message_id == "wamid.HBgMOTE5MTYzODA1ODczFQIAERgSMDQ4Rj..."
    assert status.timestamp == datetime(2024, 3, 20, 10, 27, 41, tzinfo=UTC)
    assert status.route_key == "158072934066266"  # metadata.phone_number_id wins over gs_app_id
    assert status.conversation == {"expiration_timestamp": "1710936120", "id": "3dabdf65abaf1cbbf85217d232cce91f"}
    assert status.pricing == {}


def test_status_without_gs_id_uses_the_wamid() -> None:
    body = load("gupshup/v3_status_sent.json")
    del body["entry"][0]["changes"][0]["value"]["statuses"][0]["gs_id"]
    status = only(parse_gupshup_partner(body))
    assert status.provider_message_id == status.wa_message_id == "wamid.HBgMOTE5MTYzODA1ODczFQIAERgSMDQ4Rj..."


def test_meta_statuses_relayed_by_v3() -> None:
    played = only(parse_gupshup_partner(as_v3(load("meta/pywa/message_status.json", "played"))))
    assert (played.provider, played.status, played.route_key) == ("gupshup_partner", "read", "1122334455667")
    failed = only(parse_gupshup_partner(as_v3(load("meta/java/reEngagementMessageError.json"), metadata=False)))
    assert failed.status == "failed"
    assert [error.code for error in failed.errors] == [131047]
    assert failed.route_key == GS_APP_ID


def test_inbound_message_routes_by_metadata_else_app_id() -> None:
    text = load("meta/pywa/message.json", "reply")
    with_metadata = only(parse_gupshup_partner(as_v3(text)))
    assert isinstance(with_metadata, InboundMessage)
    assert (with_metadata.route_key, with_metadata.text) == ("1122334455667", "replied text")
    without = only(parse_gupshup_partner(as_v3(text, metadata=False, entry_id=False)))
    assert without.route_key == GS_APP_ID
    assert without.timestamp == datetime(2023, 10, 11, 17, 19, 6, tzinfo=UTC)


def test_inbound_reply_context_prefers_gupshup_id() -> None:
    # Gupshup adds its own id of the replied-to message next to Meta's.
    body = as_v3(load("meta/pywa/flow_completion.json", "completion"), metadata=False)
    message_dict = body["entry"][0]["changes"][0]["value"]["messages"][0]
    message_dict["context"] = {"from": "919917443994", "gs_id": "0e74fb92-eb8a-415a-bccd-42ee768665e0",
                               "id": "031AGDymvDNTGOEfndITwW", "meta_msg_id": "wamid.HBgMOTE5NDI1MDEwNDQ5FQIAERgSNzY4"}
    message = only(parse_gupshup_partner(body))
    assert message.context_id == "0e74fb92-eb8a-415a-bccd-42ee768665e0"
    assert message.content["nfm_reply"]["response"]["flow_token"] == "AQAAAAACS5FpgQ_cAAAAAD0QI3s."


def test_body_without_object_is_accepted() -> None:
    body = load("gupshup/v3_status_enqueued.json")
    del body["object"]
    assert only(parse_gupshup_partner(body)).status == "accepted"


def test_template_field_without_entry_id_routes_by_app_id() -> None:
    body = as_v3(load("meta/pywa/template_status_update.json", "approved"), entry_id=False)
    update = only(parse_gupshup_partner(body))
    assert isinstance(update, TemplateStatusUpdate)
    assert update.route_key == GS_APP_ID


def test_v2_shaped_billing_event_on_a_v3_subscription() -> None:
    body = load("gupshup/billing_event_marketing_lite_cbp.json")
    event = only(parse_gupshup_partner(body))
    assert isinstance(event, OtherEvent)
    assert (event.provider, event.kind, event.route_key) == ("gupshup_partner", "billing-event", "ODTestXXXXX")


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ([], "not an object"),
        ({"gs_app_id": GS_APP_ID}, "no 'entry'"),
        ({"entry": {}}, "'entry' is not a list"),
        ({"entry": [{"changes": [{"field": "messages", "value": []}]}]}, "no 'value' object"),
    ],
)
def test_structurally_broken_bodies_raise_parse_error(payload: Any, message: str) -> None:
    with pytest.raises(ParseError, match=message):
        parse_gupshup_partner(payload)


def test_meta_parser_statuses_do_not_know_enqueued() -> None:
    # "enqueued" is Gupshup's; Meta's parser passes an unknown value through unchanged.
    assert only(parse_meta(load("gupshup/v3_status_enqueued.json"))).status == "enqueued"
