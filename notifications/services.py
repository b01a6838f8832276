"""Recording events; delivering them is the notification workers' job."""

from typing import Any
from uuid import UUID

from .models import Event


def event_record(*, type: str, client_id: Any, subject_id: UUID, data: dict[str, Any]) -> Event:
    """Call inside the transaction that makes the event true, so both commit or neither."""
    return Event.objects.create(type=type, client_id=client_id, subject_id=subject_id, data=data)
