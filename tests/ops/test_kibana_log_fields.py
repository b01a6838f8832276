"""Kibana's saved objects use only log fields, and event and alert values, PayWave writes.

tests/ops/test_observability_config.py checks that each field Kibana uses is mapped in
the index template; this checks that PayWave emits it. A renamed log field or `event`
value would otherwise blank a panel without any error.

The collector reads every field a saved object names (aggregation fields, saved search
columns and sort, the fields and values of its KQL query and filters, the data view's
time field, field formats and runtime fields' scripts); the drive makes PayWave write
its lines through the configured JSON formatter and filters (the `json_lines` fixture
of tests/paywave/observability): payments taken by the API (the real middleware, the
request lines) and charged by their jobs, each run in this thread from the broker
message the API or the previous job published (its task id and propagated request id
and client, as a worker's), against the gateway simulators through the real SDKs.
Mercado Pago fails three times (failed attempts, its circuit opens: an operator alert),
the health probe half-opens it, a trial fails (reopened), then one succeeds (closed);
the last PIX is paid with its callback lost, and reconciliation's look finds it paid (a
PIX check); a PayPal payment is approved by its payer, whose return captures it (an
approval).
"""

import copy
import fnmatch
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from django.test import Client
from django.utils import timezone
from kombu import Exchange, Queue

from config.celery_app import app as celery_app
from gateways.tasks import probe_health
from payments.models import AttemptOutcome, Payment
from payments.models import PaymentStatus as S
from payments.reconciliation import payments_reconcile
from paywave.observability.celery_signals import HEADER_PREFIX
from tests.helpers import paypal_body, pix_body, post_payment
from tests.paywave.observability import conftest as observability
from tests.processes import wait_for

REPO_ROOT = Path(__file__).resolve().parents[2]
SAVED_OBJECTS = REPO_ROOT / "config/kibana/paywave.ndjson"

# The configured console handler's formatter and filters on the root logger, captured
# (shared with tests/paywave/observability); and a queue of this test's own for the jobs.
json_lines = observability.json_lines
private_queue = observability.private_queue

# The fields whose values a query compares with must be values PayWave writes.
VALUE_FIELDS = ("event", "alert", "outcome")
# Values PayWave writes that the drive does not produce: a gateway attempt's outcome is an
# AttemptOutcome (`pending` needs a gateway that takes a charge without an outcome yet).
WRITTEN_BUT_NOT_DRIVEN: dict[str, frozenset[str]] = {
    "outcome": frozenset(AttemptOutcome.values),
}
# Keys whose string value names a field: aggregations (`field`, top hits' `sortField`),
# Lens (`sourceField`), TSVB (`time_field`, `terms_field`), the data view's time field.
FIELD_KEYS = frozenset(
    {"field", "sortField", "sourceField", "timeField", "timeFieldName", "time_field", "terms_field"}
)
# Elasticsearch's own fields (not in a log line), and Lens's count of records.
NOT_LOG_FIELDS = frozenset({"_source", "_id", "_index", "_score", "_type", "___records___"})
# The data view's keys read for what they are (not walked for `field` keys).
DATA_VIEW_KEYS = frozenset({"fieldFormatMap", "fieldAttrs", "runtimeFieldMap", "fields"})
_SCRIPT_FIELD = re.compile(
    r"""doc\[\s*['"]([^'"]+)['"]\s*\]|_source\[\s*['"]([^'"]+)['"]\s*\]|_source\.([\w@]+)"""
)


# --- Queries: KQL (and simple Lucene) ----------------------------------------------------


@dataclass(frozen=True)
class Term:
    """`field:value`; a free-text term has no field. `*` matches any value unless quoted."""

    field: str | None
    value: str
    quoted: bool = False

    @property
    def wildcard(self) -> bool:
        return not self.quoted and "*" in self.value


@dataclass(frozen=True)
class Range:
    field: str
    op: str
    value: str


@dataclass(frozen=True)
class Not:
    node: "Node"


@dataclass(frozen=True)
class AllOf:
    nodes: tuple["Node", ...]


@dataclass(frozen=True)
class AnyOf:
    nodes: tuple["Node", ...]


Node = Term | Range | Not | AllOf | AnyOf
MATCH_ALL: Node = AllOf(())

_TOKEN = re.compile(
    r"""\s*(?:(?P<paren>[()])|(?P<op><=|>=|<|>|:)|"(?P<quoted>(?:[^"\\]|\\.)*)"|"""
    r"""(?P<word>(?:[^\s():<>"\\]|\\.)+))"""
)
_KEYWORDS = ("and", "or", "not")


