from django.db import models

from paywave.models import ApiClient


class Event(models.Model):
    """Something a wallet app may be told about, written in the transaction that made it true.

    Append-only and ordered by id: deliveries read it in order per subject.
    """

    id = models.BigAutoField(primary_key=True)
    type = models.CharField(max_length=40)  # e.g. "payment.succeeded"
    client = models.ForeignKey(ApiClient, on_delete=models.PROTECT, related_name="events")
    subject_id = models.UUIDField()  # the payment, refund, wallet or transfer
    data = models.JSONField()  # the subject as the API shows it, at that moment
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("id",)
        indexes = [models.Index(fields=["subject_id", "id"], name="event_subject_idx")]

    def __str__(self) -> str:
        return f"{self.type} {self.subject_id}"
