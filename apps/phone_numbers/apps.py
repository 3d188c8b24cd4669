from django.apps import AppConfig


class PhoneNumbersConfig(AppConfig):
    name = "apps.phone_numbers"
    label = "phone_numbers"

    def ready(self) -> None:
        from . import numbercache  # noqa: F401  (connects the cache's invalidation to saves and deletes)
