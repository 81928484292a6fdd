from csp.decorators import csp_exempt
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from monitoring.prometheus import metrics_view

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", include("catalogue.api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # Swagger UI is drf-spectacular's page with its own inline script: outside the portal's policy.
    path("api/docs/", csp_exempt()(SpectacularSwaggerView.as_view(url_name="schema")), name="api-docs"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    path("metrics", metrics_view, name="metrics"),
    path("", include("portal.urls", namespace="portal")),
]
