"""Small query helpers shared by the apps."""

import functools
from typing import Any


def one_or_none(queryset: Any) -> Any:
    """The row a unique lookup finds, or None.

    `QuerySet.first()` orders by the model's ordering (or the primary key) to pick a
    first row; for a lookup by a unique key there is only one, so no ORDER BY is built
    or run.
    """
    found = list(queryset.order_by()[:1])
    return found[0] if found else None


def insert_parts(instance: Any, *, exclude: set[str]) -> tuple[list[str], list[str], list[Any]]:
    """What an INSERT of an unsaved instance writes, for SQL the ORM cannot build (one
    statement writing two tables): its quoted columns, one placeholder each, cast to the
    column's type (a VALUES list or a SELECT has no column to infer it from), and the
    values as the database takes them (encrypted fields encrypted). Fields in `exclude`
    (attnames) are left out; every other value must already be on the instance."""
    from django.db import connection

    model: Any = type(instance)
    fields, columns, placeholders = _insert_shape(model, frozenset(exclude), connection.alias)
    return (
        list(columns),
        list(placeholders),
        [field.get_db_prep_save(getattr(instance, field.attname), connection) for field in fields],
    )


@functools.cache
def _insert_shape(
    model: Any, exclude: frozenset[str], alias: str
) -> tuple[tuple[Any, ...], tuple[str, ...], tuple[str, ...]]:
    """A model's fields, quoted columns and cast placeholders on a connection: fixed for
    the life of the process (the models and the database do not change under it), and
    built on every payment change otherwise."""
    from django.db import connections

    connection = connections[alias]
    fields = tuple(f for f in model._meta.concrete_fields if f.attname not in exclude)
    return (
        fields,
        tuple(connection.ops.quote_name(field.column) for field in fields),
        tuple(f"CAST(%s AS {field.db_type(connection)})" for field in fields),
    )


def update_sql(queryset: Any, values: dict[str, Any]) -> tuple[str, tuple[Any, ...]]:
    """The UPDATE `queryset.update(**values)` would run, as SQL and parameters."""
    from django.db.models.sql import UpdateQuery

    query = queryset.query.chain(UpdateQuery)
    query.add_update_values(values)
    sql, params = query.get_compiler(queryset.db).as_sql()
    return sql, tuple(params)
