"""Local stand-ins for Stripe, Mercado Pago, Gerencianet/Efí and PayPal that the real SDKs
talk to.

Run them with `python -m gateways.simulators` (127.0.0.1:8900 by default), or in a
test with `SimulatorServer(host, port).start()` / as a context manager. Everything is
in memory; a threaded server, one lock around the state.

One port, one path prefix per gateway (point the SDK's base URL at the prefix):

    /stripe       Stripe API      base for stripe.StripeClient(base_addresses={"api": ...})
    /mercadopago  Mercado Pago    base replacing https://api.mercadopago.com
    /gerencianet  Gerencianet/Efí PIX (BCB API Pix v2) base for Constants.APIS["PIX"]["URL"]
    /paypal       PayPal REST     base for a paypalserversdk Configuration.get_base_uri()
    /_sim         control API     faults, recorded charges, "the payer pays", 3-D Secure,
                                  PayPal approval

Optionally a second, HTTPS port serves the same routes and requires a client
certificate from a given CA (mTLS, as Efí's production API does), and each gateway
gets a port of its own (gateway_ports=True, --gateway-ports) that also serves every
route and that a `refuse` fault closes.

Gateway routes (all under their prefix):

    stripe       POST /v1/payment_intents, GET /v1/payment_intents/{id},
                 POST /v1/payment_intents/{id}/confirm, POST /v1/payment_intents/{id}/cancel,
                 GET /v1/payment_intents/search, POST /v1/refunds, GET /v1/refunds/{id},
                 GET /v1/balance
    mercadopago  POST /v1/payments, GET /v1/payments/{id}, PUT /v1/payments/{id} (cancel),
                 GET /v1/payments/search, POST|GET /v1/payments/{id}/refunds,
                 GET /v1/payments/{id}/refunds/{refund_id}, GET /users/me
    gerencianet  POST /oauth/token, PUT|GET|PATCH /v2/cob/{txid}, GET /v2/cob?inicio=&fim=,
                 GET /v2/loc/{id}/qrcode, GET /v2/pix/{e2eId},
                 PUT|GET /v2/pix/{e2eId}/devolucao/{id}, PUT|GET|DELETE /v2/webhook/{chave}
    paypal       POST /v1/oauth2/token, POST /v2/checkout/orders, GET /v2/checkout/orders/{id},
                 POST /v2/checkout/orders/{id}/capture, GET /v2/payments/captures/{id},
                 POST /v2/payments/captures/{id}/refund, GET /v2/payments/refunds/{id},
                 POST /v1/notifications/verify-webhook-signature

Control routes:

    GET  /_sim/health                      {"ok": true}
    GET  /_sim/ports                       {"shared": p, "stripe": p1, ...} (the gateway ports)
    POST /_sim/reset                       forget all state; faults and callbacks to defaults
    GET  /_sim/faults                      every gateway's settings and verdict counts
    PUT  /_sim/faults/{gateway}            {"latency_ms", "error_rate", "error_status",
                                            "timeout_rate", "down", "down_mode", "seed",
                                            "hang_ms", "br_code", "refund_status",
                                            "capture_status"};
                                            down_mode: "refuse", "reset_before_read",
                                            "reset" (default), "reset_after_read", "hang",
                                            "502", "503", "504"; br_code: "valid" (default),
                                            "wrong_amount", "bad_crc"; refund_status:
                                            "succeeded" (default), "pending", "failed";
                                            capture_status (PayPal): "completed" (default),
                                            "declined" (422 INSTRUMENT_DECLINED)
                                           (replaces that gateway's settings; omitted = default)
    GET|DELETE /_sim/faults/{gateway}, DELETE /_sim/faults (all)
    GET  /_sim/charges?gateway=&reference=&idempotency_key=
    GET  /_sim/refunds?gateway=&charge_id=
    GET  /_sim/requests?gateway=&path=     gateway requests as they arrived, verdict, status
    GET  /_sim/callbacks                   where each gateway calls back
    PUT  /_sim/callbacks/{gateway}         {"url": ..., "secret": ...}
    GET  /_sim/callbacks/deliveries?gateway=
    POST /_sim/callbacks/deliveries/{id}/redeliver
    GET  /_sim/pix/{txid}                  the recorded PIX charge (txid, or MP payment id)
    POST /_sim/pix/{txid}/pay[?gateway=]   the payer pays; the gateway's callback is sent
    GET|POST /_sim/card/{id}/authenticate  complete ({"result": "succeed"}) or fail 3-D Secure
    GET|POST /_sim/paypal/approve/{id}     the payer approves ({"action": "approve"}) or
                                           cancels ({"action": "cancel"}) a PayPal order

A refund made while `refund_status` is "pending" answers the gateway's word for it
(Stripe "pending", Mercado Pago "in_process", Efí "EM_PROCESSAMENTO", PayPal "PENDING");
read back later (Stripe GET /v1/refunds/{id}; Mercado Pago the payment or its refunds; Efí
the PIX, the devolução, or a repeated PUT of it; PayPal GET /v2/payments/refunds/{id}) it
ends as `refund_status` then says, unless that is still "pending". "failed" refuses it:
Stripe "failed" with a failure_reason, Mercado Pago "rejected", Efí "NAO_REALIZADO" with a
motivo, PayPal "FAILED"; a refused refund takes none of the amount.

Each recorded charge's `reference` is PayWave's payment id: Stripe's
metadata[payment_id], Mercado Pago's external_reference, and for Gerencianet the
infoAdicionais entry named "payment_id" (else the txid), PayPal's custom_id (else
invoice_id, else reference_id). Its `idempotency_key` is Stripe's Idempotency-Key,
Mercado Pago's X-Idempotency-Key, Gerencianet's txid, PayPal's PayPal-Request-Id.

See README.md in this directory for faults, callbacks, mTLS and the differences from
the real APIs.
"""

from gateways.simulators.callbacks import CallbackTarget
from gateways.simulators.config import SimulatorConfig
from gateways.simulators.faults import FaultSettings
from gateways.simulators.server import MTLSSettings, SimulatorServer

__all__ = ["CallbackTarget", "FaultSettings", "MTLSSettings", "SimulatorConfig", "SimulatorServer"]
