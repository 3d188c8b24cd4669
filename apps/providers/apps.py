from django.apps import AppConfig


class ProvidersConfig(AppConfig):
    name = "apps.providers"
    label = "providers"

    def ready(self) -> None:
        from django.db import transaction
        from django.db.models.signals import post_delete, post_save

        from apps.phone_numbers.models import PhoneNumber

        from .services import number_routes_invalidate

        def invalidate(sender, **kwargs) -> None:
            # Now, and again once the change is committed: a process that reloads the number
            # in between still reads the old row.
            number_routes_invalidate()
            transaction.on_commit(number_routes_invalidate, robust=True)

        # Webhook routing caches each number's secret; any change to a number drops it.
        post_save.connect(invalidate, sender=PhoneNumber, weak=False, dispatch_uid="providers-route-cache-save")
        post_delete.connect(invalidate, sender=PhoneNumber, weak=False, dispatch_uid="providers-route-cache-delete")
