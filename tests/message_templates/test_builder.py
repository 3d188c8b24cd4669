"""The template builder produces exactly Meta's ``POST /<WABA_ID>/message_templates`` body
(protocol.md A8, the shapes of Meta's OpenAPI examples in tests/fixtures) for positional and named
variables, every header kind and every button kind, and explains Meta's rules in words."""

from __future__ import annotations

import pytest

from apps.message_templates import builder
from apps.message_templates.rendering import template_bubble


def draft(**fields):
    data = {"name": "order_update", "category": "UTILITY", "language": "en_US", "parameter_format": "positional",
            "header_type": "none", "body": "Hi {{1}}, your order {{2}} has shipped.", "example_body_1": "Maya",
            "example_body_2": "#10423"}
    data.update(fields)
    return builder.draft_from_data(data)


def test_positional_body_only():
    assert builder.build_payload(draft()) == {
        "name": "order_update", "language": "en_US", "category": "UTILITY", "parameter_format": "positional",
        "components": [{"type": "BODY", "text": "Hi {{1}}, your order {{2}} has shipped.",
                        "example": {"body_text": [["Maya", "#10423"]]}}],
    }


def test_positional_examples_follow_the_numbers_not_the_text_order():
    payload = builder.build_payload(draft(body="Arrives {{2}} for {{1}} today.", example_body_1="Maya",
                                          example_body_2="Monday"))
    assert payload["components"][0]["example"] == {"body_text": [["Maya", "Monday"]]}


def test_named_body_and_text_header():
    payload = builder.build_payload(draft(
        parameter_format="named", header_type="text", header_text="Order {{order_id}}", example_header_order_id="335628",
        body="Thank you, {{first_name}}! Your order number is {{order_number}}.", example_body_first_name="Pablo",
        example_body_order_number="860198-230332", footer="Acme Store"))
    assert payload == {
        "name": "order_update", "language": "en_US", "category": "UTILITY", "parameter_format": "named",
        "components": [
            {"type": "HEADER", "format": "TEXT", "text": "Order {{order_id}}",
             "example": {"header_text_named_params": [{"param_name": "order_id", "example": "335628"}]}},
            {"type": "BODY", "text": "Thank you, {{first_name}}! Your order number is {{order_number}}.",
             "example": {"body_text_named_params": [{"param_name": "first_name", "example": "Pablo"},
                                                    {"param_name": "order_number", "example": "860198-230332"}]}},
            {"type": "FOOTER", "text": "Acme Store"},
        ],
    }


def test_positional_text_header_without_and_with_a_variable():
    plain = builder.build_payload(draft(header_type="text", header_text="Fall Sale"))
    assert plain["components"][0] == {"type": "HEADER", "format": "TEXT", "text": "Fall Sale"}
    with_var = builder.build_payload(draft(header_type="text", header_text="Forget something {{1}}?",
                                           example_header_1="Pablo"))
    assert with_var["components"][0] == {"type": "HEADER", "format": "TEXT", "text": "Forget something {{1}}?",
                                         "example": {"header_text": ["Pablo"]}}


@pytest.mark.parametrize("kind", ["image", "video", "document"])
def test_media_headers(kind):
    handle = "4::aW1hZ2UvanBn:ARYytyb0kLp5htbBB8vWlclG5M9gMBxiEyt4FNCvrueWBOmFmRAztEuNtPGUnEC22Etc"
    payload = builder.build_payload(draft(header_type=kind, header_media_example=handle))
    assert payload["components"][0] == {"type": "HEADER", "format": kind.upper(), "example": {"header_handle": [handle]}}


