"""The hot path's prebuilt statements on PostgreSQL, run on asyncpg directly.

SQLAlchemy's execution adds about 100 µs of CPU per statement on top of asyncpg's own 20–40 µs
(docs/loadtests.md), and a sale runs some thirty statements. The hot path's SELECTs and UPDATEs are
module constants whose every value is a bound parameter, so this module compiles each once for
PostgreSQL (SQL text, parameter order, SQLAlchemy's own bind processors such as JSON) and runs it
with asyncpg on the session's connection, inside the session's transaction. Everything else (other
dialects, INSERTs whose columns have Python-side defaults) goes through ``session.execute``.

A connection that dies under it is reported the way SQLAlchemy reports it (``DBAPIError`` with
``connection_invalidated``: the API answers 503 with response code 96), and is invalidated so the
pool replaces it.
"""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import asyncpg
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import ClauseElement

# The dead-connection errors SQLAlchemy's asyncpg dialect also treats as disconnects.
_DISCONNECTS = (asyncpg.exceptions.ConnectionDoesNotExistError, asyncpg.exceptions.InterfaceError,
                asyncpg.exceptions.PostgresConnectionError, ConnectionError, OSError)


@dataclass(frozen=True, slots=True)
class _Compiled:
    sql: str
    names: tuple[str, ...]  # parameter names in $1, $2, ... order
    processors: tuple  # SQLAlchemy's bind processor per position, or None
    literals: dict  # values the statement itself carries (e.g. ``status == 'active'``)
    row: type | None  # a named tuple of the result columns; None: no rows come back
    # SQLAlchemy's result processor per column (e.g. a NUMERIC latitude as float, as the ORM returns
    # it), or None; () when no column has one; None until the first execution tells the column OIDs.
    converters: tuple | None
    types: tuple  # SQLAlchemy's type of each result column

    def make_row(self, record):
        if not self.converters:
            return self.row(*record)
        return self.row(*(value if convert is None or value is None else convert(value)
                          for value, convert in zip(record, self.converters, strict=True)))

    def arguments(self, params: dict) -> list:
        values = (params[name] if name in params else self.literals[name] for name in self.names)
        return [value if process is None else process(value) for value, process in zip(values, self.processors, strict=True)]


class FastResult:
    """The part of SQLAlchemy's result API the hot path uses."""

    __slots__ = ("_rows", "rowcount")

    def __init__(self, rows: list, rowcount: int = -1):
        self._rows = rows
        self.rowcount = rowcount

    def __iter__(self):
        return iter(self._rows)

    def first(self):
        return self._rows[0] if self._rows else None

    def one(self):
        if len(self._rows) != 1:
            raise ValueError(f"expected one row, got {len(self._rows)}")
        return self._rows[0]

    def scalar_one(self):
        return self.one()[0]

    def all(self) -> list:
        return list(self._rows)


_compiled: dict[int, tuple[ClauseElement, _Compiled]] = {}

# Called with (SQL, executions) for every statement run here, as SQLAlchemy's before_cursor_execute
# is for its own (tests/loadtests compares the hot path's statements with the pgbench scripts).
observers: list[Callable[[str, int], None]] = []


def _compile(statement: ClauseElement, dialect) -> _Compiled:
    cached = _compiled.get(id(statement))
    if cached is not None and cached[0] is statement:
        return cached[1]
    compiled = statement.compile(dialect=dialect)
    names = tuple(compiled.positiontup or ())
    processors = compiled._bind_processors
    literals = {compiled.bind_names[bind]: bind.effective_value
                for bind in compiled.binds.values() if not bind.required}
    row, types = None, ()
    if compiled._result_columns:
        row = collections.namedtuple("Row", [column[0] for column in compiled._result_columns], rename=True)
        types = tuple(column[3] for column in compiled._result_columns)
    built = _Compiled(compiled.string, names, tuple(processors.get(name) for name in names), literals, row,
                      None if row is not None else (), types)
    _compiled[id(statement)] = (statement, built)  # the statement kept alive: its id stays its own
    return built


async def _learn_converters(statement, compiled: _Compiled, connection, dialect) -> _Compiled:
    """The result processors SQLAlchemy would apply, for the column types PostgreSQL reports."""
    attributes = (await connection.prepare(compiled.sql)).get_attributes()
    converters = tuple(type_._cached_result_processor(dialect, attribute.type.oid)
                       for type_, attribute in zip(compiled.types, attributes, strict=True))
    learned = dataclasses.replace(compiled, converters=converters if any(converters) else ())
    _compiled[id(statement)] = (statement, learned)
    return learned


async def execute(session: AsyncSession, statement: ClauseElement, params: dict | list[dict]):
    """``session.execute(statement, params)``, on asyncpg directly when the session is PostgreSQL.

    ``params`` a list: executemany (no rows come back, ``rowcount`` unknown)."""
    if session.bind.dialect.name != "postgresql":
        return await session.execute(statement, params)
    compiled = _compile(statement, session.bind.dialect)
    for observe in observers:
        observe(compiled.sql, len(params) if isinstance(params, list) else 1)
    sa_connection = await session.connection()
    fairy = await sa_connection.get_raw_connection()
    adapted = fairy.dbapi_connection  # SQLAlchemy's asyncpg adapter: it owns the transaction
    try:
        if adapted._transaction is None:
            await adapted._start_transaction()  # BEGIN, as its first execute would
        connection = adapted._connection
        if isinstance(params, list):
            await connection.executemany(compiled.sql, [compiled.arguments(p) for p in params])
            return FastResult([])
        arguments = compiled.arguments(params)
        if compiled.row is not None:
            if compiled.converters is None:
                compiled = await _learn_converters(statement, compiled, connection, session.bind.dialect)
            return FastResult([compiled.make_row(record) for record in await connection.fetch(compiled.sql, *arguments)])
        status = await connection.execute(compiled.sql, *arguments)
        return FastResult([], rowcount=int(status.rsplit(" ", 1)[-1]))
    except _DISCONNECTS as error:
        await sa_connection.invalidate()
        raise DBAPIError.instance(compiled.sql, None, error, Exception, connection_invalidated=True) from error

