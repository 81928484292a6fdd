"""Publisher pages (mounted at /publish/ inside the portal namespace)."""

from django.urls import URLPattern, URLResolver, path

from portal.views import publisher

urlpatterns: list[URLPattern | URLResolver] = [
    path("", publisher.service_list, name="publisher-services"),
    path("services/new/", publisher.service_create, name="publisher-service-create"),
    path("services/<slug:slug>/", publisher.service_detail, name="publisher-service"),
    path("services/<slug:slug>/versions/new/", publisher.version_upload, name="publisher-version-upload"),
    path("versions/<int:pk>/", publisher.version_detail, name="publisher-version"),
    path("versions/<int:pk>/submit/", publisher.version_submit, name="publisher-version-submit"),
    path("versions/<int:pk>/deprecate/", publisher.version_deprecate, name="publisher-version-deprecate"),
    path("versions/<int:pk>/retire/", publisher.version_retire, name="publisher-version-retire"),
]
