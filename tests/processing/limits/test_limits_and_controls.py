"""Card controls on the terminal path: amount, volume and count limits per transaction and per
period, on the card and on its org units; the vehicle's tank; allowed products, stations,
networks, regions, weekdays and hours (company time); the credit line; what a release or a
completion below the hold gives back to the counters."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from processing.cards.service import enroll_device, issue_card
from processing.db.engine import unit_of_work
from processing.ledger.models import Account
from processing.ledger.service import find_ledger_problems
from processing.limits.models import LimitCounter, LimitMetric, LimitPeriod, ScopeKind
from processing.limits.service import InvalidLimit, set_controls, set_limit
from processing.orgs.service import create_org_unit
from processing.products import Product
from tests.factories import DIESEL_PRICE_MINOR, Phone, authorization_message, make_world

PRICE = DIESEL_PRICE_MINOR  # 65.50 RUB per litre
CARD, UNIT = ScopeKind.CARD, ScopeKind.ORG_UNIT
AMOUNT, VOLUME, COUNT = LimitMetric.AMOUNT, LimitMetric.VOLUME, LimitMetric.COUNT
TRANSACTION, DAY, WEEK = LimitPeriod.TRANSACTION, LimitPeriod.DAY, LimitPeriod.WEEK


async def limit(state, scope_kind, scope_id, metric, period, max_value) -> None:
    async with unit_of_work(state.sessionmaker) as session:
        await set_limit(session, scope_kind=scope_kind, scope_id=scope_id, metric=metric, period=period,
                        max_value=max_value)


async def controls(state, scope_kind, scope_id, **allowed) -> None:
    async with unit_of_work(state.sessionmaker) as session:
        await set_controls(session, scope_kind=scope_kind, scope_id=scope_id, **allowed)


async def authorize(terminal, phone, clock, amount_minor: int, **extra) -> dict:
    reply = await terminal.authorize(**authorization_message(phone, clock(), amount_minor=amount_minor, **extra))
    assert reply.status_code == 200, reply.body
    return reply.body


def assert_approved(body: dict, amount_minor: int, code: str = "00") -> None:
    assert (body["approved"], body["response_code"], body["approved_amount_minor"]) == (True, code, amount_minor), body


def assert_declined(body: dict, code: str, decline_reason: str) -> None:
    assert (body["approved"], body["response_code"], body["decline_reason"]) == (False, code, decline_reason), body
    assert body["approved_amount_minor"] == 0 and body["reason"]


async def counter(state, scope_kind, scope_id, period=DAY) -> tuple[int, int, int]:
    """(amount, volume, count) the scope's counter holds for ``period``."""
    async with unit_of_work(state.sessionmaker) as session:
        row = (await session.execute(
            select(LimitCounter.amount_minor, LimitCounter.volume_ml, LimitCounter.count)
            .where(LimitCounter.scope_kind == scope_kind, LimitCounter.scope_id == scope_id,
                   LimitCounter.period == period)
        )).one()
    return tuple(row)


async def money(state, world) -> dict:
    """Balances and counters of the world: what a decline must leave as it was. (A decline may
    create a counter row at zero: the row is where the next approval counts, and counts nothing.)"""
    async with unit_of_work(state.sessionmaker) as session:
        accounts = (await session.execute(
            select(Account.id, Account.balance_minor)
            .where(Account.id.in_([world.available_account_id, world.held_account_id]))
            .order_by(Account.id)
        )).all()
        counters = (await session.execute(
            select(LimitCounter.scope_kind, LimitCounter.scope_id, LimitCounter.period,
                   LimitCounter.period_start, LimitCounter.amount_minor, LimitCounter.volume_ml,
                   LimitCounter.count).order_by(LimitCounter.id)
        )).all()
        assert await find_ledger_problems(session) == []
    return {"accounts": [tuple(row) for row in accounts],
            "counters": [tuple(row) for row in counters if (row.amount_minor, row.volume_ml, row.count) != (0, 0, 0)]}


async def available(state, world) -> int:
    async with unit_of_work(state.sessionmaker) as session:
        return await session.scalar(select(Account.balance_minor).where(Account.id == world.available_account_id))


def litres_for(amount_minor: int) -> int:
    return amount_minor * 1000 // PRICE


