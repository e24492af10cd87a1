"""The reconciliation report: the register's totals equal the ledger's movements on the company's
accounts for the day, per account and entry kind and entry by entry; and when something is wrong
(an event lost, an amount changed, money moved with no event) it says so and names the entry."""

from __future__ import annotations

from sqlalchemy import delete, select, update

from processing.accounting.reconciliation import reconcile
from processing.db.engine import unit_of_work
from processing.ledger.models import Account, EntryKind
from processing.ledger.service import find_ledger_problems, post_entry
from processing.outbox.models import OutboxEvent
from tests.processing.accounting.day import DAY, DAY_END, DAY_START, busy_day


async def report_of(state, company_id: int, day=DAY):
    async with unit_of_work(state.readonly_sessionmaker) as session:
        return await reconcile(session, company_id=company_id, local_date=day)


async def test_a_busy_day_is_balanced_and_the_report_shows_both_sides(state, http, clock):
    day = await busy_day(state, http, clock)

    report = await report_of(state, day.world.company_id)

    assert report.balanced, report.as_json()
    assert report.differences == [] and report.entry_differences == []
    expected = {
        "available": {"top_up": 1_000_000, "top_up_refund": 0, "hold": -600_000, "capture": 7_000 + 100_000, "release": 250_000},
        "held": {"top_up": 0, "top_up_refund": 0, "hold": 600_000, "capture": -700_000, "release": -250_000},
    }
    assert report.ledger_movements == expected
    assert report.register_movements == expected
    assert report.opening_balances == {"available": 1_600_000, "held": 400_000}
    assert report.closing_balances == {"available": 2_357_000, "held": 50_000}
    for account in ("available", "held"):
        assert report.closing_balances[account] - report.opening_balances[account] == sum(
            report.ledger_movements[account].values())
    assert report.register_totals["capture"]["amount_minor"] == 593_000
    document = report.as_json()
    assert document["balanced"] is True
    assert (document["window_start"], document["window_end"]) == (DAY_START.isoformat(), DAY_END.isoformat())


async def test_every_day_of_every_company_is_balanced(state, http, clock):
    day = await busy_day(state, http, clock)

    for company_id in (day.world.company_id, day.other.company_id):
        for local_date in (DAY.replace(day=3), DAY, DAY.replace(day=5), DAY.replace(day=6)):
            report = await report_of(state, company_id, local_date)
            assert report.balanced, (company_id, local_date, report.as_json())
    async with unit_of_work(state.readonly_sessionmaker) as session:
        assert await find_ledger_problems(session) == []
        available = await session.scalar(
            select(Account.balance_minor).where(Account.id == day.world.available_account_id))
    # The day after the last day with movements closes at the account's balance.
    assert (await report_of(state, day.world.company_id, DAY.replace(day=6))).closing_balances["available"] == available


async def test_a_lost_event_is_found_and_named(state, http, clock):
    day = await busy_day(state, http, clock)
    sale = day.authorizations["sale"]
    async with unit_of_work(state.sessionmaker) as session:
        lost = (await session.execute(select(OutboxEvent).where(OutboxEvent.event_type == "authorization.completed")
                                      .order_by(OutboxEvent.id))).scalars().all()
        lost = next(event for event in lost if event.payload["authorization_id"] == sale)
        entry_id = lost.payload["journal_entry_id"]
        await session.execute(delete(OutboxEvent).where(OutboxEvent.id == lost.id))

    report = await report_of(state, day.world.company_id)

    assert not report.balanced
    [entry] = report.entry_differences
    assert (entry.journal_entry_id, entry.problem, entry.kind) == (entry_id, "not_in_register", "capture")
    assert entry.ledger == {"available": 100_000, "held": -300_000}
    assert {(d.account, d.kind, d.difference_minor) for d in report.differences} == {
        ("available", "capture", 100_000), ("held", "capture", -300_000)}
    assert report.as_json()["balanced"] is False


async def test_an_event_with_a_wrong_amount_is_found(state, http, clock):
    day = await busy_day(state, http, clock)
    async with unit_of_work(state.sessionmaker) as session:
        event = (await session.execute(select(OutboxEvent).where(OutboxEvent.event_type == "account.top_up_credited",
                                                                 OutboxEvent.company_id == day.world.company_id,
                                                                 OutboxEvent.occurred_at >= DAY_START,
                                                                 OutboxEvent.occurred_at < DAY_END))).scalar_one()
        await session.execute(update(OutboxEvent).where(OutboxEvent.id == event.id)
                              .values(payload={**event.payload, "amount_minor": 999_999}))

    report = await report_of(state, day.world.company_id)

    assert [(entry.problem, entry.journal_entry_id, entry.event_ids) for entry in report.entry_differences] == [
        ("amounts_differ", event.payload["journal_entry_id"], [event.event_id])]
    assert [difference.as_dict() for difference in report.differences] == [
        {"account": "available", "kind": "top_up", "register_minor": 999_999, "ledger_minor": 1_000_000,
         "difference_minor": 1}]


async def test_money_moved_without_an_event_is_found(state, http, clock):
    """A journal entry posted by hand (no service, no event): the register does not know it."""
    day = await busy_day(state, http, clock)
    async with unit_of_work(state.sessionmaker) as session:
        entry_id = await post_entry(
            session, kind=EntryKind.RELEASE, company_id=day.world.company_id, description="manual adjustment",
            lines=[(day.world.held_account_id, -5_000), (day.world.available_account_id, 5_000)],
            now=DAY_START.replace(hour=23),
        )

    report = await report_of(state, day.world.company_id)

    assert [(entry.journal_entry_id, entry.problem) for entry in report.entry_differences] == [
        (entry_id, "not_in_register")]
    assert not report.balanced


async def test_an_event_whose_entry_is_on_another_day_is_found(state, http, clock):
    day = await busy_day(state, http, clock)
    async with unit_of_work(state.sessionmaker) as session:
        event = (await session.execute(select(OutboxEvent).where(OutboxEvent.event_type == "account.top_up_credited",
                                                                 OutboxEvent.company_id == day.world.company_id)
                                       .order_by(OutboxEvent.id).limit(1))).scalar_one()  # the day before
        await session.execute(update(OutboxEvent).where(OutboxEvent.id == event.id)
                              .values(occurred_at=DAY_START.replace(hour=22)))

    report = await report_of(state, day.world.company_id)

    assert [(entry.problem, entry.journal_entry_id) for entry in report.entry_differences] == [
        ("not_in_ledger", event.payload["journal_entry_id"])]
    assert (await report_of(state, day.world.company_id, DAY.replace(day=3))).entry_differences[0].problem == (
        "not_in_register")
