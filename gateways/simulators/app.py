"""The simulator application: routes a request, applies the gateway's faults, runs it.

Transport-free: `Simulator.handle(request)` returns an Outcome that the socket server
(server.py) carries out — an answer, a reset connection, or a connection dropped
unanswered after a hang.
"""

import enum
import logging
import threading
from dataclasses import dataclass
from http import HTTPStatus

from gateways.simulators.callbacks import CallbackSender
from gateways.simulators.config import SimulatorConfig, default_callbacks
from gateways.simulators.context import GatewaySimulator, SimContext
from gateways.simulators.control import ControlApi
from gateways.simulators.faults import Decision, DownMode, FaultBook, Verdict
from gateways.simulators.gerencianet import GerencianetSimulator
from gateways.simulators.mercadopago import MercadoPagoSimulator
from gateways.simulators.paypal import PayPalSimulator
from gateways.simulators.routing import Request, Response, Router
from gateways.simulators.store import RequestRecord, Store
from gateways.simulators.stripe import StripeSimulator

logger = logging.getLogger("gateways.simulators")


class Action(enum.Enum):
    RESPOND = "respond"
    RESET = "reset"  # TCP reset, no answer
    DROP = "drop"  # close without an answer (after a hang)


@dataclass(frozen=True)
class Outcome:
    action: Action
    response: Response | None = None
    hang_s: float = 0.0  # held this long before the action (a timeout fault, a hang)