class QuerySyntaxError(ValueError):
    pass


def _tokens(text: str) -> list[tuple[str, str]]:
    tokens, position = [], 0
    while text[position:].strip():
        match = _TOKEN.match(text, position)
        if not match:
            raise QuerySyntaxError(f"cannot read {text!r} at {position}")
        kind = match.lastgroup or ""
        value = match.group(kind)
        if kind in ("quoted", "word"):
            value = re.sub(r"\\(.)", r"\1", value)
        if kind == "word" and value.lower() in _KEYWORDS:
            kind, value = "keyword", value.lower()
        tokens.append((kind, value))
        position = match.end()
    return tokens


class _Parser:
    """KQL: `a:b and not (c:d or e:(f or g))`, `a:*`, `a >= 3`, `"free text"`."""

    def __init__(self, text: str, implicit_or: bool = False) -> None:
        self.text = text
        self.tokens = _tokens(text)
        self.position = 0
        self.implicit_or = implicit_or  # Lucene's default operator between terms

    def parse(self) -> Node:
        if not self.tokens:
            return MATCH_ALL
        node = self._or(None)
        if self.position != len(self.tokens):
            raise QuerySyntaxError(f"cannot read {self.text!r}: {self.tokens[self.position :]}")
        return node

    def _peek(self) -> tuple[str, str]:
        return self.tokens[self.position] if self.position < len(self.tokens) else ("end", "")

    def _take(self, kind: str, value: str | None = None) -> str:
        found = self._peek()
        if found[0] != kind or (value is not None and found[1] != value):
            raise QuerySyntaxError(f"cannot read {self.text!r}: {kind} expected, not {found}")
        self.position += 1
        return found[1]

    def _or(self, field_name: str | None) -> Node:
        nodes = [self._and(field_name)]
        while self._peek() == ("keyword", "or") or (
            self.implicit_or and self._peek()[0] in ("word", "quoted", "paren")
            and self._peek() != ("paren", ")")
        ):  # fmt: skip
            if self._peek()[0] == "keyword":
                self.position += 1
            nodes.append(self._and(field_name))
        return nodes[0] if len(nodes) == 1 else AnyOf(tuple(nodes))

    def _and(self, field_name: str | None) -> Node:
        nodes = [self._not(field_name)]
        while self._peek() == ("keyword", "and"):
            self.position += 1
            nodes.append(self._not(field_name))
        return nodes[0] if len(nodes) == 1 else AllOf(tuple(nodes))

    def _not(self, field_name: str | None) -> Node:
        if self._peek() == ("keyword", "not"):
            self.position += 1
            return Not(self._not(field_name))
        return self._primary(field_name)

    def _primary(self, field_name: str | None) -> Node:
        kind, value = self._peek()
        if (kind, value) == ("paren", "("):
            self.position += 1
            node = self._or(field_name)
            self._take("paren", ")")
            return node
        if kind not in ("word", "quoted"):
            raise QuerySyntaxError(f"cannot read {self.text!r}: a term expected, not {value!r}")
        self.position += 1
        if field_name is not None:  # a value inside `field:( ... )`
            return Term(field_name, value, quoted=kind == "quoted")
        if self._peek() == ("op", ":"):
            self.position += 1
            if self._peek() == ("paren", "("):
                self.position += 1
                node = self._or(value)
                self._take("paren", ")")
                return node
            next_kind, next_value = self._peek()
            if next_kind not in ("word", "quoted"):
                raise QuerySyntaxError(f"cannot read {self.text!r}: no value for {value}")
            self.position += 1
            return Term(value, next_value, quoted=next_kind == "quoted")
        if self._peek()[0] == "op":
            op = self._take("op")
            return Range(value, op, self._take("word"))
        return Term(None, value, quoted=kind == "quoted")


def _lucene_as_kql(text: str) -> str:
    if re.search(r"[\[{]\s*\S+\s+TO\s+", text):
        raise QuerySyntaxError(f"Lucene ranges are not read yet: {text!r}")
    text = re.sub(r"_exists_:([@\w.]+)", r"\1:*", text)
    text = re.sub(r"(^|[\s(])-(?=[@\w(\"])", r"\1NOT ", text)
    text = re.sub(r"(^|[\s(])\+(?=[@\w(\"])", r"\1", text)
    return text


