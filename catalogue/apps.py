from __future__ import annotations

from typing import TYPE_CHECKING

from django.apps import AppConfig

if TYPE_CHECKING:
    from orchestrator.models import Deployment


class CatalogueConfig(AppConfig):
    name = "catalogue"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Monitoring cannot import the catalogue; it asks the functions registered here whom to alert.
        from catalogue.services import subscription_follow_rollback
        from monitoring.alerts import register_recipients
        from orchestrator.signals import deployment_rolled_back

        register_recipients(organization_recipients)
        # The orchestrator cannot import the catalogue either; it signals a rollback the subscription follows.
        deployment_rolled_back.connect(subscription_follow_rollback, dispatch_uid="subscription_follow_rollback")


def organization_recipients(deployment: Deployment) -> list[str]:
    """The e-mail address of the organization that owns the deployment (Deployment.owner is its slug)."""
    from catalogue.models import Organization

    if not deployment.owner:
        return []
    email = Organization.objects.filter(slug=deployment.owner).values_list("email", flat=True).first()
    return [email] if email else []
