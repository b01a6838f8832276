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
from gateways.simulators.routing import Request, Response, Router
from gateways.simulators.store import RequestRecord, Store
from gateways.simulators.stripe import StripeSimulator

logger = logging.getLogger("gateways.simulators")


class Action(enum.Enum):
    RESPOND = "respond"
    RESET = "reset"  # TCP reset, no answer: how "down" looks on a shared port
    DROP = "drop"  # close without an answer (after a timeout fault's hang)


@dataclass(frozen=True)
class Outcome:
    action: Action
    response: Response | None = None
    hang_s: float = 0.0  # held this long before the action (a timeout fault)


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
        self.context = SimContext(config=self.config, store=self.store, callbacks=self.callbacks)
        self.stripe = StripeSimulator(self.context)
        self.mercadopago = MercadoPagoSimulator(self.context)
        self.gerencianet = GerencianetSimulator(self.context)
        self.gateways: dict[str, GatewaySimulator] = {
            simulator.name: simulator
            for simulator in (self.stripe, self.mercadopago, self.gerencianet)
        }
        self.control = ControlApi(
            store=self.store,
            faults=self.faults,
            callbacks=self.callbacks,
            stripe=self.stripe,
            mercadopago=self.mercadopago,
            gerencianet=self.gerencianet,
        )
        self.router = Router(self.control.routes())
        for simulator in self.gateways.values():
            self.router.add(simulator.routes())

    @property
    def stopping(self) -> threading.Event:
        return self.context.stopping

    def handle(self, request: Request) -> Outcome:
        gateway = request.gateway
        if gateway is None:
            return Outcome(Action.RESPOND, self._run(request, None))
        decision = self.faults.decide(gateway)
        outcome = self._handle_gateway(request, self.gateways[gateway], decision)
        self.store.log_request(
            RequestRecord(
                gateway=gateway,
                method=request.method,
                path=request.path,
                verdict=decision.verdict.value,
                status=outcome.response.status if outcome.response is not None else None,
            )
        )
        if outcome.hang_s:
            logger.info(
                "%s %s: handled, now hanging %.1fs", request.method, request.path, outcome.hang_s
            )
            self.stopping.wait(outcome.hang_s)
        return outcome

    def _handle_gateway(
        self, request: Request, simulator: GatewaySimulator, decision: Decision
    ) -> Outcome:
        if decision.verdict is Verdict.DOWN:
            logger.info("%s %s: down (%s)", request.method, request.path, decision.down_mode)
            if decision.down_mode is DownMode.RESET:
                return Outcome(Action.RESET)
            return Outcome(
                Action.RESPOND, simulator.error_response(503, "Service unavailable (simulated)")
            )
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
        return Outcome(Action.RESPOND, response)

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