# --- amount, volume and count limits -----------------------------------------------------------

async def test_per_transaction_amount_limit_declines_or_approves_partially(state, http, clock):
    world = await make_world(state)
    terminal = world.terminal(http, clock)
    await limit(state, CARD, world.card_id, AMOUNT, TRANSACTION, 100_000)

    before = await money(state, world)
    assert_declined(await authorize(terminal, world.phone, clock, 150_000), "61", "amount_limit_exceeded")
    assert await money(state, world) == before

    partial = await authorize(terminal, world.phone, clock, 150_000, partial_approval_allowed=True)
    assert_approved(partial, 100_000, code="10")
    assert partial["requested_amount_minor"] == 150_000
    assert partial["hold_volume_ml"] == litres_for(100_000)
    # A per-transaction limit is not a daily one: the next purchase may again reach it.
    assert_approved(await authorize(terminal, world.phone, clock, 100_000), 100_000)
    assert await available(state, world) == 1_000_000 - 200_000


async def test_daily_amount_limit_counts_across_authorizations_and_is_given_back_on_reversal(state, http, clock):
    world = await make_world(state)
    terminal = world.terminal(http, clock)
    await limit(state, CARD, world.card_id, AMOUNT, DAY, 200_000)

    first = authorization_message(world.phone, clock(), amount_minor=150_000)
    assert_approved((await terminal.authorize(**first)).body, 150_000)
    assert_declined(await authorize(terminal, world.phone, clock, 100_000), "61", "amount_limit_exceeded")
    assert_approved(await authorize(terminal, world.phone, clock, 50_000), 50_000)  # exactly what is left
    assert_declined(await authorize(terminal, world.phone, clock, 1), "61", "amount_limit_exceeded")
    assert await counter(state, CARD, world.card_id) == (200_000, litres_for(150_000) + litres_for(50_000), 2)

    reversal = await terminal.reverse(first["terminal_transaction_id"])
    assert (reversal.status_code, reversal.body["status"]) == (200, "reversed")
    assert await counter(state, CARD, world.card_id) == (50_000, litres_for(50_000), 1)
    assert_approved(await authorize(terminal, world.phone, clock, 150_000), 150_000)
    assert_declined(await authorize(terminal, world.phone, clock, 1), "61", "amount_limit_exceeded")


