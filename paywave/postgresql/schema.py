"""Schema operations for the apps' migrations that Django's own do not offer.

Each builds or drops indexes `CONCURRENTLY` on PostgreSQL, so neither reads nor writes
wait for it (a migration using them sets `atomic = False`: CONCURRENTLY runs outside a
transaction), and undoes it when the migration is reversed.
"""

from typing import Any

from django.db import migrations

_PATTERN_INDEXES = (
    "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()"
    " AND tablename = %s AND indexdef LIKE '%%pattern_ops%%'"
)


def _concurrently(schema_editor: Any) -> str:
    return " CONCURRENTLY" if schema_editor.connection.vendor == "postgresql" else ""


def _drop(schema_editor: Any, name: str) -> None:
    schema_editor.execute(
        f"DROP INDEX{_concurrently(schema_editor)} IF EXISTS {schema_editor.quote_name(name)}"
    )


def foreign_key_indexes_dropped(*fields: tuple[str, str, str]) -> migrations.RunPython:
    """Drop the index Django gives each foreign key of its own, for `(app_label, model,
    field)` keys whose column leads another index of the table, which serves their lookups
    and the checks of ON DELETE. The constraint stays as it is: `AlterField(db_index=False)`
    would drop it and add it again, reading every row of the table under its lock, so a
    migration pairs this with that AlterField in `SeparateDatabaseAndState`."""

    def columns(apps: Any) -> list[tuple[Any, Any]]:
        found = []
        for app_label, model_name, field_name in fields:
            model = apps.get_model(app_label, model_name)
            found.append((model, model._meta.get_field(field_name)))
        return found

    def forwards(apps: Any, schema_editor: Any) -> None:
        connection = schema_editor.connection
        for model, field in columns(apps):
            table = model._meta.db_table
            with connection.cursor() as cursor:
                constraints = connection.introspection.get_constraints(cursor, table)
            for name, about in constraints.items():
                if (
                    about["index"]
                    and about["columns"] == [field.column]
                    and not about["unique"]
                    and not about["primary_key"]
                    and not about.get("foreign_key")
                ):
                    _drop(schema_editor, name)

    def backwards(apps: Any, schema_editor: Any) -> None:
        for model, field in columns(apps):
            table = model._meta.db_table
            name = schema_editor._create_index_name(table, [field.column], suffix="")
            schema_editor.execute(
                f"CREATE INDEX{_concurrently(schema_editor)} IF NOT EXISTS "
                f"{schema_editor.quote_name(name)} ON {schema_editor.quote_name(table)} "
                f"({schema_editor.quote_name(field.column)})"
            )

    return migrations.RunPython(forwards, backwards, elidable=False)


def prefix_search_indexes_dropped(*tables: str) -> migrations.RunPython:
    """Drop the `varchar_pattern_ops` index Django's PostgreSQL backend adds beside the
    index of every indexed or unique text column, for `LIKE 'prefix%'` searches: no query
    of these tables searches by prefix, and each such index is written by every INSERT
    (and every UPDATE that is not HOT). The column's own index stays. Elsewhere, nothing.
    Reversed, it puts back the ones Django adds (an index with `opclasses` of its own
    would not come back: none of these tables has one)."""

    def forwards(apps: Any, schema_editor: Any) -> None:
        if schema_editor.connection.vendor != "postgresql":
            return
        for table in tables:
            with schema_editor.connection.cursor() as cursor:
                cursor.execute(_PATTERN_INDEXES, [table])
                names = [name for (name,) in cursor.fetchall()]
            for name in names:
                _drop(schema_editor, name)

    def backwards(apps: Any, schema_editor: Any) -> None:
        if schema_editor.connection.vendor != "postgresql":
            return
        for model in apps.get_models():
            if model._meta.db_table not in tables:
                continue
            for field in model._meta.local_fields:
                if field.db_index or field.unique:
                    like = schema_editor._create_like_index_sql(model, field)
                    if like is not None:
                        schema_editor.execute(like)

    return migrations.RunPython(forwards, backwards, elidable=False)


class AddIndexConcurrently(migrations.AddIndex):
    """Django's AddIndex, built with `CREATE INDEX CONCURRENTLY` on PostgreSQL: a plain one
    holds every write to the table until the index is built (on payments, every accept).
    Elsewhere (SQLite), a plain AddIndex."""

    def database_forwards(
        self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any
    ) -> None:
        model = to_state.apps.get_model(app_label, self.model_name)
        if self.allow_migrate_model(schema_editor.connection.alias, model):
            schema_editor.add_index(model, self.index, **_concurrently_kwargs(schema_editor))

    def database_backwards(
        self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any
    ) -> None:
        model = from_state.apps.get_model(app_label, self.model_name)
        if self.allow_migrate_model(schema_editor.connection.alias, model):
            schema_editor.remove_index(model, self.index, **_concurrently_kwargs(schema_editor))


def _concurrently_kwargs(schema_editor: Any) -> dict[str, bool]:
    return {"concurrently": True} if schema_editor.connection.vendor == "postgresql" else {}
