"""The portal's pages. The catalogue is the home page; publisher and operator pages live in their own modules."""

from django.urls import include, path

from portal.views import account, catalogue, subscriber

app_name = "portal"

urlpatterns = [
    path("", catalogue.catalogue_index, name="catalogue"),
    path("services/<slug:slug>/", catalogue.service_detail, name="service"),
    path("services/<slug:slug>/subscribe/", subscriber.subscribe, name="subscribe"),
    path("services/<slug:slug>/subscribe/plan/", subscriber.subscribe_plan, name="subscribe-plan"),
    path("organization/", account.organization_switch, name="organization-switch"),
    path("subscriptions/", subscriber.subscription_list, name="subscriptions"),
    path("subscriptions/<int:pk>/", subscriber.subscription_detail, name="subscription"),
    path("subscriptions/<int:pk>/upgrade/", subscriber.subscription_upgrade, name="subscription-upgrade"),
    path("subscriptions/<int:pk>/unsubscribe/", subscriber.subscription_unsubscribe, name="subscription-unsubscribe"),
    path("deployments/<str:pk>/", subscriber.deployment_detail, name="deployment"),
    path("deployments/<str:pk>/retry/", subscriber.deployment_retry, name="deployment-retry"),
    path("deployments/<str:pk>/cancel/", subscriber.deployment_cancel, name="deployment-cancel"),
    path("publish/", include("portal.urls_publisher")),
    path("operate/", include("portal.urls_operator")),
]