def query_parse(text: str, language: str = "kuery") -> Node:
    if language == "lucene":
        return _Parser(_lucene_as_kql(text), implicit_or=True).parse()
    if language != "kuery":
        raise QuerySyntaxError(f"query language {language!r} is not read")
    return _Parser(text).parse()


def leaves(node: Node) -> Iterator[Term | Range]:
    if isinstance(node, Term | Range):
        yield node
    elif isinstance(node, Not):
        yield from leaves(node.node)
    else:
        for child in node.nodes:
            yield from leaves(child)


def _text(value: Any) -> str:
    return json.dumps(value) if isinstance(value, bool) else str(value)


def _term_matches(term: Term, line: dict[str, Any]) -> bool:
    if term.field is None:
        return any(term.value.lower() in _text(v).lower() for v in line.values())
    if line.get(term.field) is None:
        return False
    values = line[term.field] if isinstance(line[term.field], list) else [line[term.field]]
    if term.wildcard:
        return any(fnmatch.fnmatchcase(_text(v), term.value) for v in values)
    return any(_text(v) == term.value or _same_number(v, term.value) for v in values)


def _same_number(value: Any, text: str) -> bool:
    try:
        return not isinstance(value, bool) and float(value) == float(text)
    except (TypeError, ValueError):
        return False


def _range_matches(node: Range, line: dict[str, Any]) -> bool:
    try:
        value, bound = float(line[node.field]), float(node.value)
    except (KeyError, TypeError, ValueError):
        return False
    return {"<": value < bound, "<=": value <= bound, ">": value > bound, ">=": value >= bound}[
        node.op
    ]


def matches(node: Node, line: dict[str, Any]) -> bool:
    """Does the query select this (flattened) log line?"""
    if isinstance(node, Term):
        return _term_matches(node, line)
    if isinstance(node, Range):
        return _range_matches(node, line)
    if isinstance(node, Not):
        return not matches(node.node, line)
    if isinstance(node, AllOf):
        return all(matches(child, line) for child in node.nodes)
    return any(matches(child, line) for child in node.nodes)


# --- What the saved objects use ----------------------------------------------------------


@dataclass(frozen=True)
class Use:
    """A field a saved object names, where; and the value it compares it with, if any."""

    field: str
    where: str
    value: str | None = None
    pattern: bool = False  # the value has wildcards


@dataclass
class Usage:
    object_id: str
    uses: list[Use] = field(default_factory=list)
    selects: Node = MATCH_ALL  # the lines it shows: its query and filters (and its search's)
    query: str = ""  # for messages
    provides: set[str] = field(default_factory=set)  # runtime/scripted fields Kibana computes


