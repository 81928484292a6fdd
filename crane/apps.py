from django.apps import AppConfig


class CraneConfig(AppConfig):
    name = "crane"
    default_auto_field = "django.db.models.BigAutoField"