def test_every_button_kind():
    payload = builder.build_payload(draft(
        category="MARKETING",
        button_kind=["quick_reply", "quick_reply", "url", "url", "phone_number", "copy_code"],
        button_text=["Stop promotions", "Tell me more", "Track", "Shop", "Call", ""],
        button_value=["", "", "https://www.example.com/track/{{1}}", "https://www.example.com/shop", "+1 646 704 3595", ""],
        button_example=["", "", "https://www.example.com/track/ABC123", "", "", "250FF"],
    ))
    assert payload["components"][-1] == {"type": "BUTTONS", "buttons": [
        {"type": "QUICK_REPLY", "text": "Stop promotions"},
        {"type": "QUICK_REPLY", "text": "Tell me more"},
        {"type": "URL", "text": "Track", "url": "https://www.example.com/track/{{1}}",
         "example": ["https://www.example.com/track/ABC123"]},
        {"type": "URL", "text": "Shop", "url": "https://www.example.com/shop"},
        {"type": "PHONE_NUMBER", "text": "Call", "phone_number": "16467043595"},
        {"type": "COPY_CODE", "example": "250FF"},
    ]}


def test_document_header_phone_and_url_buttons_match_metas_example():
    """The shape of Meta's "document header, text body, a phone number button, and a URL button" example."""
    handle = "4::YXBwbGljYXRpb24vcGRm:ARZVv4zuogJMxmAdS3_6T4o_K4ll2806avA7rWpikisTzYPsXXUeKk0REjS"
    payload = builder.build_payload(builder.draft_from_data({
        "name": "order_confirmation", "category": "UTILITY", "language": "en_US", "parameter_format": "positional",
        "header_type": "document", "header_media_example": handle,
        "body": "Thank you for your order, {{1}}! Your order number is {{2}}. Thanks again!",
        "example_body_1": "Mark", "example_body_2": "860198-230332",
        "button_kind": ["phone_number", "url"], "button_text": ["Call", "Contact Support"],
        "button_value": ["16467043595", "https://www.examplesite.com/support"], "button_example": ["", ""],
    }))
    assert payload == {
        "name": "order_confirmation", "language": "en_US", "category": "UTILITY", "parameter_format": "positional",
        "components": [
            {"type": "HEADER", "format": "DOCUMENT", "example": {"header_handle": [handle]}},
            {"type": "BODY", "text": "Thank you for your order, {{1}}! Your order number is {{2}}. Thanks again!",
             "example": {"body_text": [["Mark", "860198-230332"]]}},
            {"type": "BUTTONS", "buttons": [
                {"type": "PHONE_NUMBER", "text": "Call", "phone_number": "16467043595"},
                {"type": "URL", "text": "Contact Support", "url": "https://www.examplesite.com/support"}]},
        ],
    }


def test_authentication_matches_metas_copy_code_example():
    payload = builder.build_payload(builder.draft_from_data({
        "name": "authentication_code_copy_code_button", "category": "AUTHENTICATION", "language": "en_US",
        "security_recommendation": "on", "code_expiration_minutes": "10", "otp_button_text": "Copy Code",
        # Fields of the other categories are ignored.
        "body": "ignored", "header_type": "text", "header_text": "ignored"}))
    assert payload == {
        "category": "AUTHENTICATION", "language": "en_US", "name": "authentication_code_copy_code_button",
        "components": [{"add_security_recommendation": True, "type": "BODY"},
                       {"code_expiration_minutes": 10, "type": "FOOTER"},
                       {"buttons": [{"otp_type": "COPY_CODE", "text": "Copy Code", "type": "OTP"}], "type": "BUTTONS"}],
    }
    stored = builder.draft_components(builder.draft_from_data({
        "name": "otp", "category": "AUTHENTICATION", "language": "en_US", "code_expiration_minutes": "5",
        "otp_button_text": "Copy code"}), for_meta=False)
    assert stored[0]["text"] == "*{{1}}* is your verification code."  # no security sentence: unchecked
    assert stored[1]["text"] == "This code expires in 5 minutes."