def saved_objects(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _decoded(value: Any) -> Any:
    """Kibana stores visState, searchSourceJSON, panelsJSON, ... as JSON in strings."""
    if isinstance(value, str) and value.lstrip()[:1] in ("{", "["):
        try:
            return _decoded(json.loads(value))
        except ValueError:
            return value
    if isinstance(value, dict):
        return {key: _decoded(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_decoded(item) for item in value]
    return value


def _name(field_name: str) -> str:
    return field_name.removesuffix(".keyword")  # a text field's keyword sub-field


def _sort_fields(sort: list[Any]) -> list[str]:
    pair = len(sort) == 2 and all(isinstance(item, str) for item in sort)
    if pair and sort[1].lower() in ("asc", "desc"):  # the older single [field, direction]
        return [sort[0]]
    names: list[str] = []
    for item in sort:
        if isinstance(item, list | tuple) and item and isinstance(item[0], str):
            names.append(item[0])
        elif isinstance(item, dict):
            names.extend(item)
        elif isinstance(item, str):
            names.append(item)
    return names


def _filter_node(meta: dict[str, Any]) -> Node | None:
    """The lines a filter pill keeps (None: all, as far as this test can tell)."""
    if meta.get("disabled"):
        return None
    key, kind, params = meta["key"], meta.get("type"), meta.get("params")
    node: Node | None = None
    if kind == "phrase" and isinstance(params, dict):
        node = Term(key, _text(params.get("query")), quoted=True)
    elif kind == "phrases" and isinstance(params, list):
        node = AnyOf(tuple(Term(key, _text(value), quoted=True) for value in params))
    elif kind == "exists":
        node = Term(key, "*")
    if node is not None and meta.get("negate"):
        node = Not(node)
    return node


def _filter_values(meta: dict[str, Any]) -> list[str]:
    params = meta.get("params")
    if meta.get("type") == "phrase" and isinstance(params, dict) and "query" in params:
        return [_text(params["query"])]
    if meta.get("type") == "phrases" and isinstance(params, list):
        return [_text(value) for value in params]
    return []


class _Collector:
    def __init__(self, usage: Usage) -> None:
        self.usage = usage

    def use(
        self, field_name: Any, where: str, value: str | None = None, pattern: bool = False
    ) -> None:
        if isinstance(field_name, str) and _name(field_name) not in NOT_LOG_FIELDS:
            self.usage.uses.append(Use(_name(field_name), where, value, pattern))

    def query(self, query: dict[str, Any], where: str) -> Node:
        text = query.get("query", "")
        if not isinstance(text, str):
            raise QuerySyntaxError(f"{self.usage.object_id}: a query DSL object at {where}")
        node = query_parse(text, query.get("language", "kuery"))
        for leaf in leaves(node):
            if isinstance(leaf, Range):
                self.use(leaf.field, where)
            elif leaf.field is not None:
                exists = leaf.wildcard and leaf.value.strip("*") == ""  # `field:*`
                self.use(leaf.field, where, None if exists else leaf.value, leaf.wildcard)
        return node

    def filter(self, meta: dict[str, Any], where: str) -> Node | None:
        if meta.get("type") == "custom":  # its key is "query": the fields are in its DSL
            raise QuerySyntaxError(f"{self.usage.object_id}: a custom DSL filter at {where}")
        self.use(meta["key"], f"{where}.meta.key")
        for value in _filter_values(meta):
            self.use(meta["key"], f"{where}.meta.params", value)
        return _filter_node(meta)

    def script(self, source: Any, where: str) -> None:
        for groups in _SCRIPT_FIELD.findall(source if isinstance(source, str) else ""):
            self.use(next(name for name in groups if name), where)

    def walk(self, value: Any, where: str) -> None:
        if isinstance(value, list):
            for index, item in enumerate(value):
                self.walk(item, f"{where}[{index}]")
            return
        if not isinstance(value, dict):
            return
        if isinstance(value.get("query"), str | dict) and "language" in value:
            self.query(value, where)
            return
        if isinstance(value.get("meta"), dict) and "key" in value["meta"]:
            self.filter(value["meta"], where)
            return
        for key, item in value.items():
            at = f"{where}.{key}" if where else key
            if key in FIELD_KEYS and isinstance(item, str):
                self.use(item, at)
            elif key == "columns" and isinstance(item, list) and all(
                isinstance(name, str) for name in item
            ):  # fmt: skip
                for index, name in enumerate(item):
                    self.use(name, f"{at}[{index}]")
            elif key == "sort" and isinstance(item, list):
                for name in _sort_fields(item):
                    self.use(name, at)
            else:
                self.walk(item, at)

    def data_view(self, attributes: dict[str, Any]) -> None:
        for name in attributes.get("fieldFormatMap") or {}:
            self.use(name, "fieldFormatMap")
        for name in attributes.get("fieldAttrs") or {}:
            self.use(name, "fieldAttrs")
        for name, spec in (attributes.get("runtimeFieldMap") or {}).items():
            self.usage.provides.add(name)
            self.script((spec.get("script") or {}).get("source"), f"runtimeFieldMap.{name}")
        for spec in attributes.get("fields") or []:
            if isinstance(spec, dict) and spec.get("scripted"):
                self.usage.provides.add(spec["name"])
                self.script(spec.get("script"), f"fields.{spec['name']}.script")


def kibana_usage(objects: list[dict[str, Any]]) -> list[Usage]:
    """Each saved object: the fields (and compared values) it uses, the lines it selects."""
    usages: dict[str, Usage] = {}
    searches: dict[str, Node] = {}
    for obj in objects:
        usage = Usage(obj["id"])
        collector = _Collector(usage)
        attributes = _decoded(obj["attributes"])
        if obj["type"] == "index-pattern":
            collector.data_view(attributes)
            attributes = {k: v for k, v in attributes.items() if k not in DATA_VIEW_KEYS}
        source = (attributes.pop("kibanaSavedObjectMeta", None) or {}).get("searchSourceJSON")
        collector.walk(attributes, "")
        if isinstance(source, dict):
            where = "searchSourceJSON"
            narrowing: list[Node] = []
            if isinstance(source.get("query"), dict):
                narrowing.append(collector.query(source["query"], f"{where}.query"))
                usage.query = source["query"].get("query", "")
            for index, pill in enumerate(source.get("filter") or []):
                node = collector.filter(pill["meta"], f"{where}.filter[{index}]")
                if node is not None:
                    narrowing.append(node)
            rest = {k: v for k, v in source.items() if k not in ("query", "filter")}
            collector.walk(rest, where)
            usage.selects = AllOf(tuple(narrowing)) if narrowing else MATCH_ALL
        if obj["type"] == "search":
            searches[obj["id"]] = usage.selects
        usages[obj["id"]] = usage
    for obj in objects:  # a visualization built on a saved search shows what it selects
        name = obj["attributes"].get("savedSearchRefName")
        for reference in obj.get("references", []):
            if name and reference["name"] == name and reference["id"] in searches:
                usage = usages[obj["id"]]
                usage.selects = AllOf((usage.selects, searches[reference["id"]]))
    return list(usages.values())


# --- Compared with the lines ---------------------------------------------------------------


def _flat(line: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in line.items():
        if isinstance(value, dict):
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


@dataclass(frozen=True, order=True)
class Problem:
    object_id: str
    field: str
    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.object_id}: {self.field} ({self.where}): {self.message}"


def problems(usages: list[Usage], lines: list[dict[str, Any]]) -> set[Problem]:
    """What the saved objects use that the lines do not have."""
    flat = [_flat(line) for line in lines]
    written: dict[str, set[str]] = {}
    for line in flat:
        for name in VALUE_FIELDS:
            if line.get(name) is not None:
                written.setdefault(name, set()).add(_text(line[name]))
    provided = {name for usage in usages for name in usage.provides}
    found: set[Problem] = set()
    for usage in usages:
        selected = [line for line in flat if matches(usage.selects, line)]
        if not selected:
            found.add(Problem(usage.object_id, "-", "its query and filters",
                              f"select no line ({usage.query!r})"))  # fmt: skip
        for use in usage.uses:
            if use.field in provided:
                continue
            if not any(use.field in line for line in selected):
                anywhere = any(use.field in line for line in flat)
                message = (
                    f"only in lines its query and filters do not select ({usage.query!r})"
                    if anywhere
                    else "in no line PayWave wrote"
                )
                found.add(Problem(usage.object_id, use.field, use.where, message))
            if use.value is not None and use.field in VALUE_FIELDS:
                known = written.get(use.field, set()) | WRITTEN_BUT_NOT_DRIVEN.get(use.field, set())
                if not any(
                    fnmatch.fnmatchcase(value, use.value) if use.pattern else value == use.value
                    for value in known
                ):
                    found.add(Problem(
                        usage.object_id, use.field, use.where,
                        f"value {use.value!r} never written (written: {sorted(known)})",
                    ))  # fmt: skip
    return found


# --- Driving PayWave -------------------------------------------------------------------


def run_jobs(queue: str, until: Callable[[], bool], limit: int = 12) -> None:
    """A worker for `queue` in this thread: each job published there (by the API, or by
    the previous job: a retry) runs with its message's task id and headers, ETAs not
    waited for, until `until()`."""
    with celery_app.connection_for_read() as conn:
        bound = Queue(queue, Exchange(queue, type="direct"), routing_key=queue)(
            conn.default_channel
        )
        for _ in range(limit):
            if until():
                return
            message = wait_for(lambda: bound.get(no_ack=True), 10, f"a job on {queue}")
            args, kwargs, _embed = message.decode()
            headers = message.headers
            propagated = {k: v for k, v in headers.items() if k.startswith(HEADER_PREFIX)}
            celery_app.tasks[headers["task"]].apply(
                args=args, kwargs=kwargs, task_id=headers["id"], headers=propagated
            )
    assert until(), f"still not there after {limit} jobs"


def status_is(payment_id: str, status: str) -> Callable[[], bool]:
    return lambda: Payment.objects.get(pk=payment_id).status == status


@pytest.fixture
def emitted(
    api: Any, gateways: Any, sim: Any, settings: Any, private_queue: str, json_lines: Any
) -> list[dict[str, Any]]:
    """The JSON lines PayWave wrote taking and charging payments (the module's docstring)."""
    settings.PAYWAVE_CIRCUIT_THRESHOLD = 3
    settings.PAYWAVE_CIRCUIT_COOLDOWN_SECONDS = 600  # only the probe half-opens it

    def pix_charged(key: str) -> str:
        response = post_payment(api, pix_body(), key=key, HTTP_X_REQUEST_ID=f"kibana-{key}")
        assert response.status_code == 202, response.content
        payment_id = response.json()["id"]
        run_jobs(private_queue, status_is(payment_id, S.AWAITING_PAYMENT))
        return str(payment_id)

    sim.faults("mercadopago", down=True, down_mode="503")
    pix_charged("pix-1")  # three failed attempts open the circuit; Efí issues the charge
    sim.reset_faults()
    probe_health.apply()  # Mercado Pago answers: half-open
    sim.faults("mercadopago", down=True, down_mode="503")
    pix_charged("pix-2")  # the trial fails: reopened
    sim.reset_faults()
    probe_health.apply()
    paid = Payment.objects.get(pk=pix_charged("pix-3"))  # the trial succeeds: closed
    # Its payer pays; the callback is lost; reconciliation's look finds it paid (a PIX check).
    sim.http.post(f"/pix/{paid.gateway_reference}/pay", params={"gateway": paid.gateway})
    Payment.objects.filter(pk=paid.pk).update(next_attempt_at=timezone.now())
    assert payments_reconcile() == {"succeeded": 1}

    response = post_payment(api, paypal_body(), key="paypal-1")
    assert response.status_code == 202, response.content
    paypal_id = response.json()["id"]
    run_jobs(private_queue, status_is(paypal_id, S.REQUIRES_ACTION))
    order = Payment.objects.get(pk=paypal_id).gateway_reference
    approved = sim.http.post(f"/paypal/approve/{order}")
    assert approved.status_code == 200, approved.text
    back = urlsplit(approved.json()["redirect"])  # the payer's browser, back from PayPal
    assert Client().get(back.path, parse_qs(back.query)).status_code == 303
    run_jobs(private_queue, status_is(paypal_id, S.SUCCEEDED))
    return json_lines.records()


@pytest.mark.services
@pytest.mark.django_db(transaction=True)  # lines written after a commit: real commits
def test_kibana_uses_only_fields_and_values_paywave_writes(
    emitted: list[dict[str, Any]],
) -> None:
    usages = kibana_usage(saved_objects(SAVED_OBJECTS.read_text()))
    used = {use.field for usage in usages for use in usage.uses}
    assert {"@timestamp", "event", "payment_id"} <= used  # the collector found them

    found = problems(usages, emitted)

    assert not found, "Kibana uses what PayWave's log lines lack:\n" + "\n".join(
        map(str, sorted(found))
    )


# --- The collector and the comparison, on their own -------------------------------------

# What PayWave writes, in miniature: enough lines for the saved objects as they are.
LINES: list[dict[str, Any]] = [
    {"@timestamp": "2025-01-01T00:00:00.000Z", "level": "INFO", "logger_name": "paywave.events",
     "message": "payment new -> pending", "host": "h", "event": "payment_transition",
     "to_status": "pending", "method": "pix", "payment_id": "p1", "request_id": "r1",
     "client": "c1"},
    {"@timestamp": "2025-01-01T00:00:01.000Z", "level": "INFO", "logger_name": "paywave.events",
     "message": "gateway attempt at mercadopago: retryable", "host": "h",
     "event": "gateway_attempt", "gateway": "mercadopago", "outcome": "retryable",
     "latency_ms": 12.5, "error_class": "GatewayUnavailable", "payment_id": "p1", "attempt": 1,
     "task_id": "t1", "request_id": "r1", "client": "c1"},
    {"@timestamp": "2025-01-01T00:00:02.000Z", "level": "INFO", "logger_name": "paywave.events",
     "message": "gateway attempt at gerencianet: succeeded", "host": "h",
     "event": "gateway_attempt", "gateway": "gerencianet", "outcome": "succeeded",
     "latency_ms": 8.0, "payment_id": "p1", "attempt": 1},
    {"@timestamp": "2025-01-01T00:00:03.000Z", "level": "ERROR", "logger_name": "paywave.alerts",
     "message": "circuit opened", "host": "h", "alert": "circuit_opened",
     "event": "circuit_opened", "gateway": "mercadopago", "payment_id": "p1"},
    *[
        {"@timestamp": "2025-01-01T00:00:04.000Z", "level": "INFO",
         "logger_name": "gateways.circuit", "message": "circuit", "host": "h",
         "event": f"circuit_{change}", "gateway": "mercadopago"}
        for change in ("half_open", "reopened", "closed")
    ],
    {"@timestamp": "2025-01-01T00:00:05.000Z", "level": "INFO", "logger_name": "paywave.events",
     "message": "approval", "host": "h", "event": "approval", "gateway": "paypal",
     "signal": "payer-return", "outcome": "succeeded", "payment_id": "p2"},
    {"@timestamp": "2025-01-01T00:00:06.000Z", "level": "INFO", "logger_name": "paywave.events",
     "message": "waiting PIX looked up at mercadopago: succeeded", "host": "h",
     "event": "pix_check", "gateway": "mercadopago", "outcome": "succeeded", "payment_id": "p3"},
]  # fmt: skip


def objects_with(change: Callable[[dict[str, Any]], None], object_id: str) -> list[dict[str, Any]]:
    objects = copy.deepcopy(saved_objects(SAVED_OBJECTS.read_text()))
    (obj,) = [obj for obj in objects if obj["id"] == object_id]
    change(obj)
    return objects


def renamed(old: str, new: str) -> Callable[[dict[str, Any]], None]:
    """`old` renamed `new` wherever the object names it (its JSON strings included)."""

    def change(obj: dict[str, Any]) -> None:
        text = re.sub(rf"(?<![\w@]){re.escape(old)}(?!\w)", new, json.dumps(obj["attributes"]))
        obj["attributes"] = json.loads(text)

    return change


def source_edited(edit: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
    def change(obj: dict[str, Any]) -> None:
        meta = obj["attributes"]["kibanaSavedObjectMeta"]
        source = json.loads(meta["searchSourceJSON"])
        edit(source)
        meta["searchSourceJSON"] = json.dumps(source)

    return change


def phrase_filter(key: str, value: str) -> Callable[[dict[str, Any]], None]:
    def edit(source: dict[str, Any]) -> None:
        pill = {"meta": {"key": key, "type": "phrase", "params": {"query": value}},
                "query": {"match_phrase": {key: value}}}  # fmt: skip
        source["filter"] = [*source.get("filter", []), pill]

    return source_edited(edit)


def data_view_set(name: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(obj: dict[str, Any]) -> None:
        obj["attributes"][name] = json.dumps(value)

    return change


def problems_added(objects: list[dict[str, Any]]) -> set[str]:
    """The problems the change made (what the saved objects had before excepted)."""
    before = problems(kibana_usage(saved_objects(SAVED_OBJECTS.read_text())), LINES)
    return {str(problem) for problem in problems(kibana_usage(objects), LINES) - before}


def test_the_saved_objects_as_they_are_fit_the_miniature() -> None:
    assert problems(kibana_usage(saved_objects(SAVED_OBJECTS.read_text())), LINES) == set()


Change = Callable[[dict[str, Any]], None]
SLOW = {"slow": {"type": "boolean", "script": {"source": "emit(doc['latency_millis'].value > 1)"}}}
# (test id, the saved object, what is done to it, the start of what must be reported)
CHANGES: list[tuple[str, str, Change, str]] = [
    ("agg-field", "paywave-failures-by-gateway", renamed("error_class", "error_kind"),
     "paywave-failures-by-gateway: error_kind (visState.aggs[2].params.field): in no line"),
    ("negated-query-field", "paywave-failures-by-gateway", renamed("outcome", "result"),
     "paywave-failures-by-gateway: result (searchSourceJSON.query): in no line"),
    ("percentiles-field", "paywave-attempt-latency", renamed("latency_ms", "duration"),
     "paywave-attempt-latency: duration (visState.aggs[0].params.field): in no line"),
    ("split-field", "paywave-approvals", renamed("signal", "approval_signal"),
     "paywave-approvals: approval_signal (visState.aggs[3].params.field): in no line"),
    ("terms-field", "paywave-payments-by-status", renamed("to_status", "status"),
     "paywave-payments-by-status: status (visState.aggs[2].params.field): in no line"),
    ("column", "paywave-payment-story", renamed("task_id", "task"),
     "paywave-payment-story: task (columns[8]): in no line"),
    ("sort", "paywave-payment-story", renamed("@timestamp", "timestamp"),
     "paywave-payment-story: timestamp (sort): in no line"),
    ("alert-log-column", "paywave-alert-log", renamed("host", "hostname"),
     "paywave-alert-log: hostname (columns[4]): in no line"),
    ("event-value", "paywave-payments-by-status",
     renamed("payment_transition", "payment_transitioned"),
     "paywave-payments-by-status: event (searchSourceJSON.query): value 'payment_transitioned' "
     "never written"),
    ("alert-value", "paywave-circuit-events", renamed("circuit_opened", "circuit_open"),
     "paywave-circuit-events: alert (searchSourceJSON.query): value 'circuit_open' never"),
    ("or-ed-event-value", "paywave-circuit-events", renamed("circuit_reopened", "circuit_reopen"),
     "paywave-circuit-events: event (searchSourceJSON.query): value 'circuit_reopen' never"),
    ("outcome-value", "paywave-failures-by-gateway", renamed("pending", "waiting"),
     "paywave-failures-by-gateway: outcome (searchSourceJSON.query): value 'waiting' never"),
    ("wildcard-value", "paywave-circuit-events", renamed("event:circuit_closed", "event:circ_*"),
     "paywave-circuit-events: event (searchSourceJSON.query): value 'circ_*' never"),
    ("query-selects-nothing", "paywave-alerts", renamed("alert", "alert_kind"),
     "paywave-alerts: - (its query and filters): select no line ('alert_kind:*')"),
    ("filter-key", "paywave-payment-story", phrase_filter("kind", "payment"),
     "paywave-payment-story: kind (searchSourceJSON.filter[0].meta.key): in no line"),
    ("filter-value", "paywave-approvals", phrase_filter("event", "approvals"),
     "paywave-approvals: event (searchSourceJSON.filter[0].meta.params): value 'approvals'"),
    ("filter-key-elsewhere", "paywave-approvals", phrase_filter("to_status", "pending"),
     "paywave-approvals: to_status (searchSourceJSON.filter[0].meta.key): only in lines"),
    ("field-format", "paywave-logs", data_view_set("fieldFormatMap", {"latency": {"id": "number"}}),
     "paywave-logs: latency (fieldFormatMap): in no line"),
    ("runtime-field-script", "paywave-logs", data_view_set("runtimeFieldMap", SLOW),
     "paywave-logs: latency_millis (runtimeFieldMap.slow): in no line"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("object_id", "change", "reported"), [pytest.param(*rest, id=name) for name, *rest in CHANGES]
)
def test_a_change_to_a_saved_object_is_reported(
    object_id: str, change: Change, reported: str
) -> None:
    added = problems_added(objects_with(change, object_id))

    assert any(problem.startswith(reported) for problem in added), added


def test_a_runtime_field_of_the_data_view_is_not_asked_of_the_log_lines() -> None:
    runtime = {
        "slow": {"type": "boolean", "script": {"source": "emit(doc['latency_ms'].value > 1)"}}
    }
    objects = objects_with(data_view_set("runtimeFieldMap", runtime), "paywave-logs")
    (story,) = [obj for obj in objects if obj["id"] == "paywave-payment-story"]
    story["attributes"]["columns"].append("slow")

    assert problems(kibana_usage(objects), LINES) == set()


@pytest.mark.parametrize(
    ("query", "language", "terms"),
    [
        ("event:gateway_attempt and not outcome:(succeeded or pending)", "kuery",
         [("event", "gateway_attempt"), ("outcome", "succeeded"), ("outcome", "pending")]),
        ('alert:* or event:"circuit_closed"', "kuery",
         [("alert", "*"), ("event", "circuit_closed")]),
        ("latency_ms >= 100 AND NOT gateway:stripe", "kuery",
         [("latency_ms", ">=100"), ("gateway", "stripe")]),
        ("_exists_:alert AND -event:approval", "lucene", [("alert", "*"), ("event", "approval")]),
        ("", "kuery", []),
    ],
)  # fmt: skip
def test_queries_are_read_for_their_fields_and_values(
    query: str, language: str, terms: list[tuple[str, str]]
) -> None:
    read = [
        (leaf.field, leaf.value if isinstance(leaf, Term) else leaf.op + leaf.value)
        for leaf in leaves(query_parse(query, language))
    ]
    assert read == terms


def test_a_query_selects_the_lines_kibana_would() -> None:
    failures = query_parse("event:gateway_attempt and not outcome:(succeeded or pending)")
    circuits = query_parse("alert:circuit_opened or event:circuit_*")

    assert [line["outcome"] for line in LINES if matches(failures, line)] == ["retryable"]
    assert len([line for line in LINES if matches(circuits, line)]) == 4
    with pytest.raises(QuerySyntaxError):
        query_parse("event:(gateway_attempt")