class Simulator:
    def __init__(self, config: SimulatorConfig | None = None) -> None:
        self.config = config or SimulatorConfig()
        self.store = Store()
        self.faults = FaultBook(default_hang_ms=self.config.hang_ms)
        # Gateways the config leaves out keep the sandbox secrets.
        self.callbacks = CallbackSender(
            {**default_callbacks(), **self.config.callbacks},
            timeout_s=self.config.callback_timeout_s,
        )
        self.context = SimContext(
            config=self.config, store=self.store, callbacks=self.callbacks, faults=self.faults
        )
        # Where the simulators listen ("shared", "mtls", each gateway's own port); the
        # socket server fills it in, GET /_sim/ports shows it.
        self.ports: dict[str, int] = {}
        self.stripe = StripeSimulator(self.context)
        self.mercadopago = MercadoPagoSimulator(self.context)
        self.gerencianet = GerencianetSimulator(self.context)
        self.paypal = PayPalSimulator(self.context)
        self.gateways: dict[str, GatewaySimulator] = {
            simulator.name: simulator
            for simulator in (self.stripe, self.mercadopago, self.gerencianet, self.paypal)
        }
        self.control = ControlApi(
            store=self.store,
            faults=self.faults,
            callbacks=self.callbacks,
            stripe=self.stripe,
            mercadopago=self.mercadopago,
            gerencianet=self.gerencianet,
            paypal=self.paypal,
            ports=lambda: dict(self.ports),
        )
        self.router = Router(self.control.routes())
        for simulator in self.gateways.values():
            self.router.add(simulator.routes())

    @property
    def stopping(self) -> threading.Event:
        return self.context.stopping

    def decide(self, request: Request) -> Decision | None:
        """The fault a request meets, drawn once its head (method, path) has arrived and
        before its body is read; None under /_sim, where faults never apply."""
        gateway = request.gateway
        return None if gateway is None else self.faults.decide(gateway)

    def reset_unread(
        self, gateway: str, decision: Decision, request: Request | None = None
    ) -> Outcome:
        """A connection reset before its request was read: logged, nothing handled.
        `request` is None when not even its head was read (a gateway's own port)."""
        logger.info(
            "%s %s: down (%s), reset unread",
            request.method if request else "-",
            request.path if request else f"<{gateway} port>",
            decision.down_mode,
        )
        self._log(gateway, request, decision, None)
        return Outcome(Action.RESET)

    def handle(self, request: Request, decision: Decision | None = None) -> Outcome:
        """Run a request; `decision` is the fault `decide` drew for it (drawn here if None)."""
        gateway = request.gateway
        if gateway is None:
            return Outcome(Action.RESPOND, self._run(request, None))
        if decision is None:
            decision = self.faults.decide(gateway)
        if decision.resets_unread:  # its body was read, but it is still not handled
            return self.reset_unread(gateway, decision, request)
        outcome = self._handle_gateway(request, self.gateways[gateway], decision)
        self._log(
            gateway,
            request,
            decision,
            outcome.response.status if outcome.response is not None else None,
        )
        if outcome.hang_s:
            logger.info(
                "%s %s: handled, now hanging %.1fs", request.method, request.path, outcome.hang_s
            )
            self.stopping.wait(outcome.hang_s)
        return outcome

    def _log(
        self, gateway: str, request: Request | None, decision: Decision, status: int | None
    ) -> None:
        self.store.log_request(
            RequestRecord(
                gateway=gateway,
                method=request.method if request else None,
                path=request.path if request else None,
                verdict=decision.label,
                status=status,
            )
        )

    def _handle_gateway(
        self, request: Request, simulator: GatewaySimulator, decision: Decision
    ) -> Outcome:
        mode = decision.down_mode
        if decision.verdict is Verdict.DOWN and not mode.handles_request:
            logger.info("%s %s: down (%s)", request.method, request.path, mode)
            if mode is DownMode.UNAVAILABLE:
                message = "Service unavailable (simulated)"
                return Outcome(Action.RESPOND, simulator.error_response(503, message))
            return Outcome(Action.RESET)
        if decision.latency_s:
            self.stopping.wait(decision.latency_s)
        if decision.verdict is Verdict.ERROR:
            status = decision.error_status
            logger.info("%s %s: simulated HTTP %s", request.method, request.path, status)
            message = f"{_phrase(status)} (simulated fault)"
            return Outcome(Action.RESPOND, simulator.error_response(status, message))
        response = self._run(request, simulator)
        if decision.verdict is Verdict.TIMEOUT:
            return Outcome(Action.DROP, hang_s=decision.hang_s)
        if decision.verdict is Verdict.DOWN:
            return self._lose_answer(request, simulator, decision, response)
        return Outcome(Action.RESPOND, response)

    @staticmethod
    def _lose_answer(
        request: Request, simulator: GatewaySimulator, decision: Decision, handled: Response
    ) -> Outcome:
        """A handled request whose answer never reaches the client (down, handling mode)."""
        mode = decision.down_mode
        logger.info(
            "%s %s: handled (%s), then down (%s)",
            request.method,
            request.path,
            handled.status,
            mode,
        )
        if mode is DownMode.RESET_AFTER_READ:
            return Outcome(Action.RESET)
        if mode is DownMode.HANG:
            return Outcome(Action.DROP, hang_s=decision.hang_s)
        status = int(mode.value)  # 502 or 504
        message = f"{_phrase(status)} (simulated: the answer was lost on the way back)"
        return Outcome(Action.RESPOND, simulator.error_response(status, message))

    def _run(self, request: Request, simulator: GatewaySimulator | None) -> Response:
        handler, params, path_exists = self.router.match(request.method, request.path)
        if handler is None:
            if simulator is None:
                status = 405 if path_exists else 404
                return Response.json(status, {"error": f"no route {request.method} {request.path}"})
            if path_exists:
                return simulator.error_response(405, f"{request.method} not allowed here")
            return simulator.not_found(request)
        request.params = params
        try:
            response = handler(request)
        except Exception:
            logger.exception("simulator failure on %s %s", request.method, request.path)
            if simulator is None:
                return Response.json(500, {"error": "simulator failure (see its log)"})
            return simulator.error_response(500, "simulator failure (see its log)")
        logger.info("%s %s -> %s", request.method, request.path, response.status)
        return response


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"
