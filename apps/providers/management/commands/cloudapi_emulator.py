"""Run the Cloud API emulator (see ``apps/providers/emulator``), for example
``python manage.py cloudapi_emulator --port 8001 --webhook-url http://127.0.0.1:8000/webhooks/meta/ --app-secret S``.
"""

from __future__ import annotations

import argparse
import gc
import logging
from typing import Any

from aiohttp import web
from django.core.management.base import BaseCommand, CommandError

from apps.providers.emulator.server import EmulatorConfig, create_app


def _share(value: str) -> float:
    try:
        share = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {value}") from None
    if not 0.0 <= share <= 1.0:
        raise argparse.ArgumentTypeError(f"a share must be between 0 and 1, got {value}")
    return share


def _seconds(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {value}") from None
    if seconds < 0:
        raise argparse.ArgumentTypeError(f"must not be negative, got {value}")
    return seconds


def _codes(value: str) -> tuple[int, ...]:
    try:
        codes = tuple(int(code) for code in value.split(",") if code.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of codes: {value}") from None
    if not codes:
        raise argparse.ArgumentTypeError("at least one code is required")
    return codes


def _numbers(values: list[str]) -> dict[str, str]:
    numbers: dict[str, str] = {}
    for value in values:
        pnid, _, display = value.partition(":")
        if not pnid:
            raise CommandError(f"--number needs PHONE_NUMBER_ID[:DISPLAY_NUMBER], got {value!r}")
        numbers[pnid] = display
    return numbers


class Command(BaseCommand):
    help = "Run the WhatsApp Cloud API emulator (Meta Graph API fake) for the demo, tests and benchmarks."
    requires_system_checks: list[str] = []
    requires_migrations_checks = False

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        defaults = EmulatorConfig()
        parser.add_argument("--host", default=defaults.host)
        parser.add_argument("--port", type=int, default=defaults.port)
        parser.add_argument("--webhook-url", help="where to POST signed webhooks (Parley's /webhooks/meta/)")
        parser.add_argument("--app-secret", default="", help="key of the X-Hub-Signature-256 HMAC")
        parser.add_argument(
            "--access-token", help="require Authorization: Bearer <token> (default: any bearer token)"
        )
        parser.add_argument(
            "--number",
            action="append",
            default=[],
            metavar="PHONE_NUMBER_ID[:DISPLAY_NUMBER]",
            help="a phone number to serve (repeatable; default: accept any phone number id)",
        )
        parser.add_argument("--waba-id", default=defaults.waba_id, help="WABA id in webhook entries")
        parser.add_argument("--verified-name", default=defaults.verified_name)
        parser.add_argument("--sent-delay", type=_seconds, default=defaults.sent_delay)
        parser.add_argument("--delivered-delay", type=_seconds, default=defaults.delivered_delay)
        parser.add_argument("--read-delay", type=_seconds, default=defaults.read_delay)
        parser.add_argument("--reply-delay", type=_seconds, default=defaults.reply_delay)
        parser.add_argument("--jitter", type=_share, default=defaults.jitter, help="+/- share of each delay")
        parser.add_argument("--read-share", type=_share, default=defaults.read_share)
        parser.add_argument("--skip-delivered-share", type=_share, default=0.0)
        parser.add_argument("--duplicate-share", type=_share, default=0.0)
        parser.add_argument("--out-of-order-share", type=_share, default=0.0)
        parser.add_argument("--fail-share", type=_share, default=0.0)
        parser.add_argument(
            "--fail-codes",
            type=_codes,
            default=defaults.fail_codes,
            help="comma-separated codes for failed statuses (default 131026,131049)",
        )
        parser.add_argument("--reply-share", type=_share, default=0.0)
        parser.add_argument(
            "--no-status-webhooks",
            action="store_true",
            help="accept and answer, but post no status webhooks or simulated replies",
        )
        parser.add_argument("--rate-limit-share", type=_share, default=0.0)
        parser.add_argument("--rate-limit-status", type=int, default=defaults.rate_limit_status)
        parser.add_argument("--server-error-share", type=_share, default=0.0)
        parser.add_argument("--latency-ms", type=_seconds, default=0.0)
        parser.add_argument("--enforce-window", action="store_true")
        parser.add_argument("--seed", type=int)
        parser.add_argument("--template-review-delay", type=_seconds, default=defaults.template_review_delay)
        parser.add_argument("--throughput-level", default=defaults.throughput_level)
        parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
        parser.add_argument("--flush-interval", type=_seconds, default=defaults.flush_interval)
        parser.add_argument("--webhook-concurrency", type=int, default=defaults.webhook_concurrency)
        parser.add_argument("--max-stored-messages", type=int, default=defaults.max_stored_messages)

    def handle(self, *args: Any, **options: Any) -> None:
        config = EmulatorConfig(
            host=options["host"],
            port=options["port"],
            webhook_url=options["webhook_url"] or None,
            app_secret=options["app_secret"],
            access_token=options["access_token"] or None,
            numbers=_numbers(options["number"]),
            waba_id=options["waba_id"],
            verified_name=options["verified_name"],
            sent_delay=options["sent_delay"],
            delivered_delay=options["delivered_delay"],
            read_delay=options["read_delay"],
            reply_delay=options["reply_delay"],
            jitter=options["jitter"],
            read_share=options["read_share"],
            skip_delivered_share=options["skip_delivered_share"],
            duplicate_share=options["duplicate_share"],
            out_of_order_share=options["out_of_order_share"],
            fail_share=options["fail_share"],
            fail_codes=options["fail_codes"],
            reply_share=options["reply_share"],
            status_webhooks=not options["no_status_webhooks"],
            rate_limit_share=options["rate_limit_share"],
            rate_limit_status=options["rate_limit_status"],
            server_error_share=options["server_error_share"],
            latency_ms=options["latency_ms"],
            enforce_window=options["enforce_window"],
            seed=options["seed"],
            template_review_delay=options["template_review_delay"],
            throughput_level=options["throughput_level"],
            batch_size=max(1, options["batch_size"]),
            flush_interval=options["flush_interval"],
            webhook_concurrency=max(1, options["webhook_concurrency"]),
            max_stored_messages=max(0, options["max_stored_messages"]),
        )
        if config.webhook_url and not config.app_secret:
            raise CommandError("--app-secret is required with --webhook-url (webhooks are signed)")
        if not config.webhook_url:
            logging.getLogger(__name__).warning(
                "cloudapi_emulator: no --webhook-url, no webhooks will be posted"
            )
        numbers = ", ".join(config.numbers) or "any"
        self.stdout.write(
            f"Cloud API emulator on http://{config.host}:{config.port}/ (numbers: {numbers}; "
            f"webhooks: {config.webhook_url or 'off'}{'' if config.status_webhooks else ', statuses off'})"
        )
        app = create_app(config)
        # Django, aiohttp and the rest of what was imported are tens of thousands of objects that
        # live as long as the process; left to the cyclic collector, each full collection walks
        # them all and stalls the server for tens of milliseconds, and the receive times (which
        # the benchmarks read the provider's pace from) bunch up behind the pause. Frozen, they
        # are never walked again (what gunicorn users do with gc.freeze() for the same reason).
        gc.collect()
        gc.freeze()
        web.run_app(
            app,
            host=config.host,
            port=config.port,
            access_log=None,
            backlog=2048,
            print=None,
        )