async def test_volume_limit_converts_through_the_posted_price(state, http, clock):
    world = await make_world(state)
    terminal = world.terminal(http, clock)
    await limit(state, CARD, world.card_id, VOLUME, DAY, 30_000)  # 30 litres a day

    # 3 000 RUB of diesel at 65.50 RUB/l is 45.8 litres.
    assert_declined(await authorize(terminal, world.phone, clock, 300_000), "61", "volume_limit_exceeded")
    partial = await authorize(terminal, world.phone, clock, 300_000, partial_approval_allowed=True)
    assert_approved(partial, 30_000 * PRICE // 1000, code="10")  # 1 965.00 RUB
    assert partial["hold_volume_ml"] == 30_000
    assert await counter(state, CARD, world.card_id) == (196_500, 30_000, 1)
    assert_declined(await authorize(terminal, world.phone, clock, 100), "61", "volume_limit_exceeded")


async def test_volume_limit_does_not_apply_to_products_not_sold_by_volume(state, http, clock):
    world = await make_world(state, tank_capacity_ml=None)  # no vehicle, so no fuel-type restriction
    terminal = world.terminal(http, clock)
    await limit(state, CARD, world.card_id, VOLUME, DAY, 1_000)
    assert_approved(await authorize(terminal, world.phone, clock, 50_000, product="car_wash"), 50_000)
    assert_declined(await authorize(terminal, world.phone, clock, 50_000, product="ai95"), "61", "volume_limit_exceeded")


async def test_count_limit_declines_with_65_and_a_release_gives_the_count_back(state, http, clock):
    world = await make_world(state)
    terminal = world.terminal(http, clock)
    await limit(state, CARD, world.card_id, COUNT, DAY, 2)

    first = authorization_message(world.phone, clock(), amount_minor=10_000)
    assert_approved((await terminal.authorize(**first)).body, 10_000)
    assert_approved(await authorize(terminal, world.phone, clock, 10_000), 10_000)
    before = await money(state, world)
    # Partial approval cannot help a count limit.
    assert_declined(await authorize(terminal, world.phone, clock, 10_000, partial_approval_allowed=True),
                    "65", "frequency_limit_exceeded")
    assert await money(state, world) == before

    assert (await terminal.reverse(first["terminal_transaction_id"])).body["status"] == "reversed"
    assert (await counter(state, CARD, world.card_id))[2] == 1
    assert_approved(await authorize(terminal, world.phone, clock, 10_000), 10_000)


async def test_a_limit_on_the_root_unit_binds_every_card_below_it(state, http, clock):
    world = await make_world(state)
    terminal = world.terminal(http, clock)
    async with unit_of_work(state.sessionmaker) as session:
        depot = await create_org_unit(session, company_id=world.company_id, parent_id=world.root_unit_id,
                                      name="Depot North")
        issued = await issue_card(session, state.keyring, company_id=world.company_id, org_unit_id=depot.id,
                                  pan_prefix=state.settings.pan_prefix)
        enrolled = await enroll_device(session, state.keyring, card_id=issued.card.id,
                                       dpan_prefix=state.settings.dpan_prefix)
    depot_phone = Phone(enrolled.dpan, enrolled.device_key, enrolled.enrollment.id)
    await limit(state, UNIT, world.root_unit_id, AMOUNT, DAY, 100_000)

    body = await authorize(terminal, world.phone, clock, 150_000)
    assert_declined(body, "61", "amount_limit_exceeded")
    assert f"org unit {world.root_unit_id}" in body["reason"]
    assert_approved(await authorize(terminal, depot_phone, clock, 60_000), 60_000)
    # The root's counter is shared: the company's other card has 40 000 kopecks left today.
    assert_declined(await authorize(terminal, world.phone, clock, 60_000), "61", "amount_limit_exceeded")
    assert_approved(await authorize(terminal, world.phone, clock, 40_000), 40_000)
    assert await counter(state, UNIT, world.root_unit_id) == (100_000, litres_for(60_000) + litres_for(40_000), 2)
    assert await counter(state, UNIT, depot.id) == (60_000, litres_for(60_000), 1)


async def test_tank_capacity_caps_the_hold(state, http, clock):
    world = await make_world(state, tank_capacity_ml=60_000)
    terminal = world.terminal(http, clock)
    tank_minor = 60_000 * PRICE // 1000  # 3 930.00 RUB fills the tank

    assert_declined(await authorize(terminal, world.phone, clock, 400_000), "61", "tank_capacity_exceeded")
    partial = await authorize(terminal, world.phone, clock, 400_000, partial_approval_allowed=True)
    assert_approved(partial, tank_minor, code="10")
    assert partial["hold_volume_ml"] == 60_000
    assert_approved(await authorize(terminal, world.phone, clock, tank_minor), tank_minor)


async def test_vehicle_fuel_type_does_not_forbid_a_car_wash_or_shop_goods(state, http, clock):
    """A diesel truck runs on diesel, but its driver may still wash it: the vehicle's products
    restrict fuels only; car wash and shop goods are controlled by allowed_products."""
    world = await make_world(state)  # the vehicle runs on diesel only
    terminal = world.terminal(http, clock)
    assert_declined(await authorize(terminal, world.phone, clock, 50_000, product="ai95"), "57", "product_not_allowed")
    assert_approved(await authorize(terminal, world.phone, clock, 50_000, product="car_wash"), 50_000)


# --- spending controls -------------------------------------------------------------------------

async def test_allowed_products_on_the_card_and_on_its_unit(state, http, clock):
    world = await make_world(state, tank_capacity_ml=None)
    terminal = world.terminal(http, clock)
    await controls(state, CARD, world.card_id, allowed_products=[Product.AI95])

    before = await money(state, world)
    body = await authorize(terminal, world.phone, clock, 50_000, product="diesel")
    assert_declined(body, "57", "product_not_allowed")
    assert await money(state, world) == before
    assert_approved(await authorize(terminal, world.phone, clock, 50_000, product="ai95"), 50_000)

    # The card allows both, the company's root unit only diesel: both must allow it.
    await controls(state, CARD, world.card_id, allowed_products=[Product.AI95, Product.DIESEL])
    await controls(state, UNIT, world.root_unit_id, allowed_products=[Product.DIESEL])
    assert_declined(await authorize(terminal, world.phone, clock, 50_000, product="ai95"), "57", "product_not_allowed")
    assert_approved(await authorize(terminal, world.phone, clock, 50_000, product="diesel"), 50_000)


@pytest.mark.parametrize(("allowed", "decline_reason"), [
    ("stations", "station_not_allowed"),
    ("networks", "station_not_allowed"),
    ("regions", "region_not_allowed"),
])
async def test_allowed_stations_networks_and_regions(state, http, clock, allowed, decline_reason):
    world = await make_world(state)
    terminal = world.terminal(http, clock)
    elsewhere, here = {
        "stations": ({"allowed_station_ids": [world.station_id + 10_000]}, {"allowed_station_ids": [world.station_id]}),
        "networks": ({"allowed_network_ids": [world.network_id + 10_000]}, {"allowed_network_ids": [world.network_id]}),
        "regions": ({"allowed_regions": ["RU-SPE"]}, {"allowed_regions": ["RU-SPE", "RU-MOW"]}),
    }[allowed]
    await controls(state, CARD, world.card_id, **elsewhere)
    assert_declined(await authorize(terminal, world.phone, clock, 50_000), "57", decline_reason)
    await controls(state, CARD, world.card_id, **here)
    assert_approved(await authorize(terminal, world.phone, clock, 50_000), 50_000)
    # The same restriction on the root unit binds the card too.
    await controls(state, UNIT, world.root_unit_id, **elsewhere)
    assert_declined(await authorize(terminal, world.phone, clock, 50_000), "57", decline_reason)


async def test_allowed_weekdays_are_the_companys_local_days(state, http, clock):
    world = await make_world(state)  # the company is in Europe/Moscow (UTC+3)
    terminal = world.terminal(http, clock)
    # Wednesday 22:30 UTC is already Thursday 01:30 in Moscow.
    clock.now = datetime(2025, 6, 4, 22, 30, tzinfo=UTC)
    await controls(state, CARD, world.card_id, allowed_weekdays=[3])  # Wednesday only
    assert_declined(await authorize(terminal, world.phone, clock, 10_000), "57", "day_not_allowed")
    await controls(state, CARD, world.card_id, allowed_weekdays=[4, 5])  # Thursday, Friday
    assert_approved(await authorize(terminal, world.phone, clock, 10_000), 10_000)


@pytest.mark.parametrize(("window", "moscow_time", "allowed"), [
    # A window that crosses midnight: 22:00-06:00.
    ((22 * 60, 6 * 60), (1, 30), True),
    ((22 * 60, 6 * 60), (22, 0), True),
    ((22 * 60, 6 * 60), (21, 59), False),
    ((22 * 60, 6 * 60), (5, 59), True),
    ((22 * 60, 6 * 60), (6, 0), False),
    ((22 * 60, 6 * 60), (12, 0), False),
    # A daytime window: 08:00-20:00, the end not included.
    ((8 * 60, 20 * 60), (7, 59), False),
    ((8 * 60, 20 * 60), (8, 0), True),
    ((8 * 60, 20 * 60), (19, 59), True),
    ((8 * 60, 20 * 60), (20, 0), False),
    # 00:00-24:00 is the whole day.
    ((0, 24 * 60), (23, 59), True),
])
async def test_allowed_hours_are_the_companys_local_hours(state, http, clock, window, moscow_time, allowed):
    world = await make_world(state)
    terminal = world.terminal(http, clock)
    hour, minute = moscow_time
    clock.now = datetime(2025, 6, 5, (hour - 3) % 24, minute, 30, tzinfo=UTC)  # Moscow is UTC+3
    await controls(state, CARD, world.card_id, allowed_hours=[window])
    body = await authorize(terminal, world.phone, clock, 10_000)
    if allowed:
        assert_approved(body, 10_000)
    else:
        assert_declined(body, "57", "time_not_allowed")


@pytest.mark.parametrize(("moscow_hour", "allowed"), [(9, True), (13, False), (15, True), (19, False)])
async def test_several_hour_windows_allow_each_window_and_nothing_between(state, http, clock, moscow_hour, allowed):
    world = await make_world(state)
    terminal = world.terminal(http, clock)
    clock.now = datetime(2025, 6, 5, moscow_hour - 3, 0, 30, tzinfo=UTC)
    await controls(state, CARD, world.card_id, allowed_hours=[(14 * 60, 18 * 60), (8 * 60, 12 * 60)])
    body = await authorize(terminal, world.phone, clock, 10_000)
    if allowed:
        assert_approved(body, 10_000)
    else:
        assert_declined(body, "57", "time_not_allowed")
        assert "08:00-12:00, 14:00-18:00" in body["reason"]


async def test_controls_refuse_nonsense():
    with pytest.raises(InvalidLimit):
        await set_controls(None, scope_kind=CARD, scope_id=1, allowed_hours=[(60,)])
    with pytest.raises(InvalidLimit):
        await set_controls(None, scope_kind=CARD, scope_id=1, allowed_hours=[])
    for overlapping in ([(480, 720), (700, 900)], [(1320, 120), (60, 300)], [(0, 1440), (600, 660)]):
        with pytest.raises(InvalidLimit, match="overlaps"):
            await set_controls(None, scope_kind=CARD, scope_id=1, allowed_hours=overlapping)
    with pytest.raises(InvalidLimit):
        await set_controls(None, scope_kind=CARD, scope_id=1, allowed_weekdays=[0])
    for empty_window in ((480, 480), (0, 0), (1440, 0)):  # would block the card all day
        with pytest.raises(InvalidLimit):
            await set_controls(None, scope_kind=CARD, scope_id=1, allowed_hours=[empty_window])
    with pytest.raises(InvalidLimit):
        await set_limit(None, scope_kind=CARD, scope_id=1, metric=COUNT, period=TRANSACTION, max_value=3)
    with pytest.raises(InvalidLimit):
        await set_limit(None, scope_kind=CARD, scope_id=1, metric=AMOUNT, period=DAY, max_value=-1)


# --- the credit line -------------------------------------------------------------------------

async def test_credit_limit_lets_the_balance_go_negative_down_to_the_limit_and_no_further(state, http, clock):
    world = await make_world(state, balance_minor=100_000, credit_limit_minor=50_000, tank_capacity_ml=None)
    terminal = world.terminal(http, clock)
    assert_declined(await authorize(terminal, world.phone, clock, 150_001), "51", "insufficient_funds")
    assert_approved(await authorize(terminal, world.phone, clock, 150_000), 150_000)
    assert await available(state, world) == -50_000
    before = await money(state, world)
    assert_declined(await authorize(terminal, world.phone, clock, 1), "51", "insufficient_funds")
    assert_declined(await authorize(terminal, world.phone, clock, 1, partial_approval_allowed=True),
                    "51", "insufficient_funds")
    assert await money(state, world) == before


async def test_partial_approval_up_to_the_credit_line(state, http, clock):
    world = await make_world(state, balance_minor=100_000, credit_limit_minor=50_000, tank_capacity_ml=None)
    terminal = world.terminal(http, clock)
    assert_approved(await authorize(terminal, world.phone, clock, 200_000, partial_approval_allowed=True),
                    150_000, code="10")
    assert await available(state, world) == -50_000


# --- periods and give-backs -------------------------------------------------------------------

async def test_a_new_day_resets_the_daily_counter_and_an_old_hold_does_not_touch_it(state, http, clock):
    world = await make_world(state)
    terminal = world.terminal(http, clock)
    clock.now = datetime(2025, 6, 4, 9, 0, tzinfo=UTC)  # Wednesday noon in Moscow
    await limit(state, CARD, world.card_id, AMOUNT, DAY, 100_000)
    await limit(state, CARD, world.card_id, AMOUNT, WEEK, 1_000_000)

    yesterday = authorization_message(world.phone, clock(), amount_minor=100_000)
    assert_approved((await terminal.authorize(**yesterday)).body, 100_000)
    assert_declined(await authorize(terminal, world.phone, clock, 1), "61", "amount_limit_exceeded")

    clock.advance(24 * 3600)
    assert_approved(await authorize(terminal, world.phone, clock, 100_000), 100_000)
    assert await counter(state, CARD, world.card_id) == (100_000, litres_for(100_000), 1)
    assert await counter(state, CARD, world.card_id, WEEK) == (200_000, 2 * litres_for(100_000), 2)

    # Releasing yesterday's hold gives nothing back to today's counter, but the week counted it.
    reversal = await terminal.reverse(yesterday["terminal_transaction_id"])
    assert (reversal.status_code, reversal.body["released_amount_minor"]) == (200, 100_000)
    assert await counter(state, CARD, world.card_id) == (100_000, litres_for(100_000), 1)
    assert await counter(state, CARD, world.card_id, WEEK) == (100_000, litres_for(100_000), 1)
    assert_declined(await authorize(terminal, world.phone, clock, 1), "61", "amount_limit_exceeded")


async def test_a_weekly_limit_spans_days(state, http, clock):
    world = await make_world(state)
    terminal = world.terminal(http, clock)
    clock.now = datetime(2025, 6, 2, 9, 0, tzinfo=UTC)  # Monday in Moscow
    await limit(state, CARD, world.card_id, AMOUNT, WEEK, 150_000)
    assert_approved(await authorize(terminal, world.phone, clock, 100_000), 100_000)
    clock.advance(2 * 24 * 3600)  # Wednesday, same week
    assert_declined(await authorize(terminal, world.phone, clock, 100_000), "61", "amount_limit_exceeded")
    assert_approved(await authorize(terminal, world.phone, clock, 50_000), 50_000)
    clock.advance(5 * 24 * 3600)  # Monday of the next week
    assert_approved(await authorize(terminal, world.phone, clock, 150_000), 150_000)


async def test_completion_below_the_hold_gives_the_difference_back_to_the_counters(state, http, clock):
    world = await make_world(state)
    terminal = world.terminal(http, clock)
    await limit(state, CARD, world.card_id, AMOUNT, DAY, 200_000)
    await limit(state, UNIT, world.root_unit_id, VOLUME, DAY, 40_000)

    message = authorization_message(world.phone, clock(), amount_minor=150_000)
    assert_approved((await terminal.authorize(**message)).body, 150_000)
    hold_volume = litres_for(150_000)
    assert await counter(state, CARD, world.card_id) == (150_000, hold_volume, 1)

    done = await terminal.complete(message["terminal_transaction_id"], amount_minor=98_250, volume_ml=15_000,
                                   product="diesel")
    assert done.status_code == 200, done.body
    assert done.body["released_amount_minor"] == 150_000 - 98_250
    for scope_kind, scope_id in ((CARD, world.card_id), (UNIT, world.root_unit_id)):
        assert await counter(state, scope_kind, scope_id) == (98_250, 15_000, 1)
    assert await available(state, world) == 1_000_000 - 98_250

    # Exactly what is left of the daily amount: 1 017.50 RUB (15.53 l, inside the 25 l left).
    assert_approved(await authorize(terminal, world.phone, clock, 101_750), 101_750)
    assert_declined(await authorize(terminal, world.phone, clock, 1), "61", "amount_limit_exceeded")


async def test_the_day_turns_at_the_companys_midnight_not_at_utc_midnight(state, http, clock):
    world = await make_world(state)  # Europe/Moscow, UTC+3
    terminal = world.terminal(http, clock)
    await limit(state, CARD, world.card_id, AMOUNT, DAY, 100_000)

    clock.now = datetime(2025, 6, 4, 20, 59, tzinfo=UTC)  # 23:59 in Moscow
    assert_approved(await authorize(terminal, world.phone, clock, 100_000), 100_000)
    clock.advance(120)  # 00:01 in Moscow, still 4 June in UTC
    assert_approved(await authorize(terminal, world.phone, clock, 100_000), 100_000)

    clock.now = datetime(2025, 6, 5, 23, 59, tzinfo=UTC)  # 02:59 on 6 June in Moscow
    assert_approved(await authorize(terminal, world.phone, clock, 100_000), 100_000)
    clock.advance(120)  # UTC has a new date, Moscow does not
    assert_declined(await authorize(terminal, world.phone, clock, 1), "61", "amount_limit_exceeded")
