"""Small query helpers shared by the apps."""

from typing import Any


def one_or_none(queryset: Any) -> Any:
    """The row a unique lookup finds, or None.

    `QuerySet.first()` orders by the model's ordering (or the primary key) to pick a
    first row; for a lookup by a unique key there is only one, so no ORDER BY is built
    or run.
    """
    found = list(queryset.order_by()[:1])
    return found[0] if found else None
