"""Inbound gateway callbacks: POST /webhooks/<gateway code>.

Plain Django views: the raw body and headers are what signatures cover, and
gateways authenticate by signature, not by our JWT.
"""

import logging
import math

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from paywave.api.errors import ErrorType, error_body
from paywave.api.throttling import CallbackRateThrottle, client_address

from .base import GatewayError, InvalidCallback
from .callbacks import callback_receive
from .models import Gateway

logger = logging.getLogger(__name__)

# When a callback cannot be verified now, the gateway is asked to send it again after this.
UNVERIFIED_RETRY_AFTER_SECONDS = 60


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
    except GatewayError as exc:  # verified by asking the gateway, which cannot answer now
        logger.warning(
            "gateway callback not verified: %s unavailable",
            gateway.code,
            extra={"gateway": gateway.code, "outcome": exc.outcome, "error": exc.message},
        )
        response = JsonResponse(
            error_body(
                error_type=ErrorType.API,
                code="gateway_unavailable",
                message="The callback could not be verified with the gateway now; send it again.",
            ),
            status=503,
        )
        response["Retry-After"] = str(UNVERIFIED_RETRY_AFTER_SECONDS)
        return response
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
