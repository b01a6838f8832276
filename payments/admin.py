"""Staff's view of payments: find one, read its whole story, act on it through the services.

Nothing here edits a payment's fields: money, status and gateway data change only
through the actions (on the payment's page, or in bulk on the list), each confirmed
on an intermediate page and written to the admin log and to the payment's events
with the staff user's name. A payment's page is view-only: no Save buttons.
"""

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone

from gateways.models import Gateway
from paywave.admin_helpers import ViewOnlyPagesMixin, money_field
from paywave.api.errors import ApplicationError
from paywave.encryption import crypto
from paywave.values.money_text import money_display, money_parse
from paywave.values.tax_ids import normalize_tax_id, tax_id_kind

from .admin_disputes import DisputeInline
from .models import (
    FailureCode,
    OrphanCharge,
    Payment,
    PaymentAttempt,
    PaymentEvent,
    PaymentMethod,
    PaymentStatus,
    Refund,
)
from .refunds import REFUNDABLE, refundable_amount
from .staff import (
    CANCELABLE,
    LOOKABLE,
    RETRYABLE,
    payment_cancel_by_staff,
    payment_look_up_by_staff,
    payment_refund_by_staff,
    payment_retry_now,
)


class _ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class PaymentEventInline(_ReadOnlyInline):
    model = PaymentEvent
    fields = ("created_at", "from_status", "to_status", "reason", "actor")
    readonly_fields = fields


class PaymentAttemptInline(_ReadOnlyInline):
    model = PaymentAttempt
    fields = (
        "created_at",
        "gateway",
        "number",
        "sent",
        "outcome",
        "error_class",
        "error_message",
        "gateway_reference",
        "latency_ms",
    )
    readonly_fields = fields

    @admin.display(description="charged")
    def sent(self, attempt: PaymentAttempt) -> str:
        """The amount this call asked the gateway for (what the payment said then)."""
        summary = attempt.request_summary or {}
        if not isinstance(summary.get("amount"), int) or not summary.get("currency"):
            return "-"
        return money_display(summary["amount"], summary["currency"])


class RefundInline(_ReadOnlyInline):
    model = Refund
    fields = (
        "created_at",
        "amount_money",
        "status",
        "gateway_reference",
        "failure_message",
        "actor",
    )
    readonly_fields = fields
    amount_money = money_field("amount", "payment.currency", description="amount")

    def get_queryset(self, request: HttpRequest) -> QuerySet[Refund]:
        return super().get_queryset(request).select_related("payment")


class OrphanChargeInline(_ReadOnlyInline):
    """Charges the payment left at gateways it moved on from, and what became of them."""

    model = OrphanCharge
    verbose_name = "charge left behind"
    verbose_name_plural = "charges left behind (withdrawn on beat)"
    fields = (
        "created_at",
        "gateway",
        "status",
        "reference",
        "reason",
        "amount_paid_money",
        "refund_reference",
        "checks",
        "next_check_at",
        "last_error",
    )
    readonly_fields = fields
    amount_paid_money = money_field("amount_paid", "payment.currency", description="amount paid")

    def get_queryset(self, request: HttpRequest) -> QuerySet[OrphanCharge]:
        return super().get_queryset(request).select_related("payment")


CONFIRM_LISTED = 100  # payments named on the confirmation page; the rest are counted


def _confirmed(
    modeladmin: "PaymentAdmin",
    request: HttpRequest,
    queryset: QuerySet[Payment],
    *,
    verb: str,
    run: Callable[[Payment, str], object],
) -> HttpResponse | None:
    """Ask first; then run the action per payment, report, and log who did it."""
    if request.POST.get("confirmed") != "yes":
        count = queryset.count()
        return TemplateResponse(
            request,
            "admin/payments/confirm_action.html",
            {
                **modeladmin.admin_site.each_context(request),
                "title": f"Confirm: {verb}",
                "verb": verb,
                "payments": queryset[:CONFIRM_LISTED],
                "count": count,
                "not_listed": max(count - CONFIRM_LISTED, 0),
                "action": request.POST.get("action"),
                "selected": request.POST.getlist(ACTION_CHECKBOX_NAME),
                # "Select all N" ran the action on every match, not only this page's rows.
                "select_across": request.POST.get("select_across", "0"),
                "opts": modeladmin.model._meta,
            },
        )
    done = 0
    for payment in queryset:
        try:
            run(payment, request.user.get_username())
        except ApplicationError as exc:
            modeladmin.message_user(request, f"{payment.id}: {exc.message}", messages.ERROR)
            continue
        modeladmin.log_change(request, payment, f"{verb} (staff action, in bulk)")
        done += 1
    if done:
        modeladmin.message_user(request, f"{verb}: {done} payment(s).", messages.SUCCESS)
    return None


