from django.urls import path

from . import apis

urlpatterns = [
    path("events", apis.EventCollectionApi.as_view(), name="event-collection"),
    path(
        "webhook-endpoints",
        apis.WebhookEndpointCollectionApi.as_view(),
        name="webhook-endpoint-collection",
    ),
    path(
        "webhook-endpoints/<uuid:endpoint_id>",
        apis.WebhookEndpointDetailApi.as_view(),
        name="webhook-endpoint-detail",
    ),
]
