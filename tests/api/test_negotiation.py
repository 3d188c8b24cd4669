"""The API's content negotiation: the usual Accept headers are answered at once, and every
other one exactly as DRF's own negotiation answers it."""

from __future__ import annotations

import pytest
from rest_framework.exceptions import NotAcceptable
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BrowsableAPIRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory

from apps.api.negotiation import JsonNegotiation


def _request(accept: str | None, query: str = "") -> Request:
    extra = {"HTTP_ACCEPT": accept} if accept is not None else {}
    return Request(APIRequestFactory().get(f"/api/v1/contacts{query}", **extra))


@pytest.mark.parametrize("accept", [None, "", "*/*", "application/json", "application/json; indent=4",
                                    "application/*", "text/html, application/json;q=0.9"])
@pytest.mark.parametrize("query", ["", "?page=2"])
def test_the_answer_is_drfs_own(accept, query):
    def outcome(negotiation):
        try:
            renderer, media_type = negotiation.select_renderer(_request(accept, query), [JSONRenderer()])
        except NotAcceptable:
            return "406"
        return type(renderer), media_type

    assert outcome(JsonNegotiation()) == outcome(DefaultContentNegotiation())


def test_several_renderers_and_format_overrides_go_through_drfs_negotiation():
    renderers = [BrowsableAPIRenderer(), JSONRenderer()]
    assert type(JsonNegotiation().select_renderer(_request("text/html"), renderers)[0]) is BrowsableAPIRenderer
    chosen = JsonNegotiation().select_renderer(_request("*/*", "?format=api"), renderers)
    assert type(chosen[0]) is BrowsableAPIRenderer


def test_an_accept_the_api_cannot_answer_is_still_406(api_client):
    response = api_client.get("/api/v1/contacts", HTTP_ACCEPT="text/html")
    assert response.status_code == 406
    assert response.json()["error"]["code"] == "not_acceptable"
    assert api_client.get("/api/v1/contacts", HTTP_ACCEPT="application/json").status_code == 200
    assert api_client.get("/api/v1/contacts").status_code == 200
