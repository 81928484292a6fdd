"""Operator pages (mounted at /operate/ inside the portal namespace)."""

from django.urls import URLPattern, URLResolver, path

from portal.views import operator

urlpatterns: list[URLPattern | URLResolver] = [
    path("", operator.queue, name="operator-queue"),
    path("versions/<int:pk>/", operator.review, name="operator-version"),
    path("versions/<int:pk>/approve/", operator.approve, name="operator-version-approve"),
    path("versions/<int:pk>/reject/", operator.reject, name="operator-version-reject"),
    path("clouds/", operator.targets, name="operator-targets"),
    path("deployments/", operator.deployments, name="operator-deployments"),
    path("audit/", operator.audit, name="operator-audit"),
]
