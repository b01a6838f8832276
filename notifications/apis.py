"""The webhook endpoints HTTP API (API.md): validate, call a service or selector, answer."""

from uuid import UUID

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
)
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from paywave.api.auth import client_id_of
from paywave.api.idempotency import (
    REPLAY_HEADER,
    StoredResponse,
    idempotent_call,
    request_fingerprint,
    validate_idempotency_key,
)
from paywave.api.openapi import (
    AUTHENTICATED_ERRORS,
    BODY_ERRORS,
    IDEMPOTENCY_KEY_HEADER,
    error_responses,
)
from paywave.api.pagination import NewestFirstCursorPagination, PageQuerySerializer

from . import selectors, services
from .sending import event_payload
from .serializers import (
    EventListFilterSerializer,
    EventPageOutputSerializer,
    WebhookEndpointCreatedOutputSerializer,
    WebhookEndpointCreateInputSerializer,
    WebhookEndpointOutputSerializer,
    WebhookEndpointPageOutputSerializer,
    webhook_endpoint_document,
)

TAG = ["webhook-endpoints"]


class WebhookEndpointCollectionApi(APIView):
    @extend_schema(
        tags=TAG,
        operation_id="webhook_endpoints_list",
        parameters=[PageQuerySerializer],
        responses={
            200: WebhookEndpointPageOutputSerializer,
            **error_responses(400, *AUTHENTICATED_ERRORS),
        },
    )
    def get(self, request: Request) -> Response:
        PageQuerySerializer(data=request.query_params).is_valid(raise_exception=True)
        endpoints = selectors.webhook_endpoint_list(client_id=client_id_of(request))
        paginator = NewestFirstCursorPagination()
        page = paginator.paginate_queryset(endpoints, request, view=self)
        return paginator.get_paginated_response([webhook_endpoint_document(e) for e in page])

    @extend_schema(
        tags=TAG,
        operation_id="webhook_endpoints_create",
        summary="Register a URL for signed event deliveries; the answer shows its secret once.",
        parameters=[
            IDEMPOTENCY_KEY_HEADER,
            OpenApiParameter(
                "Location",
                OpenApiTypes.STR,
                OpenApiParameter.HEADER,
                response=[201],
                required=True,
                description="The endpoint's URL.",
            ),
        ],
        request=WebhookEndpointCreateInputSerializer,
        examples=[
            OpenApiExample(
                "Payments",
                request_only=True,
                value={
                    "url": "https://wallet.example.com/paywave/webhooks",
                    "events": ["payment.succeeded", "payment.failed"],
                },
            )
        ],
        responses={
            201: WebhookEndpointCreatedOutputSerializer,
            **error_responses(*BODY_ERRORS, *AUTHENTICATED_ERRORS, 409, 422),
        },
    )
    def post(self, request: Request) -> Response:
        key = validate_idempotency_key(request.headers.get("Idempotency-Key"))
        payload = WebhookEndpointCreateInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        client_id = client_id_of(request)
        data = payload.validated_data

        def create() -> StoredResponse:
            endpoint = services.webhook_endpoint_create(
                client_id=client_id, url=data["url"], events=data["events"]
            )
            return StoredResponse(
                status=status.HTTP_201_CREATED,
                body=webhook_endpoint_document(endpoint),  # without the secret: see below
                headers={"Location": f"/api/v1/webhook-endpoints/{endpoint.id}"},
            )

        stored = idempotent_call(
            client_id=client_id,
            key=key,
            fingerprint=request_fingerprint(method="POST", path=request.path, data=request.data),
            operation=create,
        )
        # The stored answer (kept 24 h for replays) has no secret, so the secret exists only
        # encrypted at rest; the answer, a replay included, reads it from the endpoint.
        body = {
            **stored.body,
            "secret": selectors.webhook_endpoint_secret(
                client_id=client_id, endpoint_id=stored.body["id"]
            ),
        }
        response = Response(body, status=stored.status, headers=stored.headers)
        if stored.replayed:
            response[REPLAY_HEADER] = "true"
        return response


class WebhookEndpointDetailApi(APIView):
    @extend_schema(
        tags=TAG,
        operation_id="webhook_endpoints_retrieve",
        responses={
            200: WebhookEndpointOutputSerializer,
            **error_responses(404, *AUTHENTICATED_ERRORS),
        },
    )
    def get(self, request: Request, endpoint_id: UUID) -> Response:
        endpoint = selectors.webhook_endpoint_get(
            client_id=client_id_of(request), endpoint_id=endpoint_id
        )
        return Response(webhook_endpoint_document(endpoint))

    @extend_schema(
        tags=TAG,
        operation_id="webhook_endpoints_destroy",
        summary="Delete the endpoint: nothing more is sent to it.",
        responses={
            204: OpenApiResponse(description="Deleted."),
            **error_responses(404, *AUTHENTICATED_ERRORS),
        },
    )
    def delete(self, request: Request, endpoint_id: UUID) -> Response:
        services.webhook_endpoint_delete(client_id=client_id_of(request), endpoint_id=endpoint_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


class EventCollectionApi(APIView):
    @extend_schema(
        tags=["events"],
        operation_id="events_list",
        summary="The wallet app's events of the last 30 days, newest first: catch up on "
        "deliveries that were missed.",
        parameters=[EventListFilterSerializer],
        responses={
            200: EventPageOutputSerializer,
            **error_responses(400, *AUTHENTICATED_ERRORS),
        },
    )
    def get(self, request: Request) -> Response:
        filters = EventListFilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        events = selectors.event_list(client_id=client_id_of(request), **filters.filters)
        paginator = NewestFirstCursorPagination()
        page = paginator.paginate_queryset(events, request, view=self)
        return paginator.get_paginated_response([event_payload(event) for event in page])