class FailureCodeFilter(admin.SimpleListFilter):
    """By failure code, from the codes PayWave sets (no scan of the table for its values)."""

    title = "failure code"
    parameter_name = "failure_code"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(code, code) for code in FailureCode.values]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Payment]) -> QuerySet[Payment]:
        if self.value():
            return queryset.filter(failure_code=self.value())
        return queryset


class GatewayFilter(admin.SimpleListFilter):
    """By gateway, from the gateway table (no scan of the payments for their values), and
    the payments no gateway took yet, by name rather than as an empty choice."""

    title = "gateway"
    parameter_name = "gateway"
    NOT_ROUTED = "-"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        codes = Gateway.objects.order_by("code").values_list("code", flat=True)
        return [*((code, code) for code in codes), (self.NOT_ROUTED, "not routed yet")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Payment]) -> QuerySet[Payment]:
        if self.value() == self.NOT_ROUTED:
            return queryset.filter(gateway="")
        if self.value():
            return queryset.filter(gateway=self.value())
        return queryset


@dataclass(frozen=True)
class PageAction:
    """An action offered on a payment's page, in the statuses where it can do something."""

    name: str  # its URL: <payment>/<name>/
    verb: str
    explanation: str
    statuses: tuple[str, ...]


PAGE_ACTIONS = {
    action.name: action
    for action in (
        PageAction(
            "retry",
            "Retry now",
            "Take the payment's next step at once: skip a backoff wait, or resume a payment "
            "parked for reconciliation (its gateway is asked about the charge first, so a "
            "charge that may exist is never made twice).",
            RETRYABLE,
        ),
        PageAction(
            "lookup",
            "Look up at the gateway",
            "Ask the PIX charge's gateway now whether the payer paid (reconciliation asks by "
            "itself at widening intervals after the code was shown, in case the gateway's "
            "callback was lost; the next time is the page's Next attempt at): paid, the "
            "payment succeeds; otherwise it keeps waiting, and its events say what the "
            "gateway answered.",
            LOOKABLE,
        ),
        PageAction(
            "cancel",
            "Cancel",
            "Cancel the payment; an awaiting PIX charge is withdrawn at its gateway too.",
            CANCELABLE,
        ),
        PageAction(
            "refund",
            "Refund",
            "Give the payer this amount back through the payment's gateway (taken first from "
            "the wallet the payment credited, if any). A worker asks the gateway; the refund "
            "and its outcome show on the payment's page.",
            REFUNDABLE,
        ),
    )
}


# What staff read after "Look up at the gateway", by what the look found.
LOOKED_UP = {
    "succeeded": "Looked up: the payer had paid. The payment succeeded.",
    "waiting": "Looked up: the gateway says the code is not paid yet. The payment keeps waiting.",
    "unreachable": "Looked up: the gateway did not answer. Reconciliation asks again later.",
    "not_found": "Looked up: the gateway does not know this charge. Its expiry settles it.",
    "parked": "Looked up: paid, but not as this payment (another amount, or given back): "
    "flagged for a person, see its events.",
    "moved": "Looked up: the payment had moved meanwhile; see its status.",
}


class RefundAmountForm(forms.Form):
    """The amount as staff type it, in major units of the payment's currency; empty: all
    that is left."""

    amount = forms.CharField(required=False, max_length=40)

    def __init__(self, *args: Any, currency: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.currency = currency

    def clean_amount(self) -> int | None:
        text = self.cleaned_data["amount"]
        if not text:
            return None
        try:
            return money_parse(text, self.currency).amount
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from exc


class ApprovalFilter(admin.SimpleListFilter):
    """PayPal payments waiting for their payer: all of them, or those past their time."""

    title = "PayPal approval"
    parameter_name = "approval"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("waiting", "waiting for the payer"), ("overdue", "past its approval time")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Payment]) -> QuerySet[Payment]:
        waiting = queryset.filter(method=PaymentMethod.PAYPAL, status=PaymentStatus.REQUIRES_ACTION)
        if self.value() == "waiting":
            return waiting
        if self.value() == "overdue":
            return waiting.filter(approval_expires_at__lt=timezone.now())
        return queryset


