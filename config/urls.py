from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from monitoring.prometheus import metrics_view

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", include("catalogue.api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # Swagger UI from the static files; its setup script is this same view's ?script answer, so the page has
    # no inline script and stays under the portal's Content-Security-Policy.
    path(
        "api/docs/",
        SpectacularSwaggerSplitView.as_view(url_name="schema", template_name="api/swagger_ui.html"),
        name="api-docs",
    ),
    path("accounts/", include("django.contrib.auth.urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    path("metrics", metrics_view, name="metrics"),
    path("", include("portal.urls", namespace="portal")),
]

# The API answers JSON even where no route matches (its operations' documented 404).
handler404 = "config.api.not_found"
