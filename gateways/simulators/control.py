"""The control API under /_sim, shared by tests, `make run` users and the chaos harness.

Faults never apply here. Errors are `{"error": "<why>"}` with a 4xx status.
"""

import html
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

from gateways.simulators.callbacks import CallbackSender, CallbackTarget, Delivery, with_query
from gateways.simulators.context import GatewaySimulator, SimulationError
from gateways.simulators.faults import FaultBook, FaultError
from gateways.simulators.gerencianet import GerencianetSimulator
from gateways.simulators.mercadopago import MercadoPagoSimulator
from gateways.simulators.paypal import PayPalSimulator
from gateways.simulators.routing import GATEWAYS, Request, Response, Route, route
from gateways.simulators.store import Store
from gateways.simulators.stripe import StripeSimulator


def _error(status: int, message: str) -> Response:
    return Response.json(status, {"error": message})


class ControlApi:
    def __init__(
        self,
        *,
        store: Store,
        faults: FaultBook,
        callbacks: CallbackSender,
        stripe: StripeSimulator,
        mercadopago: MercadoPagoSimulator,
        gerencianet: GerencianetSimulator,
        paypal: PayPalSimulator,
        ports: Callable[[], dict[str, int]],
    ) -> None:
        self.store = store
        self.faults = faults
        self.callbacks = callbacks
        self.stripe = stripe
        self.mercadopago = mercadopago
        self.gerencianet = gerencianet
        self.paypal = paypal
        self.ports = ports

    def routes(self) -> list[Route]:
        return [
            route("GET", "/_sim/health", lambda request: Response.json(200, {"ok": True})),
            route("GET", "/_sim/ports", lambda request: Response.json(200, self.ports())),
            route("POST", "/_sim/reset", self._reset),
            route("GET", "/_sim/faults", self._get_faults),
            route("DELETE", "/_sim/faults", self._delete_faults),
            route("GET", "/_sim/faults/{gateway}", self._gateway(self._get_gateway_faults)),
            route("PUT", "/_sim/faults/{gateway}", self._gateway(self._put_faults)),
            route("DELETE", "/_sim/faults/{gateway}", self._gateway(self._delete_gateway_faults)),
            route("GET", "/_sim/charges", self._charges),
            route("GET", "/_sim/refunds", self._refunds),
            route("GET", "/_sim/requests", self._requests),
            route("GET", "/_sim/callbacks", self._get_callbacks),
            route("PUT", "/_sim/callbacks/{gateway}", self._gateway(self._put_callback)),
            route("GET", "/_sim/callbacks/deliveries", self._deliveries),
            route("POST", "/_sim/callbacks/deliveries/{id}/redeliver", self._redeliver),
            route("GET", "/_sim/pix/{txid}", self._pix_charge),
            route("POST", "/_sim/pix/{txid}/pay", self._pay),
            route("GET", "/_sim/card/{id}/authenticate", self._authentication_page),
            route("POST", "/_sim/card/{id}/authenticate", self._authenticate),
            route("POST", "/_sim/disputes", self._open_dispute),
            route("POST", "/_sim/disputes/{id}/close", self._close_dispute),
            route("GET", "/_sim/paypal/approve/{id}", self._paypal_page),
            route("POST", "/_sim/paypal/approve/{id}", self._paypal_approve),
        ]

    @staticmethod
    def _gateway(handler: Callable[[Request, str], Response]) -> Callable[[Request], Response]:
        def checked(request: Request) -> Response:
            gateway = request.params["gateway"]
            if gateway not in GATEWAYS:
                return _error(404, f"unknown gateway {gateway!r}; one of {', '.join(GATEWAYS)}")
            return handler(request, gateway)

        return checked

    # State and faults.

    def _reset(self, request: Request) -> Response:
        """Forget every charge, refund, token and delivery; clear faults and callback changes."""
        self.store.reset()
        self.faults.reset()
        self.callbacks.reset()
        return Response.json(200, {"reset": True})

    def _get_faults(self, request: Request) -> Response:
        return Response.json(200, self.faults.to_json())

    def _delete_faults(self, request: Request) -> Response:
        self.faults.reset()
        return Response.json(200, self.faults.to_json())

    def _get_gateway_faults(self, request: Request, gateway: str) -> Response:
        return Response.json(200, self.faults.to_json()[gateway])

    def _put_faults(self, request: Request, gateway: str) -> Response:
        try:
            settings = self.faults.parse(request.json())
        except ValueError as exc:  # FaultError or a body that is not JSON
            return _error(400, str(exc) if isinstance(exc, FaultError) else "body is not JSON")
        self.faults.set(gateway, settings)
        return Response.json(200, self.faults.to_json()[gateway])

    def _delete_gateway_faults(self, request: Request, gateway: str) -> Response:
        self.faults.reset(gateway)
        return Response.json(200, self.faults.to_json()[gateway])

    # Records.

    def _charges(self, request: Request) -> Response:
        records = self.store.charges(
            gateway=request.query_value("gateway"),
            reference=request.query_value("reference"),
            idempotency_key=request.query_value("idempotency_key"),
        )
        ordered = sorted(records, key=lambda record: record.created_at)
        return Response.json(200, [record.to_json() for record in ordered])

    def _refunds(self, request: Request) -> Response:
        records = self.store.refunds(
            gateway=request.query_value("gateway"), charge_id=request.query_value("charge_id")
        )
        ordered = sorted(records, key=lambda record: record.created_at)
        return Response.json(200, [record.to_json() for record in ordered])

    def _requests(self, request: Request) -> Response:
        """Gateway requests as they arrived (newest 10,000), e.g. to count OAuth token calls."""
        records = self.store.requests(
            gateway=request.query_value("gateway"), path=request.query_value("path")
        )
        return Response.json(200, [record.to_json() for record in records])

    # Callbacks.

    def _get_callbacks(self, request: Request) -> Response:
        return Response.json(200, self.callbacks.targets_json())

    def _put_callback(self, request: Request, gateway: str) -> Response:
        try:
            body = request.json()
        except ValueError:
            return _error(400, "body is not JSON")
        if not isinstance(body, dict) or not isinstance(body.get("url", ""), str):
            return _error(400, 'expected {"url": "...", "secret": "..."}')
        current = self.callbacks.target(gateway)
        target = CallbackTarget(
            url=body.get("url", current.url), secret=str(body.get("secret", current.secret))
        )
        self.callbacks.set_target(gateway, target)
        return Response.json(200, {gateway: target.to_json()})

    def _deliveries(self, request: Request) -> Response:
        found = self.callbacks.deliveries(request.query_value("gateway"))
        return Response.json(200, [delivery.to_json() for delivery in found])

    def _redeliver(self, request: Request) -> Response:
        if not request.params["id"].isdigit():
            return _error(404, "no such delivery")
        delivery = self.callbacks.redeliver(int(request.params["id"]))
        if delivery is None:
            return _error(404, "no such delivery")
        return Response.json(200, delivery.to_json())

    # The payer's side: PIX payment, 3-D Secure, PayPal approval.

    def _pix_owner(self, request: Request, txid: str) -> str | None:
        wanted = request.query_value("gateway")
        if wanted in ("", "gerencianet") and self.gerencianet.has_cob(txid):
            return "gerencianet"
        if wanted in ("", "mercadopago") and self.mercadopago.has_payment(txid):
            return "mercadopago"
        return None

    def _pix_charge(self, request: Request) -> Response:
        owner = self._pix_owner(request, request.params["txid"])
        record = self.store.charge(owner, request.params["txid"]) if owner else None
        if record is None:
            return _error(404, f"no PIX charge {request.params['txid']}")
        return Response.json(200, record.to_json())

    def _pay(self, request: Request) -> Response:
        txid = request.params["txid"]
        owner = self._pix_owner(request, txid)
        if owner is None:
            return _error(404, f"no PIX charge with txid or payment id {txid}")
        simulator = self.gerencianet if owner == "gerencianet" else self.mercadopago
        try:
            charge, delivery = simulator.pay(txid)
        except SimulationError as exc:
            return _error(exc.status, exc.message)
        return Response.json(200, _action_result(owner, charge, delivery))

    # Disputes: a payer contests a paid charge, at whichever gateway holds it.

    def _simulators(self) -> list[GatewaySimulator]:
        return [self.stripe, self.mercadopago, self.gerencianet, self.paypal]

    def _open_dispute(self, request: Request) -> Response:
        """Body {"reference": "<PayWave payment id>", "amount": 5000, "reason": "fraudulent",
        "gateway": "<optional>", "kind": "<optional: chargeback | mediation | pix_med>"}."""
        try:
            body = request.json()
        except ValueError:
            return _error(400, "body is not JSON")
        if not isinstance(body, dict) or not isinstance(body.get("reference"), str):
            return _error(
                400, 'expected {"reference": "<payment id>", "amount": ..., "reason": ...}'
            )
        amount = body.get("amount")
        if amount is not None and (
            isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0
        ):
            return _error(400, "amount must be a positive integer (minor units)")
        reason, kind, wanted = (
            body.get("reason", "fraudulent"),
            body.get("kind", ""),
            body.get("gateway", ""),
        )
        if not all(isinstance(value, str) for value in (reason, kind, wanted)):
            return _error(400, "reason, kind and gateway must be strings")
        for simulator in self._simulators():
            if wanted and simulator.name != wanted:
                continue
            charge_id = simulator.disputed_charge(body["reference"])
            if charge_id is None:
                continue
            try:
                dispute, delivery = simulator.open_dispute(
                    charge_id, amount=amount, reason=reason, kind=kind
                )
            except SimulationError as exc:
                return _error(exc.status, exc.message)
            return Response.json(201, _dispute_result(simulator.name, charge_id, dispute, delivery))
        return _error(404, f"no paid charge for payment {body['reference']}")

    def _close_dispute(self, request: Request) -> Response:
        """Body {"outcome": "won" | "lost"}: who the card network, PSP or gateway sided with."""
        outcome = _form_or_json_field(request, "outcome", "")
        if outcome not in ("won", "lost"):
            return _error(400, 'expected {"outcome": "won" | "lost"}')
        dispute_id = request.params["id"]
        for simulator in self._simulators():
            if simulator.has_dispute(dispute_id):
                try:
                    dispute, delivery = simulator.close_dispute(dispute_id, outcome=outcome)
                except SimulationError as exc:
                    return _error(exc.status, exc.message)
                return Response.json(200, _dispute_result(simulator.name, "", dispute, delivery))
        return _error(404, f"no dispute {dispute_id}")

    def _authentication_page(self, request: Request) -> Response:
        intent_id = html.escape(request.params["id"])
        return Response.html(
            200,
            f"""<!doctype html><title>3-D Secure (simulated)</title>
<h1>3-D Secure for {intent_id}</h1>
<form method="post"><button name="result" value="succeed">Complete</button>
<button name="result" value="fail">Fail</button></form>""",
        )

    def _authenticate(self, request: Request) -> Response:
        """Body {"result": "succeed"|"fail"} (JSON or form; default succeed)."""
        result = _form_or_json_field(request, "result", "succeed")
        if result is None:
            return _error(400, 'expected {"result": "succeed" | "fail"}')
        if result not in ("succeed", "fail"):
            return _error(400, 'result must be "succeed" or "fail"')
        intent_id = request.params["id"]
        try:
            intent, delivery = self.stripe.authenticate(intent_id, succeed=result == "succeed")
        except SimulationError as exc:
            return _error(exc.status, exc.message)
        return_url = self.stripe.return_url(intent_id)
        if _from_form(request) and return_url:
            status = "succeeded" if result == "succeed" else "failed"
            back = with_query(return_url, {"payment_intent": intent_id, "redirect_status": status})
            return Response(303, b"", {"Location": back})
        return Response.json(200, _action_result("stripe", intent, delivery))

    def _paypal_page(self, request: Request) -> Response:
        order_id = request.params["id"]
        if not self.paypal.has_order(order_id):
            return _error(404, f"no PayPal order {order_id}")
        with self.store.lock:
            order = self.paypal.render_order(order_id)
        amount = order["purchase_units"][0]["amount"]
        shown = html.escape(f"{amount['value']} {amount['currency_code']}")
        return Response.html(
            200,
            f"""<!doctype html><title>PayPal (simulated)</title>
<h1>Pay {shown} with PayPal</h1>
<p>Order {html.escape(order_id)}: {html.escape(order["status"])}</p>
<form method="post"><button name="action" value="approve">Approve</button>
<button name="action" value="cancel">Cancel</button></form>""",
        )

    def _paypal_approve(self, request: Request) -> Response:
        """Body {"action": "approve"|"cancel"} (JSON or form; default approve). A form (a
        browser) is redirected to the order's return_url or cancel_url, as PayPal does."""
        action = _form_or_json_field(request, "action", "approve")
        if action not in ("approve", "cancel"):
            return _error(400, 'expected {"action": "approve" | "cancel"}')
        order_id = request.params["id"]
        delivery: Delivery | None = None
        try:
            if action == "approve":
                order, delivery, back = self.paypal.approve(order_id)
            else:
                order, back = self.paypal.cancel(order_id)
        except SimulationError as exc:
            return _error(exc.status, exc.message)
        if _from_form(request) and back:
            return Response(303, b"", {"Location": back})
        result = {
            "gateway": "paypal",
            "charge": order,
            "callback": delivery.to_json() if delivery else None,
            "redirect": back,
        }
        return Response.json(200, result)


