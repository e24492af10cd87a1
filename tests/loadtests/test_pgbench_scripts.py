"""The pgbench scripts execute the statements of one real authorization and one real completion.

The harness compares the server's throughput with pgbench running these scripts, so they must
stay what the hot path executes: when the hot path changes, this test fails and shows both
sequences; update loadtests/pgbench/*.sql to match (docs/loadtests.md)."""

from __future__ import annotations

import os
import subprocess

import pytest
from sqlalchemy import event, func, select

from loadtests.bench.databases import id_ranges
from loadtests.bench.pgbench_runner import libpq_environment, parse_pgbench_output, pgbench_command
from loadtests.bench.pgbench_scripts import (
    AUTHORIZATION_SCRIPT,
    COMPLETION_SCRIPT,
    script_shapes,
    statement_shape,
)
from processing.authorization.models import Authorization, Completion
from processing.cards.service import enroll_device, issue_card
from processing.db import fastpath
from processing.db.engine import unit_of_work
from processing.limits.models import LimitMetric, LimitPeriod, ScopeKind
from processing.limits.service import set_limit
from processing.orgs.service import create_org_unit
from tests.factories import Phone, authorization_message, make_world

pytestmark = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)


class StatementLog:
    """Every statement execution on the engine: an executemany counts once per parameter set,
    as the driver runs it (asyncpg executes the prepared statement for each)."""

    def __init__(self, engine) -> None:
        self.shapes: list[tuple[str, str | None]] = []
        event.listen(engine.sync_engine, "before_cursor_execute", self._record)
        # The hot path's SELECTs and UPDATEs run on asyncpg directly (processing/db/fastpath.py).
        fastpath.observers.append(self._record_fast)

    def _record_fast(self, statement: str, executions: int) -> None:
        self.shapes.extend([statement_shape(statement)] * executions)

    def close(self) -> None:
        fastpath.observers.remove(self._record_fast)

    def _record(self, conn, cursor, statement, parameters, context, executemany) -> None:
        # A multi-row INSERT that SQLAlchemy batched ("insertmanyvalues") is one statement.
        batched = context is not None and context.execute_style.name == "INSERTMANYVALUES"
        times = len(parameters) if executemany and not batched else 1
        self.shapes.extend([statement_shape(statement)] * times)

    def take(self) -> list[tuple[str, str | None]]:
        taken, self.shapes = self.shapes, []
        return taken


def _side_by_side(app: list, script: list) -> str:
    rows = [f"{'app':<40} script"]
    for index in range(max(len(app), len(script))):
        left = " ".join(map(str, app[index])) if index < len(app) else "-"
        right = " ".join(map(str, script[index])) if index < len(script) else "-"
        rows.append(f"{left:<40} {right}{'' if left == right else '   <-- differs'}")
    return "\n".join(rows)


async def _depot_card(state, world) -> Phone:
    """A card as loadtests/seed.py lays them out: in a depot under the company's root unit, with a
    day amount limit that does not bind, no vehicle."""
    async with unit_of_work(state.sessionmaker) as session:
        depot = await create_org_unit(session, company_id=world.company_id, parent_id=world.root_unit_id,
                                      name="Kazan depot 1")
        issued = await issue_card(session, state.keyring, company_id=world.company_id, org_unit_id=depot.id,
                                  pan_prefix=state.settings.pan_prefix)
        await set_limit(session, scope_kind=ScopeKind.CARD, scope_id=issued.card.id, metric=LimitMetric.AMOUNT,
                        period=LimitPeriod.DAY, max_value=100_000_000)
        enrolled = await enroll_device(session, state.keyring, card_id=issued.card.id,
                                       dpan_prefix=state.settings.dpan_prefix)
    return Phone(enrolled.dpan, enrolled.device_key, enrolled.enrollment.id)


async def _sale(terminal, phone, clock, amount_minor: int) -> str:
    message = authorization_message(phone, clock(), amount_minor=amount_minor)
    answer = await terminal.authorize(**message)
    assert answer.status_code == 200 and answer.body["response_code"] == "00", answer.body
    return message["terminal_transaction_id"]


async def test_scripts_mirror_one_authorization_and_one_completion(state, http, clock):
    world = await make_world(state, tank_capacity_ml=None, balance_minor=10_000_000)
    phone = await _depot_card(state, world)
    terminal = world.terminal(http, clock)
    # A first sale loads what the app caches outside the transaction (terminal key, rule set).
    first = await _sale(terminal, phone, clock, 300_000)
    await terminal.complete(first, amount_minor=250_000, volume_ml=38_167, product="diesel")
    # A later sale, as in the bench: the card's and the terminal's fraud states both change.
    clock.advance(120)
    log = StatementLog(state.engine)
    try:
        transaction_id = await _sale(terminal, phone, clock, 300_000)
        authorization = log.take()
        done = await terminal.complete(transaction_id, amount_minor=250_538, volume_ml=38_250, product="diesel")
        assert done.status_code == 200 and done.body["status"] == "completed", done.body
        completion = log.take()
    finally:
        log.close()

    assert authorization == script_shapes(AUTHORIZATION_SCRIPT), _side_by_side(
        authorization, script_shapes(AUTHORIZATION_SCRIPT))
    assert completion == script_shapes(COMPLETION_SCRIPT), _side_by_side(
        completion, script_shapes(COMPLETION_SCRIPT))


async def test_pgbench_runs_the_scripts_without_errors(state, http, clock, database_url):
    world = await make_world(state, tank_capacity_ml=None, balance_minor=10_000_000)
    phones = [await _depot_card(state, world) for _ in range(3)]
    # The scripts draw depot cards, as seeded; make_world's own card sits at the root unit.
    variables = (await id_ranges(database_url)).pgbench_variables() | {"enrollment_min": phones[0].enrollment_id}
    async with state.sessionmaker() as session:
        before = await session.scalar(select(func.count()).select_from(Completion))
    command = pgbench_command(clients=2, transactions=20, variables={"run": 1, **variables})
    completed = subprocess.run(command, env=os.environ | libpq_environment(database_url),
                               capture_output=True, text=True, timeout=60)
    result = parse_pgbench_output(completed.stdout, completed.stderr, exit_code=completed.returncode,
                                  clients=2, duration_seconds=0)
    assert result.ok, completed.stdout + completed.stderr
    assert result.transactions == 40
    async with state.sessionmaker() as session:
        holds = await session.scalar(select(func.count()).select_from(Authorization))
        completions = await session.scalar(select(func.count()).select_from(Completion)) - before
    # Every completion closed one of the holds the authorization script made, never one twice.
    assert holds > 0 and 0 < completions <= holds
