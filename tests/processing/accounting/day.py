"""A company's busy day, driven through the terminal API and the ledger, for the accounting tests.

Company-local day 2025-06-04 in Moscow (UTC+3) is 2025-06-03 21:00 to 2025-06-04 21:00 UTC.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime

from processing.authorization.lifecycle import expire_stale_holds
from processing.db.engine import unit_of_work
from processing.ledger.service import top_up
from processing.limits.models import LimitMetric, LimitPeriod, ScopeKind
from processing.limits.service import set_limit
from tests.factories import DIESEL_PRICE_MINOR, World, authorization_message, make_world

DAY = date(2025, 6, 4)
DAY_START = datetime(2025, 6, 3, 21, 0, tzinfo=UTC)
DAY_END = datetime(2025, 6, 4, 21, 0, tzinfo=UTC)


def litres_for(amount_minor: int) -> int:
    return amount_minor * 1000 // DIESEL_PRICE_MINOR


@dataclass
class BusyDay:
    world: World
    other: World
    authorizations: dict[str, int]  # name -> authorization id


async def _top_up(state, world: World, amount_minor: int, clock, reference: str) -> None:
    async with unit_of_work(state.sessionmaker) as session:
        await top_up(session, company_id=world.company_id, amount_minor=amount_minor,
                     description=f"bank transfer {reference}", reference=reference, now=clock())


async def _sweep(state, clock) -> None:
    async with unit_of_work(state.sessionmaker) as session:
        await expire_stale_holds(session, now=clock(), fraud_rules=state.fraud_rules)


async def busy_day(state, http, clock) -> BusyDay:
    """The day before: a top-up and a hold at 23:45 local. The day: the hold completed at 00:10,
    a top-up, a hold completed for less, a hold reversed, a hold that expires, a decline; a hold
    at 23:59:59 local. The day after: a top-up at 00:00 local. Another company pays all day too."""
    world = await make_world(state, balance_minor=0, tank_capacity_ml=None)
    other = await make_world(state, balance_minor=0, tank_capacity_ml=None)
    terminal, other_terminal = world.terminal(http, clock), other.terminal(http, clock)
    ids: dict[str, int] = {}

    async def hold(name: str, amount_minor: int, *, on=None, phone=None) -> str:
        message = authorization_message((phone or world.phone), clock(), amount_minor=amount_minor)
        reply = await (on or terminal).authorize(**message)
        assert reply.body["approved"] is True, reply.body
        ids[name] = reply.body["authorization_id"]
        return message["terminal_transaction_id"]

    async def complete(transaction_id: str, amount_minor: int, *, on=None) -> None:
        reply = await (on or terminal).complete(transaction_id, amount_minor=amount_minor,
                                                volume_ml=litres_for(amount_minor), product="diesel")
        assert reply.status_code == 200, reply.body

    clock.now = datetime(2025, 6, 3, 20, 0, tzinfo=UTC)  # 23:00 local, the day before
    await _top_up(state, world, 2_000_000, clock, "PP-100")
    await _top_up(state, other, 1_000_000, clock, "PP-200")
    clock.now = datetime(2025, 6, 3, 20, 45, tzinfo=UTC)  # 23:45
    overnight = await hold("overnight", 400_000)

    clock.now = datetime(2025, 6, 3, 21, 10, tzinfo=UTC)  # 00:10 on the day
    await complete(overnight, 393_000)
    clock.now = datetime(2025, 6, 4, 6, 0, tzinfo=UTC)  # 09:00
    await _top_up(state, world, 1_000_000, clock, "PP-101")
    sale = await hold("sale", 300_000)
    other_sale = await hold("other_sale", 250_000, on=other_terminal, phone=other.phone)
    clock.advance(300)
    await complete(sale, 200_000)
    await complete(other_sale, 250_000, on=other_terminal)
    reversed_ = await hold("reversed", 150_000)
    assert (await terminal.reverse(reversed_, reason="customer left")).status_code == 200
    clock.now = datetime(2025, 6, 4, 12, 0, tzinfo=UTC)  # 15:00
    await hold("expired", 100_000)
    async with unit_of_work(state.sessionmaker) as session:
        await set_limit(session, scope_kind=ScopeKind.CARD, scope_id=world.card_id, metric=LimitMetric.AMOUNT,
                        period=LimitPeriod.TRANSACTION, max_value=500_000)
    declined = await terminal.authorize(**authorization_message(world.phone, clock(), amount_minor=600_000))
    assert declined.body["response_code"] == "61", declined.body
    clock.advance(state.settings.hold_expiry_seconds + 1)
    await _sweep(state, clock)
    clock.now = datetime(2025, 6, 4, 20, 59, 59, tzinfo=UTC)  # 23:59:59
    await hold("late", 50_000)

    clock.now = DAY_END  # 00:00 the day after
    await _top_up(state, world, 300_000, clock, "PP-102")
    return BusyDay(world=world, other=other, authorizations=ids)
