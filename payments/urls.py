from django.urls import path

from . import apis, dispute_apis, refund_apis

urlpatterns = [
    path("payments", apis.PaymentCollectionApi.as_view(), name="payment-collection"),
    path("payments/<uuid:payment_id>", apis.PaymentDetailApi.as_view(), name="payment-detail"),
    path(
        "payments/<uuid:payment_id>/cancel",
        apis.PaymentCancelApi.as_view(),
        name="payment-cancel",
    ),
    path(
        "payments/<uuid:payment_id>/refunds",
        refund_apis.PaymentRefundsApi.as_view(),
        name="payment-refunds",
    ),
    path(
        "payments/<uuid:payment_id>/disputes",
        dispute_apis.PaymentDisputesApi.as_view(),
        name="payment-disputes",
    ),
    path(
        "payments/<uuid:payment_id>/qrcode.png",
        apis.PaymentQrCodeApi.as_view(),
        name="payment-qrcode",
    ),
]
