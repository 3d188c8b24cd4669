"""Prints where Parley runs and how to log in. With --wait-for it first waits until the URL
answers 200 (so the banner comes after the servers' start-up noise), then stays idle: honcho
stops every process when one exits."""

from __future__ import annotations

import time
import urllib.error
import urllib.request

from django.core.management.base import BaseCommand, CommandError

from apps.tenants.demo import DEMO_EMAIL, DEMO_PASSWORD, DEMO_SLUG
from apps.tenants.models import Tenant

URL = "http://127.0.0.1:8000"


class Command(BaseCommand):
    help = "Print Parley's URL and the demo login."

    def add_arguments(self, parser):
        parser.add_argument("--wait-for", default="", help="poll this URL until it answers 200 first")
        parser.add_argument("--timeout", type=float, default=120.0)
        parser.add_argument("--banner-only", action="store_true", help="print and exit")

    def handle(self, *args, **opts):
        if opts["wait_for"]:
            self._wait(opts["wait_for"], opts["timeout"])
        self.stdout.write(self._banner(ready=bool(opts["wait_for"])))
        self.stdout.flush()
        if opts["banner_only"]:
            return
        while True:  # keep honcho's process group alive
            time.sleep(3600)

    def _wait(self, url: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last_error = ""
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError) as exc:
                last_error = str(exc)
            time.sleep(0.5)
        raise CommandError(f"{url} did not answer within {timeout:.0f} s ({last_error})")

    def _banner(self, *, ready: bool) -> str:
        demo = Tenant.objects.filter(slug=DEMO_SLUG).exists()
        lines = ["", "=" * 60, f"  Parley is {'up' if ready else 'starting'} at {URL}"]
        if demo:
            lines.append(f"  Log in as {DEMO_EMAIL} / {DEMO_PASSWORD}")
        lines += [f"  Health: {URL}/healthz", "=" * 60, ""]
        return "\n".join(lines)