@admin.register(Payment)
class PaymentAdmin(ViewOnlyPagesMixin, admin.ModelAdmin):
    list_display = (
        "id",
        "client",
        "status",
        "failure_code",
        "method",
        "amount_money",
        "gateway",
        "needs_reconciliation",
        "created_at",
    )
    list_filter = (
        "status",
        FailureCodeFilter,
        "method",
        GatewayFilter,
        "needs_reconciliation",
        "parked_reason",
        ApprovalFilter,
        "created_at",
    )
    date_hierarchy = "created_at"
    search_help_text = (
        "Payment id, PIX txid, gateway reference (a PayPal order id), PayPal capture id, "
        "payer e-mail or tax id (exact)."
    )
    search_fields = ("=pix_txid", "=gateway_reference", "=capture_reference")
    list_select_related = ("client",)
    inlines = (
        PaymentEventInline,
        PaymentAttemptInline,
        RefundInline,
        DisputeInline,
        OrphanChargeInline,
    )
    fields = (
        ("id", "client", "version"),
        ("status", "failure_code", "failure_message"),
        ("amount_money", "amount_refunded_money", "left_to_refund"),
        ("method", "gateway", "gateway_reference"),
        ("needs_reconciliation", "parked_reason", "reconciliation_reason"),
        ("payer_name", "payer_email", "payer_tax_id_last4", "payer_country"),
        ("card_brand", "card_last4", "next_action"),
        ("capture_reference", "approval_expires_at"),
        ("return_url", "cancel_url"),
        ("pix_txid", "pix_expires_at"),
        "pix_qr_code",
        ("wallet_id", "description"),
        "metadata",
        ("next_attempt_at", "created_at", "updated_at"),
    )
    readonly_fields = tuple(
        name for row in fields for name in (row if isinstance(row, tuple) else (row,))
    )
    actions = ("retry_now", "cancel", "refund")

    amount_money = money_field("amount")
    amount_refunded_money = money_field("amount_refunded", description="refunded")

    @admin.display(description="left to refund")
    def left_to_refund(self, payment: Payment) -> str:
        if payment.status not in REFUNDABLE:
            return "-"
        return money_display(refundable_amount(payment), payment.currency)

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Payment], search_term: str
    ) -> tuple[QuerySet[Payment], bool]:
        term = search_term.strip()
        if not term:
            return queryset, False
        try:
            return queryset.filter(pk=uuid.UUID(term)), False
        except ValueError:
            pass
        if "@" in term:  # encrypted at rest: found by its keyed hash, exactly
            return queryset.filter(payer_email_hash=crypto.blind_index(term.lower())), False
        tax_id = normalize_tax_id(term)
        if tax_id_kind(tax_id):
            return queryset.filter(payer_tax_id_hash=crypto.blind_index(tax_id)), False
        return super().get_search_results(request, queryset, term)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    # --- actions on the payment's page --------------------------------------------------

    def get_urls(self) -> list[URLPattern]:
        own = [
            path(
                f"<path:object_id>/{name}/",
                self.admin_site.admin_view(self.page_action_view),
                {"action": name},
                name=f"payments_payment_{name}",
            )
            for name in PAGE_ACTIONS
        ]
        return own + super().get_urls()

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict[str, Any],
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: Payment | None = None,
    ) -> HttpResponse:
        if obj is not None and self.has_change_permission(request):
            offered = [a for a in PAGE_ACTIONS.values() if obj.status in a.statuses]
            context["payment_actions"] = [
                {"verb": a.verb, "url": self._action_url(a.name, obj)}
                for a in offered
                if a.name != "refund"
            ]
            if any(a.name == "refund" for a in offered):
                context["refund_url"] = self._action_url("refund", obj)
                context["refund_left"] = money_display(refundable_amount(obj), obj.currency)
        return super().render_change_form(request, context, add, change, form_url, obj)

    def page_action_view(self, request: HttpRequest, object_id: str, action: str) -> HttpResponse:
        """GET: the confirmation page. POST with confirmed=yes: the action, then back to the
        payment's page with what happened (a refusal from the service as an error)."""
        if not self.has_change_permission(request):
            raise PermissionDenied
        payment = self.get_object(request, unquote(object_id))
        if payment is None:
            # A private ModelAdmin helper (the admin's own "no such object"), not in the stubs.
            return self._get_obj_does_not_exist_redirect(  # type: ignore[attr-defined]
                request, self.opts, object_id
            )
        spec = PAGE_ACTIONS[action]
        data = request.POST if request.method == "POST" else request.GET
        form = RefundAmountForm(data, currency=payment.currency) if action == "refund" else None
        problems = list(form.errors.get("amount", [])) if form and not form.is_valid() else []
        amount = form.cleaned_data.get("amount") if form and not problems else None
        if request.method == "POST" and request.POST.get("confirmed") == "yes" and not problems:
            return self._run_page_action(request, payment, spec, amount)
        context: dict[str, Any] = {
            **self.admin_site.each_context(request),
            "title": f"Confirm: {spec.verb}",
            "opts": self.opts,
            "payment": payment,
            "action": spec,
            "change_url": self._action_url("change", payment),
            "problems": problems,
        }
        if form is not None:
            left = refundable_amount(payment)
            refund = left if amount is None else amount
            if not problems and left <= 0:
                problems.append("Nothing is left to refund.")
            elif not problems and refund > left:
                problems.append(f"At most {money_display(left, payment.currency)} is left.")
            context.update(
                left=money_display(left, payment.currency),
                refund=money_display(refund, payment.currency),
                all_that_is_left=amount is None,
                amount_text=data.get("amount", ""),
            )
        return TemplateResponse(request, "admin/payments/payment/confirm_page_action.html", context)

    def _run_page_action(
        self, request: HttpRequest, payment: Payment, spec: PageAction, amount: int | None
    ) -> HttpResponse:
        staff = request.user.get_username()
        try:
            if spec.name == "retry":
                payment_retry_now(payment_id=payment.pk, actor=f"staff:{staff}")
                done = "Retry now: the payment's next step runs at once."
            elif spec.name == "lookup":
                verdict = payment_look_up_by_staff(payment=payment, staff=staff)
                done = LOOKED_UP.get(verdict, f"Looked up at the gateway: {verdict}.")
            elif spec.name == "cancel":
                payment_cancel_by_staff(payment=payment, staff=staff)
                done = "Canceled."
            else:
                refund = payment_refund_by_staff(payment=payment, staff=staff, amount=amount)
                money = money_display(refund.amount, payment.currency)
                done = f"Refund of {money} requested (refund {refund.id})."
        except ApplicationError as exc:
            self.message_user(request, self._refusal(exc, payment), messages.ERROR)
        else:
            self.log_change(request, payment, f"{done} (staff action, payment page)")
            self.message_user(request, done, messages.SUCCESS)
        return HttpResponseRedirect(self._action_url("change", payment))

    @staticmethod
    def _refusal(exc: ApplicationError, payment: Payment) -> str:
        """The service's reason, in money rather than minor units where it names an amount."""
        message = exc.message
        if exc.code == "refund_exceeds_payment":
            left = money_display(refundable_amount(payment), payment.currency)
            message = f"At most {left} is left to refund."
        return f"Not done: {message} ({exc.code})"

    def _action_url(self, name: str, payment: Payment) -> str:
        return reverse(
            f"admin:payments_payment_{name}", args=[payment.pk], current_app=self.admin_site.name
        )

    # --- bulk actions on the list -------------------------------------------------------

    @admin.action(
        description="Retry now (skip the wait, or resume a parked payment)", permissions=["change"]
    )
    def retry_now(self, request: HttpRequest, queryset: QuerySet[Payment]) -> HttpResponse | None:
        return _confirmed(
            self,
            request,
            queryset,
            verb="Retry now",
            run=lambda payment, staff: payment_retry_now(
                payment_id=payment.pk, actor=f"staff:{staff}"
            ),
        )

    @admin.action(description="Cancel (pending or awaiting PIX payment)", permissions=["change"])
    def cancel(self, request: HttpRequest, queryset: QuerySet[Payment]) -> HttpResponse | None:
        return _confirmed(
            self,
            request,
            queryset,
            verb="Cancel",
            run=lambda payment, staff: payment_cancel_by_staff(payment=payment, staff=staff),
        )

    @admin.action(description="Refund all that is left", permissions=["change"])
    def refund(self, request: HttpRequest, queryset: QuerySet[Payment]) -> HttpResponse | None:
        return _confirmed(
            self,
            request,
            queryset,
            verb="Refund",
            run=lambda payment, staff: payment_refund_by_staff(payment=payment, staff=staff),
        )


@admin.register(Refund)
class RefundAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "payment",
        "amount_money",
        "status",
        "gateway",
        "needs_reconciliation",
        "created_at",
    )
    list_filter = ("status", "gateway", "needs_reconciliation")
    search_fields = ("=id", "=payment__id", "=gateway_reference")
    list_select_related = ("payment",)
    readonly_fields = tuple(
        "amount_money" if field.name == "amount" else field.name for field in Refund._meta.fields
    )
    fields = readonly_fields
    amount_money = money_field("amount", "payment.currency", description="amount")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
