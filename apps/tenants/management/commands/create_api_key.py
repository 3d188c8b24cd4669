from django.core.management.base import BaseCommand, CommandError

from apps.core.exceptions import ApplicationError
from apps.tenants.models import Tenant
from apps.tenants.services import api_key_create


class Command(BaseCommand):
    help = "Create an API key for a tenant. The key is printed once, alone, as the last line of stdout."

    def add_arguments(self, parser):
        parser.add_argument("--tenant", required=True, help="tenant slug")
        parser.add_argument("--name", required=True)

    def handle(self, *args, **opts):
        tenant = Tenant.objects.filter(slug=opts["tenant"]).first()
        if tenant is None:
            raise CommandError(f"No tenant with slug {opts['tenant']!r}.")
        try:
            api_key, plaintext = api_key_create(tenant=tenant, name=opts["name"])
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        self.stderr.write(f"API key {api_key.name!r} created for {tenant.slug}; it will not be shown again.")
        self.stdout.write(plaintext)
