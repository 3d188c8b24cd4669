"""The ``cloudapi_emulator`` command turns its flags into an EmulatorConfig and runs the app."""

from __future__ import annotations

import io
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from apps.providers.emulator.server import EMULATOR_KEY, EmulatorConfig
from apps.providers.management.commands import cloudapi_emulator


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    def fake_run_app(app: Any, **kwargs: Any) -> None:
        seen["config"] = app[EMULATOR_KEY].config
        seen["kwargs"] = kwargs

    monkeypatch.setattr(cloudapi_emulator.web, "run_app", fake_run_app)
    return seen


def test_flags_become_config(captured: dict[str, Any]) -> None:
    call_command(
        "cloudapi_emulator",
        "--port=8099",
        "--webhook-url=http://127.0.0.1:8000/webhooks/meta/",
        "--app-secret=s3cret",
        "--access-token=tok",
        "--number=111:15550001111",
        "--number=222",
        "--delivered-delay=0.1",
        "--read-delay=0.3",
        "--skip-delivered-share=0.1",
        "--duplicate-share=0.2",
        "--out-of-order-share=0.3",
        "--fail-share=0.05",
        "--fail-codes=131026",
        "--reply-share=0.5",
        "--no-status-webhooks",
        "--rate-limit-share=0.01",
        "--server-error-share=0.02",
        "--latency-ms=5",
        "--enforce-window",
        "--seed=3",
        stdout=io.StringIO(),
    )
    config: EmulatorConfig = captured["config"]
    assert captured["kwargs"]["port"] == 8099 and captured["kwargs"]["host"] == "127.0.0.1"
    assert captured["kwargs"]["access_log"] is None
    assert config.webhook_url == "http://127.0.0.1:8000/webhooks/meta/"
    assert config.app_secret == "s3cret" and config.access_token == "tok"
    assert config.numbers == {"111": "15550001111", "222": ""}
    assert (config.delivered_delay, config.read_delay) == (0.1, 0.3)
    assert (config.skip_delivered_share, config.duplicate_share, config.out_of_order_share) == (0.1, 0.2, 0.3)
    assert (config.fail_share, config.fail_codes, config.reply_share) == (0.05, (131026,), 0.5)
    assert config.status_webhooks is False and config.enforce_window is True
    assert (config.rate_limit_share, config.server_error_share, config.latency_ms) == (0.01, 0.02, 5.0)
    assert config.seed == 3


def test_defaults(captured: dict[str, Any]) -> None:
    call_command("cloudapi_emulator", stdout=io.StringIO())
    config: EmulatorConfig = captured["config"]
    assert captured["kwargs"]["port"] == 8001
    assert config.webhook_url is None and config.access_token is None and config.numbers == {}
    assert config.status_webhooks is True and config.fail_share == 0.0


def test_webhook_url_needs_app_secret(captured: dict[str, Any]) -> None:
    with pytest.raises(CommandError):
        call_command("cloudapi_emulator", "--webhook-url=http://x/", stdout=io.StringIO())


def test_bad_share_is_rejected(captured: dict[str, Any]) -> None:
    with pytest.raises(CommandError):
        call_command("cloudapi_emulator", "--fail-share=2", stdout=io.StringIO())
