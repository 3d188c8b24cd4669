"""The Cloud API emulator over real HTTP on 127.0.0.1, with a receiver checking signatures."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest

from tests.emulator.harness import DISPLAY, PNID, SECRET, Harness, body_params, run, template, text

ERROR_KEYS = {"message", "type", "code", "error_data", "fbtrace_id"}


def assert_graph_error(status: int, data: Any, http_status: int, code: int) -> None:
    assert status == http_status, data
    error = data["error"]
    assert ERROR_KEYS <= set(error), error
    assert error["code"] == code
    assert error["type"] == "OAuthException"
    assert error["error_data"]["messaging_product"] == "whatsapp"
    assert isinstance(error["error_data"]["details"], str) and error["error_data"]["details"]
    assert error["message"].startswith(f"(#{code})") or code in (100, 190)


def by_message(statuses: list[dict[str, Any]]) -> dict[str, list[str]]:
    seen: dict[str, list[str]] = {}
    for item in statuses:
        seen.setdefault(item["id"], []).append(item["status"])
    return seen


# --- sending -------------------------------------------------------------------------------


def test_success_has_metas_exact_shape() -> None:
    async def scenario(h: Harness) -> None:
        status, data = await h.send(text(to="+1 (650) 555-1234"))
        assert status == 200
        assert set(data) == {"messaging_product", "contacts", "messages"}
        assert data["messaging_product"] == "whatsapp"
        assert data["contacts"] == [{"input": "+1 (650) 555-1234", "wa_id": "16505551234"}]
        assert len(data["messages"]) == 1 and set(data["messages"][0]) == {"id"}
        wamid = data["messages"][0]["id"]
        assert wamid.startswith("wamid.")
        _, again = await h.send(text(to="+1 (650) 555-1234"))
        assert again["messages"][0]["id"] != wamid

    run(scenario)


def test_any_version_prefix_and_none() -> None:
    async def scenario(h: Harness) -> None:
        for version in ("v19.0", "v25.0"):
            status, _ = await h.send(text(), version=version)
            assert status == 200
        status, _ = await h.request("POST", f"/{PNID}/messages", json=text())
        assert status == 200

    run(scenario)


def test_authentication() -> None:
    async def scenario(h: Harness) -> None:
        status, data = await h.send(text(), token=None)
        assert_graph_error(status, data, 401, 190)
        status, data = await h.send(text(), token="wrong")
        assert_graph_error(status, data, 401, 190)
        status, _ = await h.send(text(), token="secret-token")
        assert status == 200
        status, _ = await h.request("GET", f"/v21.0/{PNID}", token="wrong")
        assert status == 401

    run(scenario, access_token="secret-token")


def test_any_bearer_token_without_access_token() -> None:
    async def scenario(h: Harness) -> None:
        status, _ = await h.send(text(), token="whatever")
        assert status == 200

    run(scenario)


@pytest.mark.parametrize(
    ("body", "http_status", "code"),
    [
        pytest.param(b"{not json", 400, 100, id="not-json"),
        pytest.param(b"[1, 2]", 400, 100, id="not-an-object"),
        pytest.param({"to": "16505551234", "type": "text", "text": {"body": "x"}}, 400, 100, id="no-product"),
        pytest.param(
            {"messaging_product": "sms", "to": "16505551234", "type": "text", "text": {"body": "x"}},
            400,
            100,
            id="wrong-product",
        ),
        pytest.param(
            {"messaging_product": "whatsapp", "type": "text", "text": {"body": "x"}}, 400, 131008, id="no-to"
        ),
        pytest.param(
            {"messaging_product": "whatsapp", "to": "16505551234", "type": "image"},
            400,
            131008,
            id="no-object",
        ),
        pytest.param(
            {"messaging_product": "whatsapp", "to": "16505551234", "type": "hologram", "hologram": {}},
            400,
            100,
            id="unknown-type",
        ),
        pytest.param(
            {"messaging_product": "whatsapp", "to": "16505551234", "type": "text", "text": {}},
            400,
            100,
            id="no-body",
        ),
        pytest.param(text(body="x" * 4097), 400, 100, id="body-too-long"),
        pytest.param(text(to="not-a-number"), 400, 131009, id="bad-to"),
        pytest.param(text(biz_opaque_callback_data="x" * 513), 400, 131009, id="callback-too-long"),
        pytest.param(
            {
                "messaging_product": "whatsapp",
                "to": "16505551234",
                "type": "image",
                "image": {"caption": "c"},
            },
            400,
            131008,
            id="media-no-id-or-link",
        ),
        pytest.param(
            {
                "messaging_product": "whatsapp",
                "to": "16505551234",
                "type": "image",
                "image": {"id": "1", "link": "https://x"},
            },
            400,
            131009,
            id="media-id-and-link",
        ),
        pytest.param(
            {
                "messaging_product": "whatsapp",
                "to": "16505551234",
                "type": "interactive",
                "interactive": {
                    "type": "button",
                    "body": {"text": "Pick"},
                    "action": {
                        "buttons": [
                            {"type": "reply", "reply": {"id": f"b{i}", "title": f"B{i}"}} for i in range(4)
                        ]
                    },
                },
            },
            400,
            131009,
            id="four-buttons",
        ),
        pytest.param(
            {
                "messaging_product": "whatsapp",
                "to": "16505551234",
                "type": "template",
                "template": {"language": {"code": "en"}},
            },
            400,
            100,
            id="template-no-name",
        ),
        pytest.param(
            {
                "messaging_product": "whatsapp",
                "to": "16505551234",
                "type": "template",
                "template": {"name": "hello_world"},
            },
            400,
            100,
            id="template-no-language",
        ),
        pytest.param(
            {"messaging_product": "whatsapp", "status": "read"}, 400, 131008, id="read-without-message-id"
        ),
    ],
)
def test_validation_errors(body: Any, http_status: int, code: int) -> None:
    async def scenario(h: Harness) -> None:
        status, data = await h.send(body)
        assert_graph_error(status, data, http_status, code)
        stats = await h.stats()
        assert stats["messages_accepted"] == 0
        assert stats["errors_by_code"] == {str(code): 1}

    run(scenario)


# Request bodies from Meta's docs/OpenAPI examples (protocol.md A2), with a real recipient.
VALID_BODIES: dict[str, dict[str, Any]] = {
    "text-preview": {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "+16505551234",
        "type": "text",
        "text": {"preview_url": True, "body": "Here's the link: https://www.meta.com/quest/quest-3/"},
    },
    "text-without-type": {
        "messaging_product": "whatsapp",
        "to": "16505551234",
        "text": {"body": "type defaults to text"},
    },
    "reply": {
        "context": {"message_id": "wamid.PREV"},
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "text": {"body": "reply", "preview_url": False},
        "to": "16505551234",
        "type": "text",
    },
    "image-link": {
        "image": {"link": "https://example.com/a.jpg"},
        "messaging_product": "whatsapp",
        "to": "16505551234",
        "type": "image",
    },
    "document-id": {
        "document": {"caption": "Invoice", "filename": "invoice.pdf", "id": "1037543291543636"},
        "messaging_product": "whatsapp",
        "to": "16505551234",
        "type": "document",
    },
    "audio": {"audio": {"id": "123"}, "messaging_product": "whatsapp", "to": "16505551234", "type": "audio"},
    "sticker": {
        "messaging_product": "whatsapp",
        "sticker": {"id": "123"},
        "to": "16505551234",
        "type": "sticker",
    },
    "video": {
        "messaging_product": "whatsapp",
        "to": "16505551234",
        "type": "video",
        "video": {"caption": "c", "link": "https://example.com/v.mp4"},
    },
    "location": {
        "location": {
            "address": "1 Hacker Way",
            "latitude": 37.758056,
            "longitude": -122.425332,
            "name": "META HQ",
        },
        "messaging_product": "whatsapp",
        "to": "16505551234",
        "type": "location",
    },
    "contacts": {
        "contacts": [
            {
                "name": {"first_name": "John", "formatted_name": "John Smith", "last_name": "Smith"},
                "phones": [{"phone": "+1 (940) 555-1234", "type": "HOME"}],
            }
        ],
        "messaging_product": "whatsapp",
        "to": "16505551234",
        "type": "contacts",
    },
    "reaction": {
        "messaging_product": "whatsapp",
        "reaction": {"emoji": "\U0001f600", "message_id": "wamid.HBgLM..."},
        "to": "16505551234",
        "type": "reaction",
    },
    "buttons": {
        "interactive": {
            "action": {
                "buttons": [
                    {"reply": {"id": "yes", "title": "Yes"}, "type": "reply"},
                    {"reply": {"id": "no", "title": "No"}, "type": "reply"},
                ]
            },
            "body": {"text": "Confirm?"},
            "type": "button",
        },
        "messaging_product": "whatsapp",
        "to": "16505551234",
        "type": "interactive",
    },
    "list": {
        "interactive": {
            "action": {
                "button": "Options",
                "sections": [{"rows": [{"description": "d", "id": "r1", "title": "Row 1"}], "title": "S"}],
            },
            "body": {"text": "Pick one"},
            "footer": {"text": "f"},
            "header": {"text": "h", "type": "text"},
            "type": "list",
        },
        "messaging_product": "whatsapp",
        "to": "16505551234",
        "type": "interactive",
    },
    "cta_url": {
        "messaging_product": "whatsapp",
        "to": "+16505555555",
        "type": "interactive",
        "interactive": {
            "type": "cta_url",
            "body": {"text": "Tap below."},
            "action": {
                "name": "cta_url",
                "parameters": {"display_text": "See Dates", "url": "https://example.com"},
            },
        },
    },
    "flow": {
        "interactive": {
            "action": {
                "name": "flow",
                "parameters": {
                    "flow_action": "navigate",
                    "flow_cta": "Open",
                    "flow_message_version": "3",
                    "flow_name": "f",
                    "flow_token": "t",
                },
            },
            "body": {"text": "b"},
            "type": "flow",
        },
        "messaging_product": "whatsapp",
        "to": "16505551234",
        "type": "interactive",
    },
    "template-hello-world": template("hello_world", "en_US"),
}


@pytest.mark.parametrize("name", sorted(VALID_BODIES))
def test_meta_example_bodies_are_accepted(name: str) -> None:
    async def scenario(h: Harness) -> None:
        status, data = await h.send(VALID_BODIES[name])
        assert status == 200, data
        assert data["messages"][0]["id"].startswith("wamid.")

    run(scenario)


def test_mark_as_read() -> None:
    async def scenario(h: Harness) -> None:
        body = {
            "messaging_product": "whatsapp",
            "status": "read",
            "message_id": "wamid.X",
            "typing_indicator": {"type": "text"},
        }
        status, data = await h.send(body)
        assert (status, data) == (200, {"success": True})
        stats = await h.stats()
        assert stats["read_receipts"] == 1 and stats["messages_accepted"] == 0

    run(scenario)


def test_unknown_phone_number_id() -> None:
    async def scenario(h: Harness) -> None:
        status, data = await h.send(text(), pnid="999")
        assert status == 400
        assert data["error"]["code"] == 100 and data["error"]["error_subcode"] == 33

    run(scenario)


# --- templates -----------------------------------------------------------------------------


def test_template_send_validation() -> None:
    async def scenario(h: Harness) -> None:
        status, data = await h.send(template("hello_world", "en_US"))
        assert status == 200
        assert data["messages"][0]["message_status"] == "accepted"

        status, data = await h.send(template("no_such_template", "en_US"))
        assert_graph_error(status, data, 404, 132001)
        assert data["error"]["message"] == "(#132001) Template name does not exist in the translation"
        status, data = await h.send(template("hello_world", "pt_BR"))
        assert_graph_error(status, data, 404, 132001)

        # positional: order_update needs exactly 2 body parameters
        status, data = await h.send(template("order_update", "en", [body_params("Maria")]))
        assert_graph_error(status, data, 400, 132000)
        status, data = await h.send(template("order_update", "en", [body_params("Maria", "#1", "extra")]))
        assert_graph_error(status, data, 400, 132000)
        status, data = await h.send(template("order_update", "en"))
        assert_graph_error(status, data, 400, 132000)
        status, _ = await h.send(template("order_update", "en", [body_params("Maria", "#1042")]))
        assert status == 200
        # hello_world has no parameters at all
        status, data = await h.send(template("hello_world", "en_US", [body_params("x")]))
        assert_graph_error(status, data, 400, 132000)

    run(scenario)


def test_template_named_parameters() -> None:
    def named(**values: str) -> dict[str, Any]:
        return {
            "type": "body",
            "parameters": [{"type": "text", "parameter_name": k, "text": v} for k, v in values.items()],
        }

    async def scenario(h: Harness) -> None:
        status, _ = await h.send(
            template("appointment_reminder", "en", [named(time="3 PM", first_name="Jo")])
        )
        assert status == 200
        status, data = await h.send(template("appointment_reminder", "en", [body_params("Jo", "3 PM")]))
        assert_graph_error(status, data, 400, 132012)
        status, data = await h.send(
            template("appointment_reminder", "en", [named(first_name="Jo", hour="3")])
        )
        assert_graph_error(status, data, 400, 132000)
        status, data = await h.send(template("appointment_reminder", "en", [named(first_name="Jo")]))
        assert_graph_error(status, data, 400, 132000)

    run(scenario)


def test_template_media_header() -> None:
    header = {
        "type": "header",
        "parameters": [{"type": "image", "image": {"link": "https://example.com/p.jpg"}}],
    }

    async def scenario(h: Harness) -> None:
        status, data = await h.send(template("promo_offer", "en", [body_params("SPRING20")]))
        assert_graph_error(status, data, 400, 132012)
        status, _ = await h.send(
            template(
                "promo_offer",
                "en",
                [
                    header,
                    body_params("SPRING20"),
                    {
                        "type": "button",
                        "sub_type": "quick_reply",
                        "index": "0",
                        "parameters": [{"type": "payload", "payload": "shop"}],
                    },
                ],
            )
        )
        assert status == 200
        status, data = await h.send(
            template(
                "promo_offer",
                "en",
                [
                    header,
                    body_params("X"),
                    {"type": "button", "sub_type": "quick_reply", "index": 5, "parameters": []},
                ],
            )
        )
        assert_graph_error(status, data, 400, 131009)

    run(scenario)


def test_templates_paging_and_filters() -> None:
    async def scenario(h: Harness) -> None:
        status, page1 = await h.request("GET", "/v21.0/emulator-waba/message_templates?limit=3")
        assert status == 200
        assert [t["name"] for t in page1["data"]] == ["hello_world", "order_update", "appointment_reminder"]
        assert set(page1["data"][0]) >= {"name", "language", "status", "category", "components", "id"}
        assert set(page1["paging"]["cursors"]) == {"before", "after"}
        async with h.session.get(page1["paging"]["next"], headers={"Authorization": "Bearer t"}) as response:
            page2 = await response.json()
        assert [t["name"] for t in page2["data"]] == ["promo_offer"]
        assert "next" not in page2["paging"]

        _, filtered = await h.request(
            "GET", "/v21.0/emulator-waba/message_templates?name=promo_offer&fields=name,status"
        )
        assert filtered["data"] == [{"name": "promo_offer", "status": "APPROVED", "id": "1000000000000004"}]
        _, pending = await h.request("GET", "/v21.0/emulator-waba/message_templates?status=pending")
        assert pending == {"data": []}
        status, data = await h.request("GET", "/v21.0/emulator-waba/message_templates?after=%%%")
        assert status == 400 and data["error"]["code"] == 100

    run(scenario)


def test_template_creation_review_webhook_and_delete() -> None:
    definition = {
        "name": "shipping_notice",
        "language": "en_US",
        "category": "utility",
        "components": [
            {
                "type": "BODY",
                "text": "Your parcel {{1}} arrives {{2}}.",
                "example": {"body_text": [["A1", "today"]]},
            },
            {"type": "BUTTONS", "buttons": [{"type": "QUICK_REPLY", "text": "Thanks"}]},
        ],
    }

    async def scenario(h: Harness) -> None:
        status, created = await h.request("POST", "/v21.0/emulator-waba/message_templates", json=definition)
        assert status == 200
        assert set(created) == {"id", "status", "category"}
        assert created["status"] == "PENDING" and created["category"] == "UTILITY"
        # not sendable while pending
        status, data = await h.send(template("shipping_notice", "en_US", [body_params("A1", "today")]))
        assert_graph_error(status, data, 404, 132001)

        await h.settle(0.01)
        [update] = h.receiver.changes("message_template_status_update")
        assert update == {
            "event": "APPROVED",
            "message_template_id": int(created["id"]),
            "message_template_name": "shipping_notice",
            "message_template_language": "en_US",
            "reason": "NONE",
            "message_template_category": "UTILITY",
        }
        assert h.receiver.posts[0]["entry"][0]["id"] == "emulator-waba"
        _, listed = await h.request("GET", "/v21.0/emulator-waba/message_templates?name=shipping_notice")
        assert listed["data"][0]["status"] == "APPROVED"
        status, _ = await h.send(template("shipping_notice", "en_US", [body_params("A1", "today")]))
        assert status == 200

        status, data = await h.request("POST", "/v21.0/emulator-waba/message_templates", json=definition)
        assert status == 400 and data["error"]["code"] == 100
        status, data = await h.request(
            "POST", "/v21.0/emulator-waba/message_templates", json={**definition, "name": "Bad Name"}
        )
        assert status == 400 and data["error"]["code"] == 100

        status, data = await h.request(
            "DELETE", "/v21.0/emulator-waba/message_templates?name=shipping_notice"
        )
        assert (status, data) == (200, {"success": True})
        status, data = await h.send(template("shipping_notice", "en_US", [body_params("A1", "today")]))
        assert_graph_error(status, data, 404, 132001)
        status, _ = await h.request("DELETE", "/v21.0/emulator-waba/message_templates?name=shipping_notice")
        assert status == 400

        # a name containing "reject" is rejected by review
        _, created = await h.request(
            "POST", "/v21.0/emulator-waba/message_templates", json={**definition, "name": "reject_me"}
        )
        await h.settle(0.01)
        assert h.receiver.changes("message_template_status_update")[-1]["event"] == "REJECTED"
        assert (await h.stats())["template_events_posted"] == 2

    run(scenario)


def test_control_template_status_change() -> None:
    async def scenario(h: Harness) -> None:
        status, data = await h.control(
            "POST", "template-status", {"name": "order_update", "language": "en", "status": "PAUSED"}
        )
        assert status == 200 and data["posted"] is True
        assert h.receiver.changes("message_template_status_update")[0]["event"] == "PAUSED"
        status, data = await h.send(template("order_update", "en", [body_params("a", "b")]))
        assert_graph_error(status, data, 400, 132015)
        for new_status, http_status, code in (("DISABLED", 400, 132016), ("REJECTED", 404, 132001)):
            await h.control(
                "POST", "template-status", {"name": "order_update", "language": "en", "status": new_status}
            )
            status, data = await h.send(template("order_update", "en", [body_params("a", "b")]))
            assert_graph_error(status, data, http_status, code)
        await h.control(
            "POST", "template-status", {"name": "order_update", "language": "en", "status": "APPROVED"}
        )
        status, _ = await h.send(template("order_update", "en", [body_params("a", "b")]))
        assert status == 200

    run(scenario)


# --- window ----------------------------------------------------------------------------------


def test_window_enforcement() -> None:
    async def scenario(h: Harness) -> None:
        status, data = await h.send(text(to="16505550001"))
        assert_graph_error(status, data, 400, 131047)
        assert data["error"]["message"] == "(#131047) Re-engagement message"
        status, _ = await h.send({**template("hello_world", "en_US"), "to": "16505550001"})
        assert status == 200
        status, inbound = await h.control(
            "POST", "inbound", {"phone_number_id": PNID, "from": "16505550001", "text": "hi"}
        )
        assert status == 200 and inbound["posted"] is True
        status, _ = await h.send(text(to="+1 650 555 0001"))
        assert status == 200
        status, data = await h.send(text(to="16505550002"))
        assert status == 400 and data["error"]["code"] == 131047

    run(scenario, enforce_window=True)


# --- media -----------------------------------------------------------------------------------


def test_media_upload_get_download_delete() -> None:
    async def scenario(h: Harness) -> None:
        content = b"\x89PNG\r\n\x1a\n" + b"x" * 1000
        form = aiohttp.FormData()
        form.add_field("messaging_product", "whatsapp")
        form.add_field("file", content, filename="pic.png", content_type="image/png")
        status, data = await h.request("POST", f"/v21.0/{PNID}/media", data=form)
        assert status == 200 and set(data) == {"id"}
        media_id = data["id"]

        status, info = await h.request("GET", f"/v21.0/{media_id}?phone_number_id={PNID}")
        assert status == 200
        assert set(info) == {"messaging_product", "url", "mime_type", "sha256", "file_size", "id"}
        assert (
            info["mime_type"] == "image/png" and info["file_size"] == len(content) and info["id"] == media_id
        )
        assert info["url"] == f"{h.base}/_emulator/media/{media_id}"

        async with h.session.get(info["url"]) as response:
            assert response.status == 401
        async with h.session.get(info["url"], headers={"Authorization": "Bearer t"}) as response:
            assert response.status == 200
            assert response.content_type == "image/png"
            assert await response.read() == content

        status, data = await h.request("DELETE", f"/v21.0/{media_id}")
        assert (status, data) == (200, {"success": True})
        status, data = await h.request("GET", f"/v21.0/{media_id}")
        assert status == 400 and data["error"]["code"] == 100

        missing = aiohttp.FormData()
        missing.add_field("messaging_product", "whatsapp")
        status, data = await h.request("POST", f"/v21.0/{PNID}/media", data=missing)
        assert status == 400 and data["error"]["code"] == 100
        assert (await h.stats())["media_uploads"] == 1

    run(scenario)


# --- phone numbers ----------------------------------------------------------------------------


def test_phone_number_info() -> None:
    async def scenario(h: Harness) -> None:
        status, info = await h.request("GET", f"/v21.0/{PNID}")
        assert status == 200
        assert info["display_phone_number"] == DISPLAY and info["quality_rating"] == "GREEN"
        assert info["throughput"] == {"level": "STANDARD"} and info["id"] == PNID
        assert "whatsapp_business_manager_messaging_limit" in info
        _, some = await h.request("GET", f"/v21.0/{PNID}?fields=throughput")
        assert some == {"throughput": {"level": "STANDARD"}, "id": PNID}
        _, listed = await h.request("GET", "/v21.0/emulator-waba/phone_numbers")
        assert [n["id"] for n in listed["data"]] == [PNID]
        status, _ = await h.request("GET", "/v21.0/424242")
        assert status == 400

    run(scenario)


# --- status webhooks -------------------------------------------------------------------------


def test_statuses_arrive_signed_batched_in_order_with_callback_data() -> None:
    async def scenario(h: Harness) -> None:
        wamids = []
        for i in range(3):
            _, data = await h.send(text(to=f"1650555000{i}", biz_opaque_callback_data=f"msg-{i}"))
            wamids.append(data["messages"][0]["id"])
        _, data = await h.send(template("hello_world", "en_US"))
        wamids.append(data["messages"][0]["id"])
        await h.settle(0.1)

        assert h.receiver.bad_signatures == 0
        assert len(h.receiver.posts) == 1, "all due statuses go out in one POST"
        post = h.receiver.posts[0]
        assert post["object"] == "whatsapp_business_account"
        assert post["entry"][0]["id"] == "emulator-waba"
        [change] = post["entry"][0]["changes"]
        assert change["field"] == "messages"
        assert change["value"]["metadata"] == {"display_phone_number": DISPLAY, "phone_number_id": PNID}
        assert change["value"]["messaging_product"] == "whatsapp"
        statuses = change["value"]["statuses"]
        assert len(statuses) == 12
        assert by_message(statuses) == {w: ["sent", "delivered", "read"] for w in wamids}
        for item in statuses:
            assert isinstance(item["timestamp"], str) and item["timestamp"].isdigit()
        first = statuses[0]
        assert first["id"] == wamids[0] and first["status"] == "sent"
        assert first["recipient_id"] == "16505550000"
        assert first["biz_opaque_callback_data"] == "msg-0"
        assert first["conversation"]["origin"] == {"type": "service"}
        assert "expiration_timestamp" in first["conversation"]
        assert first["pricing"]["pricing_model"] == "PMP" and first["pricing"]["category"] == "service"
        reads = [s for s in statuses if s["status"] == "read"]
        assert all("conversation" not in s and "pricing" not in s for s in reads)
        template_sent = next(s for s in statuses if s["id"] == wamids[3] and s["status"] == "sent")
        assert "biz_opaque_callback_data" not in template_sent
        assert (
            template_sent["pricing"]["category"] == "utility" and template_sent["pricing"]["billable"] is True
        )

        stats = await h.stats()
        assert stats["status_events_posted"] == 12 and stats["webhooks_posted"] == 1
        assert stats["pending_events"] == 0

    run(scenario)


def test_batches_are_capped_at_batch_size() -> None:
    async def scenario(h: Harness) -> None:
        for i in range(3):
            await h.send(text(to=f"1650555000{i}"))
        await h.settle(0.1)
        assert [len(v["statuses"]) for v in h.receiver.changes()] == [4, 4, 1]

    run(scenario, batch_size=4, webhook_concurrency=1)


def test_background_flusher_delivers_without_manual_flush() -> None:
    async def scenario(h: Harness) -> None:
        _, data = await h.send(text())
        wamid = data["messages"][0]["id"]
        # the harness starts with the flusher effectively off; turning it on at runtime works
        status, _ = await h.control("POST", "config", {"flush_interval": 0.01})
        assert status == 200
        await h.wait_for(lambda: len(h.receiver.statuses()) == 3)
        assert by_message(h.receiver.statuses()) == {wamid: ["sent", "delivered", "read"]}

    run(scenario)


def test_skip_delivered_share() -> None:
    async def scenario(h: Harness) -> None:
        _, data = await h.send(text())
        await h.settle(0.1)
        assert by_message(h.receiver.statuses()) == {data["messages"][0]["id"]: ["sent", "read"]}

    run(scenario, skip_delivered_share=1.0)


def test_duplicate_share() -> None:
    async def scenario(h: Harness) -> None:
        _, data = await h.send(text(biz_opaque_callback_data="dup"))
        await h.settle(0.15)
        statuses = h.receiver.statuses()
        assert sorted(s["status"] for s in statuses) == [
            "delivered",
            "delivered",
            "read",
            "read",
            "sent",
            "sent",
        ]
        assert all(s["biz_opaque_callback_data"] == "dup" for s in statuses)
        assert {s["id"] for s in statuses} == {data["messages"][0]["id"]}

    run(scenario, duplicate_share=1.0)


def test_out_of_order_share() -> None:
    async def scenario(h: Harness) -> None:
        _, data = await h.send(text())
        await h.settle(0.1)
        statuses = h.receiver.statuses()
        assert [s["status"] for s in statuses] == ["read", "delivered", "sent"]
        # the timestamps still tell the true order
        assert int(statuses[2]["timestamp"]) <= int(statuses[1]["timestamp"]) <= int(statuses[0]["timestamp"])
        assert {s["id"] for s in statuses} == {data["messages"][0]["id"]}

    run(scenario, out_of_order_share=1.0)


def test_fail_share() -> None:
    async def scenario(h: Harness) -> None:
        status, data = await h.send(text(biz_opaque_callback_data="f1"))
        assert status == 200, "failures are asynchronous"
        await h.settle(0.1)
        [failed] = h.receiver.statuses()
        assert failed["status"] == "failed" and failed["id"] == data["messages"][0]["id"]
        assert failed["biz_opaque_callback_data"] == "f1"
        assert failed["errors"] == [
            {
                "code": 131049,
                "title": "This message was not delivered to maintain healthy ecosystem engagement.",
                "message": "This message was not delivered to maintain healthy ecosystem engagement.",
                "error_data": {
                    "details": "In order to maintain a healthy ecosystem engagement, the message failed to be delivered."
                },
                "href": "/documentation/business-messaging/whatsapp/support/error-codes",
            }
        ]
        await h.control("POST", "config", {"fail_codes": [131026]})
        await h.send(text())
        await h.settle(0.1)
        assert h.receiver.statuses()[-1]["errors"][0]["code"] == 131026

    run(scenario, fail_share=1.0, fail_codes=(131049,))


def test_fail_codes_mix_with_seed() -> None:
    async def scenario(h: Harness) -> None:
        for _ in range(20):
            await h.send(text())
        await h.settle(0.1)
        codes = {s["errors"][0]["code"] for s in h.receiver.statuses()}
        assert codes == {131026, 131049}

    run(scenario, fail_share=1.0)


def test_seed_makes_shares_reproducible() -> None:
    async def pattern() -> list[list[str]]:
        result: list[list[str]] = []

        async def scenario(h: Harness) -> None:
            wamids = []
            for _ in range(30):
                _, data = await h.send(text())
                wamids.append(data["messages"][0]["id"])
            await h.settle(0.15)
            seen = by_message(h.receiver.statuses())
            result.extend(seen.get(w, []) for w in wamids)

        from tests.emulator.harness import running

        async with running(seed=42, fail_share=0.3, skip_delivered_share=0.3, read_share=0.7) as h:
            await scenario(h)
        return result

    async def main() -> None:
        first, second = await pattern(), await pattern()
        assert first == second
        assert len({tuple(p) for p in first}) > 1, "shares below 1 mix outcomes"

    asyncio.run(main())


def test_no_status_webhooks() -> None:
    async def scenario(h: Harness) -> None:
        for _ in range(5):
            status, _ = await h.send(text())
            assert status == 200
        await h.settle(0.1)
        assert h.receiver.posts == []
        stats = await h.stats()
        assert (
            stats["messages_accepted"] == 5 and stats["pending_events"] == 0 and stats["webhooks_posted"] == 0
        )

    run(scenario, status_webhooks=False, reply_share=1.0)


def test_webhook_retries_then_counts_failures() -> None:
    async def scenario(h: Harness) -> None:
        h.receiver.fail_next = 2
        await h.send(text())
        await h.settle(0.1)
        assert len(h.receiver.statuses()) == 3
        stats = await h.stats()
        assert stats["webhook_attempt_errors"] == 2 and stats["webhook_failures"] == 0

        h.receiver.fail_next = 100
        await h.send(text())
        await h.settle(0.1)
        stats = await h.stats()
        assert stats["webhook_failures"] == 1
        assert stats["events_dropped"] == 3
        assert stats["webhook_attempt_errors"] == 2 + 3

    run(scenario)


# --- injected errors ---------------------------------------------------------------------------


def test_rate_limit_and_server_error_injection_at_runtime() -> None:
    async def scenario(h: Harness) -> None:
        status, _ = await h.send(text())
        assert status == 200

        status, data = await h.control("POST", "config", {"rate_limit_share": 1.0})
        assert status == 200 and data["rate_limit_share"] == 1.0
        status, data = await h.send(text())
        assert status == 429
        assert data["error"]["code"] == 130429 and set(data["error"]) == ERROR_KEYS

        await h.control("POST", "config", {"rate_limit_share": 0.0, "server_error_share": 1.0})
        codes = set()
        for _ in range(12):
            status, data = await h.send(text())
            assert status in (500, 503)
            codes.add((status, data["error"]["code"]))
        assert codes == {(500, 131000), (503, 2)}

        await h.control("POST", "config", {"server_error_share": 0.0})
        status, _ = await h.send(text())
        assert status == 200
        stats = await h.stats()
        assert stats["injected_rate_limits"] == 1 and stats["injected_server_errors"] == 12
        assert stats["messages_accepted"] == 2

    run(scenario)


def test_rate_limit_status_can_be_400() -> None:
    async def scenario(h: Harness) -> None:
        status, data = await h.send(text())
        assert status == 400 and data["error"]["code"] == 130429

    run(scenario, rate_limit_share=1.0, rate_limit_status=400)


def test_latency_is_added() -> None:
    async def scenario(h: Harness) -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        status, _ = await h.send(text())
        assert status == 200
        assert loop.time() - started >= 0.04  # a lower bound only: the delay was applied

    run(scenario, latency_ms=50)


def test_config_rejects_bad_values() -> None:
    async def scenario(h: Harness) -> None:
        for change in ({"fail_share": 2}, {"port": 1}, {"nope": 1}, {"enforce_window": "yes"}):
            status, data = await h.control("POST", "config", change)
            assert status == 400 and "error" in data
        status, config = await h.control("GET", "config")
        assert status == 200 and config["fail_share"] == 0.0

    run(scenario)


# --- control API: inbound, replies, stats ------------------------------------------------------


def test_inbound_text_and_button_reply() -> None:
    async def scenario(h: Harness) -> None:
        status, data = await h.control(
            "POST",
            "inbound",
            {"phone_number_id": PNID, "from": "+1 650 555 1234", "name": "Sheena", "text": "Hello"},
        )
        assert status == 200 and data["posted"] is True and data["status"] == 200
        post = h.receiver.posts[0]
        [change] = post["entry"][0]["changes"]
        value = change["value"]
        assert value["metadata"]["phone_number_id"] == PNID
        assert value["contacts"] == [{"profile": {"name": "Sheena"}, "wa_id": "16505551234"}]
        [message] = value["messages"]
        assert message["from"] == "16505551234" and message["id"] == data["id"]
        assert message["type"] == "text" and message["text"] == {"body": "Hello"}
        assert message["timestamp"].isdigit() and "context" not in message

        _, sent = await h.send(VALID_BODIES["buttons"])
        wamid = sent["messages"][0]["id"]
        status, _ = await h.control(
            "POST", "inbound", {"from": "16505551234", "button_reply": {"id": "yes", "title": "Yes"}}
        )
        assert status == 200
        reply = h.receiver.messages()[-1]
        assert reply["context"] == {"from": DISPLAY, "id": wamid}
        assert reply["interactive"] == {"type": "button_reply", "button_reply": {"id": "yes", "title": "Yes"}}
        assert h.receiver.bad_signatures == 0
        stats = await h.stats()
        assert stats["inbound_injected"] == 2 and stats["inbound_messages_posted"] == 2

        status, data = await h.control("POST", "inbound", {"from": "16505551234"})
        assert status == 400
        status, data = await h.control(
            "POST", "inbound", {"phone_number_id": "nope", "from": "1650555", "text": "x"}
        )
        assert status == 404

    run(scenario)


def test_simulated_replies() -> None:
    promo = template(
        "promo_offer",
        "en",
        [
            {"type": "header", "parameters": [{"type": "image", "image": {"id": "123"}}]},
            body_params("CODE"),
            {
                "type": "button",
                "sub_type": "quick_reply",
                "index": 0,
                "parameters": [{"type": "payload", "payload": "SHOP"}],
            },
        ],
        to="16505550003",
    )

    async def scenario(h: Harness) -> None:
        _, plain = await h.send(text(to="16505550001"))
        _, buttons = await h.send({**VALID_BODIES["buttons"], "to": "16505550002"})
        _, promo_sent = await h.send(promo)
        await h.settle(0.1)
        await h.settle(0.05)
        replies = {m["from"]: m for m in h.receiver.messages()}
        assert set(replies) == {"16505550001", "16505550002", "16505550003"}
        assert replies["16505550001"]["type"] == "text" and "context" not in replies["16505550001"]
        button_reply = replies["16505550002"]
        assert button_reply["type"] == "interactive"
        assert button_reply["interactive"]["button_reply"]["id"] in {"yes", "no"}
        assert button_reply["context"]["id"] == buttons["messages"][0]["id"]
        template_reply = replies["16505550003"]
        assert template_reply["type"] == "button"
        assert template_reply["button"] in (
            {"payload": "SHOP", "text": "Shop now"},
            {"payload": "Stop promotions", "text": "Stop promotions"},
        )
        assert template_reply["context"]["id"] == promo_sent["messages"][0]["id"]
        assert plain["messages"][0]["id"]
        # a reply opens the customer's window
        await h.control("POST", "config", {"reply_share": 0.0})
        status, _ = await h.send(text(to="16505550001"))
        assert status == 200
        assert (await h.stats())["replies_scheduled"] == 3

    run(scenario, reply_share=1.0, enforce_window=False)


def test_stats_count_per_recipient_and_callback_data_and_messages_log() -> None:
    async def scenario(h: Harness) -> None:
        await h.send(text(to="16505550001", biz_opaque_callback_data="m-1"))
        await h.send(text(to="+1 650 555 0001", biz_opaque_callback_data="m-1"))
        await h.send(text(to="16505550002", biz_opaque_callback_data="m-2"))
        await h.send(text(to="16505550003"))
        await h.send(text(to="bad"))
        stats = await h.stats()
        assert stats["requests"] == 5 and stats["message_requests"] == 5 and stats["messages_accepted"] == 4
        assert stats["by_recipient"] == {"16505550001": 2, "16505550002": 1, "16505550003": 1}
        assert stats["by_callback_data"] == {"m-1": 2, "m-2": 1}
        assert stats["duplicate_callback_data"] == 1
        assert stats["errors_by_code"] == {"131009": 1}
        _, summary = await h.control("GET", "stats?summary=1")
        assert "by_recipient" not in summary and summary["recipients"] == 3

        status, log = await h.control("GET", "messages?since=0")
        assert status == 200 and [m["seq"] for m in log["messages"]] == [1, 2, 3, 4]
        first = log["messages"][0]
        assert first["to"] == "16505550001" and first["biz_opaque_callback_data"] == "m-1"
        assert first["body"]["text"] == {"body": "hello"} and first["id"].startswith("wamid.")
        _, tail = await h.control("GET", "messages?since=2&limit=1")
        assert [m["seq"] for m in tail["messages"]] == [3] and tail["last_seq"] == 3

        status, _ = await h.control("POST", "reset")
        assert status == 200
        stats = await h.stats()
        assert (
            stats["messages_accepted"] == 0 and stats["by_recipient"] == {} and stats["pending_events"] == 0
        )
        _, log = await h.control("GET", "messages?since=0")
        assert log["messages"] == []

    run(scenario, status_webhooks=False)


def test_unknown_control_endpoint() -> None:
    async def scenario(h: Harness) -> None:
        status, data = await h.control("GET", "nothing")
        assert status == 404 and "error" in data

    run(scenario)


def test_without_webhook_url_nothing_is_posted_but_templates_still_approve() -> None:
    async def scenario(h: Harness) -> None:
        await h.send(text())
        _, created = await h.request(
            "POST",
            "/v21.0/emulator-waba/message_templates",
            json={
                "name": "quiet",
                "language": "en",
                "category": "UTILITY",
                "components": [{"type": "BODY", "text": "Hi"}],
            },
        )
        await h.settle(0.05)
        _, listed = await h.request("GET", "/v21.0/emulator-waba/message_templates?name=quiet")
        assert listed["data"][0]["status"] == "APPROVED"
        _, inbound = await h.control("POST", "inbound", {"from": "16505551234", "text": "hi"})
        assert inbound["posted"] is False
        assert h.receiver.posts == []
        assert SECRET

    run(scenario, webhooks=False)


# --- its own event loop ----------------------------------------------------------------------


def test_a_held_up_event_loop_is_reported_as_a_stall() -> None:
    """A request that arrives while the emulator's loop is held up is stamped late; the stats
    say when that happened, so a benchmark can tell a late stamp from a late send."""
    import time

    async def scenario(h: Harness) -> None:
        await asyncio.sleep(0.03)
        before = time.time()
        time.sleep(0.08)  # holds the loop the emulator shares with this test
        await asyncio.sleep(0.03)
        stats = await h.stats()
        held = [(ended_at, ms) for ended_at, ms in stats["loop_stalls"] if before < ended_at <= time.time()]
        assert held and max(ms for _, ms in held) >= 60, stats["loop_stalls"]
        assert stats["loop_lag_max_ms"] >= 60
        reset_at = time.time()
        await h.control("POST", "reset")
        assert all(ended_at >= reset_at for ended_at, _ in (await h.stats())["loop_stalls"])

    run(scenario)
