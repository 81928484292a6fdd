"""The portal's pages. The catalogue is the home page; publisher and operator pages live in their own modules."""

from django.urls import include, path

from portal.views import account, catalogue, subscriber

app_name = "portal"

urlpatterns = [
    path("", catalogue.catalogue_index, name="catalogue"),
    path("organization/", account.organization_switch, name="organization-switch"),
    path("subscriptions/", subscriber.subscription_list, name="subscriptions"),
    path("publish/", include("portal.urls_publisher")),
    path("operate/", include("portal.urls_operator")),
]
