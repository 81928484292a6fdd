"""Operator pages (mounted at /operate/ inside the portal namespace)."""

from django.urls import URLPattern, URLResolver

urlpatterns: list[URLPattern | URLResolver] = []
