from django.urls import path
from rest_framework.routers import DefaultRouter

from catalogue.api import monitoring, views

router = DefaultRouter()
router.register("services", views.ServiceViewSet, basename="service")
router.register("versions", views.ServiceVersionViewSet, basename="version")
router.register("organizations", views.OrganizationViewSet, basename="organization")
router.register("memberships", views.MembershipViewSet, basename="membership")
router.register("subscriptions", views.SubscriptionViewSet, basename="subscription")
router.register("audit-events", views.AuditEventViewSet, basename="auditevent")
router.register("deployments", views.DeploymentViewSet, basename="deployment")
router.register("targets", views.TargetViewSet, basename="target")
router.register("alerts", monitoring.AlertViewSet, basename="alert")
router.register("alert-rules", monitoring.AlertRuleViewSet, basename="alertrule")
router.register("target-health", monitoring.TargetHealthViewSet, basename="targethealth")
router.register("logs", monitoring.PlatformLogsView, basename="logs")

urlpatterns = [
    path("validate/", views.ValidateView.as_view(), name="validate"),
    path("me/", views.MeView.as_view(), name="me"),
    path("auth/token/", views.TokenView.as_view(), name="token"),
    *router.urls,
]
