"""Inbound gateway callbacks: POST /webhooks/<gateway code>.

Plain Django views: the raw body and headers are what signatures cover, and
gateways authenticate by signature, not by our JWT.
"""

import math

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from paywave.api.errors import ErrorType, error_body
from paywave.api.throttling import CallbackRateThrottle, client_address

from .base import InvalidCallback
from .callbacks import callback_receive
from .models import Gateway


@csrf_exempt
def gateway_callback(request: HttpRequest, code: str) -> JsonResponse:
    if request.method != "POST":
        response = JsonResponse(
            error_body(
                error_type=ErrorType.INVALID_REQUEST,
                code="method_not_allowed",
                message="Gateways POST their callbacks here.",
            ),
            status=405,
        )
        response["Allow"] = "POST"
        return response
    throttle = CallbackRateThrottle()
    if not throttle.allow_request(request, None):
        return _throttled(throttle.wait())
    gateway = Gateway.objects.filter(code=code).first()
    if gateway is None:
        return JsonResponse(
            error_body(
                error_type=ErrorType.NOT_FOUND,
                code="gateway_not_found",
                message=f"No gateway {code!r}.",
            ),
            status=404,
        )
    try:
        received = callback_receive(
            gateway=gateway,
            headers=request.headers,  # case-insensitive, as HTTP header names are
            query=request.GET.dict(),
            body=request.body,
            source=client_address(request),
        )
    except InvalidCallback as exc:
        return JsonResponse(
            error_body(
                error_type=ErrorType.INVALID_REQUEST,
                code="invalid_callback",
                message=f"Callback refused: {exc}",
            ),
            status=400,
        )
    return JsonResponse({"received": True, "duplicate": received.duplicate})


def _throttled(wait: float | None) -> JsonResponse:
    response = JsonResponse(
        error_body(
            error_type=ErrorType.RATE_LIMIT,
            code="rate_limited",
            message="Too many callbacks from this address; send it again later.",
        ),
        status=429,
    )
    if wait is not None:
        response["Retry-After"] = str(math.ceil(wait))
    return response
