from django.core.management.base import BaseCommand

from apps.tenants.demo import DEMO_EMAIL, DEMO_PASSWORD, seed_demo
from apps.tenants.models import Tenant


class Command(BaseCommand):
    help = "Create (or complete) the demo workspace 'demo' with a number on the Cloud API emulator."

    def add_arguments(self, parser):
        parser.add_argument("--if-empty", action="store_true",
                            help="Only seed when the database has no tenant yet (what `make run` does).")

    def handle(self, *args, **opts):
        if opts["if_empty"] and Tenant.objects.exists():
            self.stdout.write("Database already has workspaces; not seeding the demo.")
            return
        tenant = seed_demo()
        self.stdout.write(f"Demo workspace {tenant.slug!r} ready. Log in as {DEMO_EMAIL} / {DEMO_PASSWORD}")
