from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "apps.api"
    label = "api"

    def ready(self) -> None:
        from . import keycache, schema  # noqa: F401  (cache invalidation receivers; the OpenAPI auth extension)
