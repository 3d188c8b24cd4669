"""Single rows in and out through statements built once, for the request paths where the ORM's
query compiler costs more than the query: ``POST /api/v1/messages`` compiled a select_related
lookup, an INSERT and an UPDATE on every request, 2.2 ms of the web process's CPU against
0.5 ms for running the same statements.

The values go through the same field methods the ORM uses (``pre_save``, ``get_db_prep_save``
on the way in, the backend's and the field's converters on the way out), so what is written and
read is what ``save()`` and a queryset would write and read. The statements' text is fixed per
model and database vendor; only values are parameters.

On PostgreSQL these statements, and only these, are prepared (:func:`statement_cursor`): after a
few executions a connection reuses one plan instead of planning on every request (planning the
conversation lookup cost PostgreSQL 0.3 ms against 0.05 ms to run it). Their plans do not
depend on the values -- every lookup is by a unique key -- which is why the rest of the product
keeps Django's default of statements planned for their values.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from django.db import connections, transaction
from django.db.backends.utils import CursorDebugWrapper, CursorWrapper
from django.db.models import Field, Model

_INSERTS: dict[tuple, tuple[str, list[Field]]] = {}
_UPDATES: dict[tuple, tuple[str, list[Field]]] = {}
_CONVERTERS: dict[tuple[type[Model], str, str], list[tuple[int, Any, list[Callable]]]] = {}


@functools.cache
def _preparing_cursor_class() -> type:
    from django.db.backends.postgresql.base import ServerBindingCursor

    class PreparingCursor(ServerBindingCursor):
        """Values bound on the server, and the statement prepared on its first execution on
        the connection (psycopg keeps the connection's prepared statements, most recent 100)."""

        def execute(self, query: Any, params: Any = None, *, prepare: bool | None = None, binary: Any = None) -> Any:
            return super().execute(query, params, prepare=True if prepare is None else prepare, binary=binary)

    return PreparingCursor


def statement_cursor(using: str = "default") -> Any:
    """A cursor for this module's fixed statements (use it as ``connection.cursor()``). On
    PostgreSQL it binds values on the server and prepares each statement on a connection's first use;
    elsewhere it is the usual cursor. Django's wrappers (query logging, error wrapping, the
    health check) apply as to any cursor."""
    connection = connections[using]
    if connection.vendor != "postgresql":
        return connection.cursor()
    # What BaseDatabaseWrapper.cursor() does, with another cursor class.
    connection.close_if_health_check_failed()
    connection.ensure_connection()
    with connection.wrap_database_errors:
        cursor = _preparing_cursor_class()(connection.connection)
    connection.validate_thread_sharing()
    return (_StatementDebugWrapper if connection.queries_logged else CursorWrapper)(cursor, connection)


class _StatementDebugWrapper(CursorDebugWrapper):
    """Logs a prepared statement with its values, as Django logs any other: Django reads the
    text back from the cursor, and a prepared statement's execution carries none."""

    def execute(self, sql: Any, params: Any = None) -> Any:
        with self.debug_sql(self.db.ops.compose_sql(sql, params)):
            return CursorWrapper.execute(self, sql, params)


def _insert_statement(model: type[Model], connection: Any) -> tuple[str, list[Field]]:
    key = (model, connection.vendor)
    if key not in _INSERTS:
        meta = model._meta
        quote = connection.ops.quote_name
        fields = [f for f in meta.concrete_fields if not f.primary_key]
        _INSERTS[key] = (
            f"INSERT INTO {quote(meta.db_table)} ({', '.join(quote(f.column) for f in fields)}) "
            f"VALUES ({', '.join(['%s'] * len(fields))}) RETURNING {quote(meta.pk.column)}",
            fields,
        )
    return _INSERTS[key]


def _insert(obj: Model, connection: Any) -> tuple[str, list[Any]]:
    statement, fields = _insert_statement(type(obj), connection)
    return statement, [f.get_db_prep_save(f.pre_save(obj, True), connection) for f in fields]


def _inserted(obj: Model, statement: str, params: list[Any], using: str) -> Model | None:
    """Run an INSERT … RETURNING pk of ``obj``; set its pk and mark it saved (None: no row)."""
    with statement_cursor(using) as cursor:
        cursor.execute(statement, params)
        row = cursor.fetchone()
    if row is None:
        return None
    obj.pk = row[0]
    obj._state.adding = False
    obj._state.db = using
    return obj


def row_insert(obj: Model, *, using: str = "default", ignore_conflicts: bool = False) -> Model | None:
    """INSERT the new instance ``obj`` as ``obj.save()`` would (``auto_now`` and
    ``auto_now_add`` filled in, every value prepared by its field; no signals are sent), set its
    primary key and mark it saved. With ``ignore_conflicts``, a row that a unique constraint
    refuses is not written and None is returned: one statement, where catching the
    IntegrityError needs a transaction (or savepoint) around it."""
    statement, params = _insert(obj, connections[using])
    if ignore_conflicts:
        statement = statement.replace(" RETURNING ", " ON CONFLICT DO NOTHING RETURNING ", 1)
    return _inserted(obj, statement, params, using)


def insert_from(obj: Model, *, source: str, columns: Mapping[str, str],
                using: str = "default") -> tuple[str, list[Any]]:
    """The INSERT … RETURNING pk of ``obj`` as a statement and its values, except that the fields
    named in ``columns`` (attname -> an expression over ``source``) take their values from the
    row(s) of ``source``, a table or ``WITH`` query: ``INSERT … SELECT %s, …, <expression>, …
    FROM <source>``. No row in ``source``, no row inserted."""
    connection = connections[using]
    key = (type(obj), connection.vendor, source, tuple(columns.items()))
    if key not in _INSERTS:
        meta = type(obj)._meta
        quote = connection.ops.quote_name
        fields = [f for f in meta.concrete_fields if not f.primary_key]
        _INSERTS[key] = (
            f"INSERT INTO {quote(meta.db_table)} ({', '.join(quote(f.column) for f in fields)}) "
            f"SELECT {', '.join(columns.get(f.attname, '%s') for f in fields)} FROM {source} "
            f"RETURNING {quote(meta.pk.column)}",
            [f for f in fields if f.attname not in columns],
        )
    statement, fields = _INSERTS[key]
    return statement, [f.get_db_prep_save(f.pre_save(obj, True), connection) for f in fields]


def _update(model: type[Model], pk: Any, tenant_id: int, values: Mapping[str, Any],
            connection: Any, *, pk_expression: str = "%s") -> tuple[str, list[Any]]:
    names = tuple(values)
    key = (model, connection.vendor, names, pk_expression)
    if key not in _UPDATES:
        meta = model._meta
        quote = connection.ops.quote_name
        fields = [meta.get_field(name) for name in names]
        _UPDATES[key] = (
            f"UPDATE {quote(meta.db_table)} SET {', '.join(f'{quote(f.column)} = %s' for f in fields)} "
            f"WHERE {quote(meta.pk.column)} = {pk_expression} AND {quote(meta.get_field('tenant').column)} = %s",
            fields,
        )
    statement, fields = _UPDATES[key]
    keys = [pk, tenant_id] if pk_expression == "%s" else [tenant_id]
    return statement, [*(f.get_db_prep_save(values[f.name], connection) for f in fields), *keys]


def update_of(model: type[Model], *, pk_expression: str, tenant_id: int, values: Mapping[str, Any],
              using: str = "default") -> tuple[str, list[Any]]:
    """:func:`row_update`'s statement and values, the row named by an SQL expression (a scalar
    subquery, say) instead of a value, for use inside a larger statement."""
    return _update(model, None, tenant_id, values, connections[using], pk_expression=pk_expression)


def row_update(model: type[Model], *, pk: Any, tenant_id: int, values: Mapping[str, Any],
               using: str = "default") -> int:
    """``UPDATE … SET <values> WHERE pk = <pk> AND tenant_id = <tenant_id>`` (values by field
    name, prepared by their fields); returns the rows changed (0 or 1)."""
    connection = connections[using]
    with statement_cursor(using) as cursor:
        cursor.execute(*_update(model, pk, tenant_id, values, connection))
        return cursor.rowcount


def row_insert_with_update(obj: Model, model: type[Model], *, pk: Any, tenant_id: int, values: Mapping[str, Any],
                           using: str = "default") -> Model:
    """:func:`row_insert` of ``obj`` and :func:`row_update` of another row, both or neither: on
    PostgreSQL one statement (the UPDATE as a data-modifying ``WITH``, which always runs to
    completion), so that outside a transaction no BEGIN and COMMIT are needed; elsewhere two
    statements in a transaction."""
    connection = connections[using]
    if connection.vendor != "postgresql":
        with transaction.atomic(using=using):
            row_insert(obj, using=using)
            row_update(model, pk=pk, tenant_id=tenant_id, values=values, using=using)
        return obj
    update, update_params = _update(model, pk, tenant_id, values, connection)
    insert, insert_params = _insert(obj, connection)
    return _inserted(obj, f"WITH updated AS ({update}) {insert}", [*update_params, *insert_params], using)


def select_columns(model: type[Model], alias: str, *, using: str = "default") -> str:
    """Every concrete column of ``model`` under the table alias ``alias``, in field order: the
    select list that :func:`models_from_row` reads back."""
    quote = connections[using].ops.quote_name
    return ", ".join(f"{quote(alias)}.{quote(f.column)}" for f in model._meta.concrete_fields)


def _converters(model: type[Model], alias: str, connection: Any) -> list[tuple[int, Any, list[Callable]]]:
    """(position, column, converters) of each column that has converters."""
    key = (model, alias, connection.vendor)
    if key not in _CONVERTERS:
        found = []
        for i, field in enumerate(model._meta.concrete_fields):
            col = field.get_col(alias)
            converters = [*connection.ops.get_db_converters(col), *col.get_db_converters(connection)]
            if converters:
                found.append((i, col, converters))
        _CONVERTERS[key] = found
    return _CONVERTERS[key]


def models_from_row(row: Sequence[Any], parts: Sequence[tuple[type[Model], str]], *,
                    using: str = "default") -> list[Model]:
    """The instances of ``parts`` ((model, alias) pairs) in ``row``, a row of a SELECT whose
    list is their :func:`select_columns` one after the other, each value converted as a queryset
    would convert it."""
    connection = connections[using]
    found, start = [], 0
    for model, alias in parts:
        fields = model._meta.concrete_fields
        values = list(row[start:start + len(fields)])
        for i, col, converters in _converters(model, alias, connection):
            for converter in converters:
                values[i] = converter(values[i], col, connection)
        found.append(model.from_db(using, [f.attname for f in fields], values))
        start += len(fields)
    return found