@pytest.mark.parametrize(("fields", "key", "words"), [
    ({"name": ""}, "name", "Give the template a name"),
    ({"name": "Order Update"}, "name", "lowercase letters"),
    ({"name": "a" * 513}, "name", "longer than 512"),
    ({"category": "PROMO"}, "category", "Marketing, Utility or Authentication"),
    ({"language": "english"}, "language", "language code"),
    ({"body": ""}, "body", "Write the message body"),
    ({"body": "x" * 1025}, "body", "at most 1,024"),
    ({"body": "{{1}} is here, {{2}} too."}, "body", "starts or ends with a variable"),
    ({"body": "Hello {{1}} and {{3}} there."}, "body", "without gaps"),
    ({"body": "Hello {{name}} there."}, "body", "not a number"),
    ({"body": "Hello {{1 there."}, "body", "unfinished variable"),
    ({"parameter_format": "named", "body": "Hi {{First}} there.", "example_body_First": "x"}, "body", "lowercase"),
    ({"example_body_2": ""}, "example_body_2", "Give an example for {{2}}"),
    ({"header_type": "text", "header_text": ""}, "header_text", "Write the header text"),
    ({"header_type": "text", "header_text": "h" * 61}, "header_text", "at most 60"),
    ({"header_type": "text", "header_text": "{{1}} and {{2}}", "example_header_1": "a", "example_header_2": "b"},
     "header_text", "one variable at most"),
    ({"header_type": "image"}, "header_media_example", "sample image"),
    ({"footer": "f" * 61}, "footer", "at most 60"),
    ({"footer": "Bye {{1}}"}, "footer", "cannot contain variables"),
    ({"button_kind": ["quick_reply", "url", "quick_reply"], "button_text": ["a", "b", "c"],
      "button_value": ["", "https://x.example", ""], "button_example": ["", "", ""]}, "buttons", "together"),
    ({"button_kind": ["url"] * 3, "button_text": ["a", "b", "c"], "button_value": ["https://x.example"] * 3,
      "button_example": [""] * 3}, "buttons", "At most 2 website buttons"),
    ({"button_kind": ["quick_reply"] * 11, "button_text": ["a"] * 11, "button_value": [""] * 11,
      "button_example": [""] * 11}, "buttons", "at most 10 buttons"),
    ({"button_kind": ["phone_number"] * 2, "button_text": ["a", "b"], "button_value": ["15550001111"] * 2,
      "button_example": ["", ""]}, "buttons", "one phone number button"),
    ({"button_kind": ["quick_reply"], "button_text": ["x" * 26], "button_value": [""], "button_example": [""]},
     "button_1", "at most 25"),
    ({"button_kind": ["url"], "button_text": ["Go"], "button_value": ["www.example.com"], "button_example": [""]},
     "button_1", "starts with https://"),
    ({"button_kind": ["url"], "button_text": ["Go"], "button_value": ["https://x.example/{{1}}/a"],
      "button_example": [""]}, "button_1", "may end with one variable"),
    ({"button_kind": ["url"], "button_text": ["Go"], "button_value": ["https://x.example/{{1}}"],
      "button_example": [""]}, "button_1", "example of the full address"),
    ({"button_kind": ["phone_number"], "button_text": ["Call"], "button_value": ["call us"], "button_example": [""]},
     "button_1", "country code"),
    ({"button_kind": ["copy_code"], "button_text": [""], "button_value": [""], "button_example": ["1234567890123456"]},
     "button_1", "at most 15"),
    ({"category": "AUTHENTICATION", "code_expiration_minutes": "91"}, "code_expiration_minutes", "1 to 90"),
])
def test_rules_explained_per_field(fields, key, words):
    problems = builder.draft_problems(draft(**fields))
    assert key in problems, problems
    assert any(words in message for message in problems[key]), problems[key]
    with pytest.raises(ValueError):
        builder.build_payload(draft(**fields))


def test_a_valid_draft_has_no_problems():
    assert builder.draft_problems(draft()) == {}


def test_preview_highlights_variables_with_examples_and_escapes():
    d = draft(body="Hi {{1}}, *your* <b>order</b> {{2}} shipped.", example_body_2="")
    bubble = template_bubble(builder.draft_components(d, for_meta=False), examples=d.examples)
    assert '<span class="var is-filled" title="{{1}}">Maya</span>' in bubble["body"]
    assert '<span class="var" title="{{2}}">{{2}}</span>' in bubble["body"]
    assert "<strong>your</strong>" in bubble["body"] and "&lt;b&gt;order&lt;/b&gt;" in bubble["body"]
