import time

from django.core.management.base import BaseCommand

from apps.tenants.demo import (
    DEMO_EMAIL,
    DEMO_PASSWORD,
    LARGE_CONVERSATIONS,
    LARGE_MESSAGES_PER_CONVERSATION,
    LARGE_SLUG,
    seed_demo,
    seed_large,
)
from apps.tenants.models import Tenant


class Command(BaseCommand):
    help = "Create (or complete) the demo workspace 'demo' with a number on the Cloud API emulator."

    def add_arguments(self, parser):
        parser.add_argument("--if-empty", action="store_true",
                            help="Only seed when the database has no tenant yet (what `make run` does).")
        parser.add_argument("--large", action="store_true",
                            help=f"Also create the workspace {LARGE_SLUG!r}: {LARGE_CONVERSATIONS:,} conversations and "
                                 f"{LARGE_CONVERSATIONS * LARGE_MESSAGES_PER_CONVERSATION:,} messages (benchmarks).")
        parser.add_argument("--conversations", type=int, default=LARGE_CONVERSATIONS,
                            help="With --large: how many conversations (10 messages each).")

    def handle(self, *args, **opts):
        if opts["if_empty"] and Tenant.objects.exists():
            self.stdout.write("Database already has workspaces; not seeding the demo.")
            return
        tenant = seed_demo()
        self.stdout.write(f"Demo workspace {tenant.slug!r} ready. Log in as {DEMO_EMAIL} / {DEMO_PASSWORD}")
        if opts["large"]:
            started = time.monotonic()

            def progress(done: int, total: int) -> None:
                if done % 10_000 == 0 or done == total:
                    self.stdout.write(f"  {done:,} / {total:,} conversations ({time.monotonic() - started:.0f} s)")

            large, added = seed_large(conversations=opts["conversations"], progress=progress)
            verb = "created" if added else "already present"
            self.stdout.write(f"Workspace {large.slug!r} {verb} ({opts['conversations']:,} conversations); "
                              f"{DEMO_EMAIL} is an owner there too.")