def _from_form(request: Request) -> bool:
    return request.header("content-type").startswith("application/x-www-form-urlencoded")


def _form_or_json_field(request: Request, name: str, default: str) -> str | None:
    """A field of a form or JSON body (`default` when absent); None when unreadable."""
    try:
        if _from_form(request):
            return parse_qs(request.body.decode()).get(name, [default])[0]
        value = (request.json() or {}).get(name, default)
    except (ValueError, AttributeError, UnicodeDecodeError):
        return None
    return value if isinstance(value, str) else None


def _dispute_result(
    gateway: str, charge_id: str, dispute: dict[str, Any], delivery: Delivery | None
) -> dict[str, Any]:
    result = {"id": dispute_id_of(gateway, dispute), "gateway": gateway, "dispute": dispute,
              "callback": delivery.to_json() if delivery else None}  # fmt: skip
    if charge_id:
        result["charge"] = charge_id
    return result


def dispute_id_of(gateway: str, dispute: dict[str, Any]) -> str:
    """The dispute's id in each gateway's own rendering of it."""
    key = {"gerencianet": "idInfracao", "paypal": "dispute_id"}.get(gateway, "id")
    return str(dispute.get(key, ""))


def _action_result(gateway: str, charge: dict[str, Any], delivery: Delivery) -> dict[str, Any]:
    return {"gateway": gateway, "charge": charge, "callback": delivery.to_json()}
