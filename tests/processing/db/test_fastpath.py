"""The hot path's statements on asyncpg directly (processing/db/fastpath.py) give what SQLAlchemy
gives for them, write inside the session's transaction, and report a lost connection as SQLAlchemy
does (503 on the API)."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.engine import CursorResult
from sqlalchemy.exc import DBAPIError

from processing.authorization import lifecycle
from processing.authorization.engine import _LOAD_CARD, _LOAD_STATION, _STORE_CARD_STATE
from processing.authorization.models import Authorization
from processing.cards.models import Card
from processing.cards.service import DPAN_PURPOSE
from processing.db import fastpath
from processing.db.engine import unit_of_work
from processing.limits.service import _rules_statements
from tests.factories import authorization_message, make_world


async def _approved_sale(state, http, clock):
    world = await make_world(state)
    terminal = world.terminal(http, clock)
    message = authorization_message(world.phone, clock())
    reply = await terminal.authorize(**message)
    assert reply.body["approved"], reply.body
    return world, message["terminal_transaction_id"]


async def test_reads_give_what_sqlalchemy_gives(state, http, clock):
    world, transaction_id = await _approved_sale(state, http, clock)
    async with unit_of_work(state.sessionmaker) as session:
        terminal_id = (await session.execute(
            select(Authorization.terminal_id).where(Authorization.terminal_transaction_id == transaction_id)
        )).scalar_one()
        dpan_hash = state.keyring.lookup_hash(world.phone.dpan, purpose=DPAN_PURPOSE)
        limits, controls = _rules_statements(2)
        cases = [
            (_LOAD_STATION, {"terminal_id": terminal_id, "product": "diesel"}),
            (_LOAD_CARD, {"dpan_hash": dpan_hash}),
            (lifecycle._LOCK_AUTHORIZATION, {"terminal_id": terminal_id, "transaction_id": transaction_id}),
            (limits, {"kind_0": "card", "id_0": world.card_id, "kind_1": "org_unit", "id_1": world.root_unit_id}),
            (controls, {"kind_0": "card", "id_0": world.card_id, "kind_1": "org_unit", "id_1": world.root_unit_id}),
        ]
        for statement, params in cases:
            fast = [tuple(row) for row in await fastpath.execute(session, statement, params)]
            plain = [tuple(row) for row in await session.execute(statement, params)]
            assert fast == plain
            # Same Python types, column by column (e.g. a NUMERIC latitude is a float in both).
            assert [[type(value) for value in row] for row in fast] == [[type(value) for value in row] for row in plain]
        station = (await fastpath.execute(session, _LOAD_STATION, cases[0][1])).one()
        assert isinstance(station.latitude, float)
        assert (await fastpath.execute(session, _LOAD_CARD, {"dpan_hash": b"\x00" * 32})).first() is None


async def test_writes_belong_to_the_session_transaction(state, http, clock):
    world, _ = await _approved_sale(state, http, clock)
    with pytest.raises(RuntimeError):
        async with unit_of_work(state.sessionmaker) as session:
            changed = await fastpath.execute(session, _STORE_CARD_STATE, {"row_id": world.card_id, "state": {"v": 99}})
            assert changed.rowcount == 1
            seen = (await session.execute(select(Card.fraud_state).where(Card.id == world.card_id))).scalar_one()
            assert seen == {"v": 99}  # the same transaction sees it
            raise RuntimeError("roll back")
    async with unit_of_work(state.sessionmaker) as session:
        kept = (await session.execute(select(Card.fraud_state).where(Card.id == world.card_id))).scalar_one()
    assert kept != {"v": 99}  # rolled back with the session


async def test_a_lost_connection_is_reported_as_sqlalchemy_does(state, http, clock, database_url):
    world, _ = await _approved_sale(state, http, clock)
    if not database_url.startswith("postgresql"):
        # SQLite has no asyncpg connection to lose: the statements go through SQLAlchemy itself.
        async with unit_of_work(state.sessionmaker) as session:
            result = await fastpath.execute(session, _STORE_CARD_STATE, {"row_id": world.card_id, "state": {"v": 1}})
        assert isinstance(result, CursorResult) and result.rowcount == 1
        return
    with pytest.raises(DBAPIError) as raised:
        async with unit_of_work(state.sessionmaker) as session:
            pid = (await session.execute(select(func.pg_backend_pid()))).scalar_one()
            async with unit_of_work(state.sessionmaker) as killer:
                await killer.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            await fastpath.execute(session, _STORE_CARD_STATE, {"row_id": world.card_id, "state": {"v": 1}})
    assert raised.value.connection_invalidated
    # The pool replaced the dead connection: the next sale goes through.
    reply = await world.terminal(http, clock).authorize(**authorization_message(world.phone, clock()))
    assert reply.status_code == 200 and reply.body["approved"], reply.body
