from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from gateways.apis import GatewayListApi
from gateways.views import gateway_callback
from payments.returns import paypal_cancel, paypal_return
from paywave.api.token_apis import TokenObtainApi, TokenRefreshApi
from paywave.observability.health import healthz, readyz
from paywave.observability.metrics import metrics_view

api_v1 = [
    path("auth/token", TokenObtainApi.as_view(), name="auth-token"),
    path("auth/token/refresh", TokenRefreshApi.as_view(), name="auth-token-refresh"),
    path("gateways", GatewayListApi.as_view(), name="gateways"),
    path("", include("payments.urls")),
    path("", include("notifications.urls")),
    path("", include("wallets.urls")),
]

urlpatterns = [
    path("api/v1/", include(api_v1)),
    path("webhooks/<slug:code>", gateway_callback, name="gateway-callback"),
    path("paypal/return/<uuid:payment_id>", paypal_return, name="paypal-return"),
    path("paypal/cancel/<uuid:payment_id>", paypal_cancel, name="paypal-cancel"),
    path("pay/", include("payments.hosted_urls")),
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
    path("metrics", metrics_view, name="metrics"),
    path(settings.PAYWAVE_ADMIN_URL, admin.site.urls),
]

if settings.PAYWAVE_API_DOCS != "off":  # who may read them: paywave.api.auth.ApiDocsAccess
    urlpatterns += [
        path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
        path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    ]

if settings.PAYWAVE_BENCH_BASELINES:  # the bare stack the bench compares with (bench/README.md)
    urlpatterns.append(path("bench/", include("bench.baselines.urls")))

handler400 = "paywave.api.error_views.bad_request"
handler403 = "paywave.api.error_views.permission_denied"
handler404 = "paywave.api.error_views.not_found"
handler500 = "paywave.api.error_views.server_error"
