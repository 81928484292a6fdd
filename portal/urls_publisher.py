"""Publisher pages (mounted at /publish/ inside the portal namespace)."""

from django.urls import URLPattern, URLResolver

urlpatterns: list[URLPattern | URLResolver] = []
