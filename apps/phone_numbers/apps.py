from django.apps import AppConfig


class PhoneNumbersConfig(AppConfig):
    name = "apps.phone_numbers"
    label = "phone_numbers"
