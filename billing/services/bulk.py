"""Reading and writing rows by the thousand, for jobs that touch 100 000 of them (R12).

A bank statement or a debit run reads and writes a row per line; building
model instances, an ``IN`` list of thousands of parameters or an ``INSERT``
for them costs more than the database work itself. These helpers keep the
ORM's safety (quoting, parameters) with PostgreSQL's bulk paths: one array
parameter instead of an ``IN`` list, ``COPY`` instead of ``INSERT``. On SQLite
(development and most tests) they fall back to the plain ORM.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from django.core.exceptions import EmptyResultSet
from django.db import connection
from django.db.models import F, JSONField, Lookup
from psycopg import sql
from psycopg.types.json import Jsonb

from afas_sb.audit.models import ActorKind


def in_query_size() -> int:
    """Values per query: SQLite takes them as separate parameters (kept under the 999 of
    older builds); PostgreSQL as one array (``among``), so there it can be a whole chunk."""
    return 900 if connection.vendor == "sqlite" else 5000


def batched(values: Iterable, size: int | None = None) -> Iterator[list]:
    size = size or in_query_size()
    chunk: list = []
    for value in values:
        chunk.append(value)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


class Among(Lookup):
    """``field = ANY(%s)``, the values as one array: an ``IN`` list of 5 000 parameters
    takes longer to send, parse and plan than the query takes to run. ``IN`` elsewhere.

    Only for values the database driver takes as they are (keys, text).
    """

    lookup_name = "among"
    prepare_rhs = False

    def as_sql(self, compiler, connection):
        lhs, params = self.process_lhs(compiler, connection)
        values = list(self.rhs)
        if connection.vendor == "postgresql":
            return f"{lhs} = ANY(%s)", [*params, values]
        if not values:
            raise EmptyResultSet
        return f"{lhs} IN ({', '.join(['%s'] * len(values))})", [*params, *values]


def among(field: str, values: Iterable) -> Among:
    """A filter: ``Invoice.objects.filter(among("pk", ids))``."""
    return Among(F(field), list(values))


def sql_among(column: str, values: list) -> tuple[str, list]:
    """``among`` for hand-written SQL: the condition on the quoted ``column`` and its parameters."""
    if connection.vendor == "postgresql":
        return f'"{column}" = ANY(%s)', [values]
    return f'"{column}" IN ({", ".join(["%s"] * len(values))})', list(values)


def reserve_ids(model, count: int) -> list[int]:
    """``count`` primary keys for rows about to be inserted, so other rows can refer to them.

    PostgreSQL hands them out from the table's sequence. SQLite has one writer at
    a time and the caller's transaction has already written, so the next ones
    after the highest key are ours.
    """
    if count <= 0:
        return []
    table = model._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
                [table, count],
            )
            return [row[0] for row in cursor.fetchall()]
        cursor.execute(f'SELECT COALESCE(MAX("id"), 0) FROM "{table}"')  # noqa: S608 - model table
        start = cursor.fetchone()[0] + 1
    return list(range(start, start + count))


def insert_rows(model, rows: list[dict]) -> None:
    """Insert plain rows (column name -> value, all with the same columns).

    PostgreSQL gets them by ``COPY``; elsewhere (SQLite) ``bulk_create``.
    """
    if not rows:
        return
    if connection.vendor != "postgresql":
        model.objects.bulk_create([model(**row) for row in rows], batch_size=500)
        return
    columns = list(rows[0])
    json_columns = {
        f.attname for f in model._meta.concrete_fields if isinstance(f, JSONField)
    } & set(columns)
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(model._meta.db_table), sql.SQL(", ").join(map(sql.Identifier, columns))
    )
    with (
        connection.cursor() as cursor,
        connection.wrap_database_errors,
        cursor.cursor.copy(statement) as copy,
    ):
        for row in rows:
            values = [row[column] for column in columns]
            if json_columns:
                values = [
                    Jsonb(value) if column in json_columns else value
                    for column, value in zip(columns, values, strict=True)
                ]
            copy.write_row(values)


def audit_row(
    action: str,
    model,
    pk: int,
    *,
    organisation_id: int | None,
    at,
    actor_kind: str = ActorKind.SYSTEM,
    user_id: int | None = None,
    reason: str = "",
    data: dict,
) -> dict:
    """``audit_record``'s row as plain column values, for ``insert_rows``."""
    return {
        "created_at": at,
        "action": action,
        "actor_kind": actor_kind,
        "actor_user_id": user_id,
        "organisation_id": organisation_id,
        "object_type": model._meta.label_lower,
        "object_id": str(pk),
        "reason": reason,
        "data": data,
    }
