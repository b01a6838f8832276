"""Staff's view of disputes: the open ones and their evidence deadlines, by gateway, and an
answer sent through the gateway's API where it takes one.

A dispute's fields are the gateway's: nothing here edits them. The one action, "Submit
evidence", is confirmed on its own page and written to the admin log and the payment's
events with the staff user's name.
"""

from datetime import timedelta
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html

from gateways.base import DisputeStatus, GatewayError, Unsupported
from paywave.admin_helpers import ViewOnlyPagesMixin, money_field
from paywave.api.errors import ApplicationError

from .models import OPEN_DISPUTE_STATUSES, Dispute
from .staff import dispute_submit_evidence

# "Due soon": an answer due within this is the first thing to look at.
DUE_SOON = timedelta(days=3)
EVIDENCE_MAX_CHARS = 20_000


class OpenFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("open", "open"), ("closed", "closed (won or lost)")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Dispute]) -> QuerySet[Dispute]:
        if self.value() == "open":
            return queryset.filter(status__in=OPEN_DISPUTE_STATUSES)
        if self.value() == "closed":
            return queryset.exclude(status__in=OPEN_DISPUTE_STATUSES)
        return queryset


class EvidenceDueFilter(admin.SimpleListFilter):
    title = "evidence due"
    parameter_name = "due"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("overdue", "overdue"), ("soon", "within 3 days"), ("later", "later")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Dispute]) -> QuerySet[Dispute]:
        now = timezone.now()
        waiting = queryset.filter(
            status=DisputeStatus.NEEDS_RESPONSE, evidence_due_at__isnull=False
        )
        if self.value() == "overdue":
            return waiting.filter(evidence_due_at__lt=now)
        if self.value() == "soon":
            return waiting.filter(evidence_due_at__gte=now, evidence_due_at__lt=now + DUE_SOON)
        if self.value() == "later":
            return waiting.filter(evidence_due_at__gte=now + DUE_SOON)
        return queryset


class EvidenceForm(forms.Form):
    text = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 10, "cols": 80}),
        max_length=EVIDENCE_MAX_CHARS,
        strip=True,
        label="Evidence",
        help_text="What the merchant answers: what was sold, to whom, delivery, contact.",
    )


@admin.register(Dispute)
class DisputeAdmin(ViewOnlyPagesMixin, admin.ModelAdmin):
    list_display = (
        "reference",
        "payment_link",
        "gateway",
        "kind",
        "status",
        "amount_money",
        "reason",
        "evidence_due_at",
        "opened_at",
        "closed_at",
    )
    list_filter = (OpenFilter, EvidenceDueFilter, "gateway", "kind", "status", "opened_at")
    date_hierarchy = "opened_at"
    search_fields = ("=reference", "=payment__id")
    search_help_text = "The gateway's dispute id, or the payment id (exact)."
    list_select_related = ("payment",)
    fields = (
        ("id", "payment_link", "gateway", "reference"),
        ("kind", "status", "raw_status"),
        ("amount_money", "reason"),
        ("evidence_due_at", "evidence_submittable"),
        ("evidence_submitted_at", "evidence_submitted_by"),
        "evidence_text",
        ("opened_at", "closed_at", "checked_at"),
    )
    readonly_fields = tuple(
        name for row in fields for name in (row if isinstance(row, tuple) else (row,))
    )
    amount_money = money_field("amount")

    @admin.display(description="payment", ordering="payment")
    def payment_link(self, dispute: Dispute) -> str:
        url = reverse("admin:payments_payment_change", args=[dispute.payment_id])
        return format_html('<a href="{}">{}</a>', url, dispute.payment_id)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_urls(self) -> list[URLPattern]:
        own = [
            path(
                "<path:object_id>/evidence/",
                self.admin_site.admin_view(self.evidence_view),
                name="payments_dispute_evidence",
            )
        ]
        return own + super().get_urls()

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict[str, Any],
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: Dispute | None = None,
    ) -> HttpResponse:
        if obj is not None and obj.is_open and super().has_change_permission(request):
            context["evidence_url"] = self._evidence_url(obj)
            context["evidence_form"] = EvidenceForm()
        return super().render_change_form(request, context, add, change, form_url, obj)

    def evidence_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """POST the text: a confirmation page; POST it with confirmed=yes: send it, then back
        to the dispute's page with what the gateway said."""
        if not super().has_change_permission(request) or request.method != "POST":
            raise PermissionDenied
        dispute = self.get_object(request, unquote(object_id))
        if dispute is None:
            return self._get_obj_does_not_exist_redirect(  # type: ignore[attr-defined]
                request, self.opts, object_id
            )
        form = EvidenceForm(request.POST)
        if form.is_valid() and request.POST.get("confirmed") == "yes":
            return self._submit(request, dispute, form.cleaned_data["text"])
        context = {
            **self.admin_site.each_context(request),
            "title": "Confirm: submit evidence",
            "opts": self.opts,
            "dispute": dispute,
            "form": form,
            "change_url": self._change_url(dispute),
            "evidence_url": self._evidence_url(dispute),
        }
        return TemplateResponse(request, "admin/payments/dispute/confirm_evidence.html", context)

    def _submit(self, request: HttpRequest, dispute: Dispute, text: str) -> HttpResponse:
        staff = request.user.get_username()
        try:
            dispute = dispute_submit_evidence(dispute_id=dispute.pk, text=text, staff=staff)
        except Unsupported:
            self.message_user(
                request,
                f"Not sent: {dispute.gateway} takes answers to disputes only in its own "
                "dashboard. Answer there before the deadline.",
                messages.ERROR,
            )
        except (ApplicationError, GatewayError) as exc:
            self.message_user(request, f"Not sent: {exc.message}", messages.ERROR)
        else:
            done = f"Evidence submitted to {dispute.gateway}; the dispute is {dispute.status}."
            self.log_change(request, dispute, f"{done} (staff action)")
            self.message_user(request, done, messages.SUCCESS)
        return HttpResponseRedirect(self._change_url(dispute))

    def _change_url(self, dispute: Dispute) -> str:
        return reverse(
            "admin:payments_dispute_change", args=[dispute.pk], current_app=self.admin_site.name
        )

    def _evidence_url(self, dispute: Dispute) -> str:
        return reverse(
            "admin:payments_dispute_evidence", args=[dispute.pk], current_app=self.admin_site.name
        )


class DisputeInline(admin.TabularInline):
    """On the payment's page: its disputes, each a link to its own page."""

    model = Dispute
    extra = 0
    can_delete = False
    show_change_link = True
    fields = ("opened_at", "gateway", "kind", "status", "amount_money", "reason", "evidence_due_at")
    readonly_fields = fields
    amount_money = money_field("amount", description="amount")

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
