from django.core.management.base import BaseCommand, CommandError

from apps.core.exceptions import ApplicationError
from apps.tenants.services import tenant_create


class Command(BaseCommand):
    help = "Create a tenant (workspace) with its owner."

    def add_arguments(self, parser):
        parser.add_argument("slug", help="URL name: /t/<slug>/")
        parser.add_argument("--name", required=True)
        parser.add_argument("--owner-email", required=True)
        parser.add_argument("--owner-password", required=True)
        parser.add_argument("--time-zone", default="UTC")

    def handle(self, *args, **opts):
        try:
            tenant = tenant_create(slug=opts["slug"], name=opts["name"], owner_email=opts["owner_email"],
                                   owner_password=opts["owner_password"], time_zone=opts["time_zone"])
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(f"Created tenant {tenant.slug!r} ({tenant.name}) owned by {opts['owner_email']}")
