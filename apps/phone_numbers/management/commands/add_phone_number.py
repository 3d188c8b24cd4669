from django.core.management.base import BaseCommand, CommandError

from apps.core.exceptions import ApplicationError
from apps.phone_numbers.models import PhoneNumber
from apps.phone_numbers.services import phone_number_create
from apps.tenants.models import Tenant


class Command(BaseCommand):
    help = ("Connect a WhatsApp number. meta_cloud: --phone-number-id --waba-id --access-token --app-secret "
            "[--verify-token] [--graph-url]; gupshup: --app-name --api-key --source; gupshup_partner: --app-id --app-token.")

    def add_arguments(self, parser):
        parser.add_argument("--tenant", required=True, help="tenant slug")
        parser.add_argument("--provider", required=True, choices=PhoneNumber.Provider.values)
        parser.add_argument("--display-number", help="E.164, e.g. 15550001111 (gupshup: defaults to --source)")
        parser.add_argument("--display-name", default="")
        parser.add_argument("--phone-number-id", default="")
        parser.add_argument("--waba-id", default="")
        parser.add_argument("--access-token", default="")
        parser.add_argument("--app-secret", default="")
        parser.add_argument("--verify-token", default="")
        parser.add_argument("--graph-url", default="", help="Graph API base URL for this number (e.g. the emulator)")
        parser.add_argument("--app-name", default="", help="gupshup: the app name (src.name)")
        parser.add_argument("--api-key", default="", help="gupshup: the app's API key")
        parser.add_argument("--source", default="", help="gupshup: the source (business) number")
        parser.add_argument("--app-id", default="", help="gupshup_partner: the partner app id")
        parser.add_argument("--app-token", default="", help="gupshup_partner: the partner app token")
        parser.add_argument("--mps", type=int, default=80, help="messages-per-second budget (1-1000)")

    def handle(self, *args, **opts):
        tenant = Tenant.objects.filter(slug=opts["tenant"]).first()
        if tenant is None:
            raise CommandError(f"No tenant with slug {opts['tenant']!r}.")
        display = opts["display_number"] or opts["source"]
        if not display:
            raise CommandError("--display-number is required (or --source for gupshup).")
        try:
            number = phone_number_create(
                tenant=tenant, provider=opts["provider"], display_number=display, display_name=opts["display_name"],
                phone_number_id=opts["phone_number_id"], waba_id=opts["waba_id"], app_name=opts["app_name"],
                app_id=opts["app_id"], access_token=opts["access_token"], app_secret=opts["app_secret"],
                api_key=opts["api_key"], app_token=opts["app_token"], verify_token=opts["verify_token"],
                graph_api_url=opts["graph_url"], messages_per_second=opts["mps"],
            )
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(f"Connected {number} to {tenant.slug} (id {number.pk}).")
        if number.provider == PhoneNumber.Provider.META_CLOUD:
            self.stdout.write(f"Webhook URL: <your host>/webhooks/meta/   verify token: {number.verify_token}")
        elif number.provider == PhoneNumber.Provider.GUPSHUP:
            self.stdout.write(f"Callback URL: <your host>/webhooks/gupshup/{number.webhook_token}/")
        else:
            self.stdout.write(f"Callback URL: <your host>/webhooks/gupshup-partner/{number.webhook_token}/")
