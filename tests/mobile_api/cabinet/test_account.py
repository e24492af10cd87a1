"""The company account and its statement: balances equal the ledger, movements sum to them."""

from __future__ import annotations

import pytest
from sqlalchemy import update

from processing.db.engine import unit_of_work
from processing.ledger.models import Account
from processing.ledger.service import find_ledger_problems
from tests.mobile_api.cabinet.account_activity import (
    BALANCE_AFTER,
    CAPTURED,
    IVAN_HOLD,
    START_BALANCE,
    TOP_UP,
    spend,
)

pytestmark = pytest.mark.asyncio


async def ledger_balance(state, account_id: int) -> int:
    async with unit_of_work(state.readonly_sessionmaker) as session:
        assert await find_ledger_problems(session) == []
        return (await session.get(Account, account_id)).balance_minor


async def all_lines(http, fleet, **params) -> list[dict]:
    """Every statement line, page by page."""
    lines, cursor = [], None
    while True:
        query = {"limit": 3, **params, **({"cursor": cursor} if cursor else {})}
        reply = await http.get(fleet.url("/account/statement"), params=query, headers=fleet.admin.headers)
        assert reply.status_code == 200, reply.text
        page = reply.json()
        assert len(page["lines"]) <= 3
        lines += page["lines"]
        cursor = page["next_cursor"]
        if cursor is None:
            return lines


async def test_account_shows_the_ledger_balances_after_holds_and_captures(state, http, clock, fleet):
    await spend(state, http, clock, fleet)
    reply = await http.get(fleet.url("/account"), headers=fleet.admin.headers)
    assert reply.status_code == 200, reply.text
    assert reply.json() == {
        "currency": "RUB", "balance_minor": BALANCE_AFTER, "credit_limit_minor": 0, "held_minor": IVAN_HOLD,
        "spendable_minor": BALANCE_AFTER,
    }
    assert BALANCE_AFTER == START_BALANCE + TOP_UP - CAPTURED - IVAN_HOLD
    assert reply.json()["balance_minor"] == await ledger_balance(state, fleet.world.available_account_id)
    assert reply.json()["held_minor"] == await ledger_balance(state, fleet.world.held_account_id)

    async with unit_of_work(state.sessionmaker) as session:
        await session.execute(update(Account).where(Account.id == fleet.world.available_account_id)
                              .values(credit_limit_minor=300_000))
    credit = (await http.get(fleet.url("/account"), headers=fleet.operator.headers)).json()
    assert (credit["credit_limit_minor"], credit["spendable_minor"]) == (300_000, BALANCE_AFTER + 300_000)


async def test_account_is_for_company_admins_only(http, fleet):
    for caller, status in ((fleet.sub_north, 403), (fleet.sub_south, 403), (fleet.ivan, 403),
                           (fleet.other_admin, 404)):
        for path in ("/account", "/account/statement"):
            reply = await http.get(fleet.url(path), headers=caller.headers)
            assert reply.status_code == status, (caller.name, path, reply.text)
    other = await http.get(fleet.url("/account", company_id=fleet.other_world.company_id),
                           headers=fleet.other_admin.headers)
    assert other.status_code == 200 and other.json()["balance_minor"] == START_BALANCE


async def test_statement_lines_sum_to_the_balances_and_tell_what_moved(state, http, clock, fleet):
    activity = await spend(state, http, clock, fleet)
    lines = await all_lines(http, fleet)
    assert [line["line_id"] for line in lines] == sorted((line["line_id"] for line in lines), reverse=True)
    assert len({line["line_id"] for line in lines}) == len(lines)
    available = [line for line in lines if line["account"] == "available"]
    held = [line for line in lines if line["account"] == "held"]
    assert sum(line["amount_minor"] for line in available) == BALANCE_AFTER
    assert sum(line["amount_minor"] for line in held) == IVAN_HOLD
    # Only company A's movements: company B's sale is not there.
    assert activity.other_company_sale not in {line["authorization_id"] for line in lines}

    top_ups = [line for line in lines if line["entry_kind"] == "top_up"]
    assert [(line["amount_minor"], line["account"], line["authorization_id"]) for line in top_ups] == [
        (TOP_UP, "available", None), (START_BALANCE, "available", None)]
    assert top_ups[0]["description"] == "bank transfer 42"

    sale = sorted((line["entry_kind"], line["account"], line["amount_minor"])
                  for line in lines if line["authorization_id"] == activity.ivan_sale)
    # hold 3 000.00: available -> held; capture of 1 310.00: the hold leaves, the rest comes back.
    assert sale == sorted([("hold", "available", -300_000), ("hold", "held", 300_000),
                           ("capture", "held", -300_000), ("capture", "available", 300_000 - 131_000)])
    released = sorted((line["entry_kind"], line["account"], line["amount_minor"])
                      for line in lines if line["authorization_id"] == activity.olga_reversed)
    assert released == sorted([("hold", "available", -100_000), ("hold", "held", 100_000),
                               ("release", "held", -100_000), ("release", "available", 100_000)])
    assert not [line for line in lines if line["authorization_id"] == activity.ivan_declined]
    first = lines[0]
    assert set(first) == {"line_id", "entry_id", "entry_kind", "description", "authorization_id", "account",
                          "amount_minor", "created_at"}


async def test_statement_period_has_opening_and_closing_balances(state, http, clock, fleet):
    # Journal entries carry the platform clock of the change that posted them, so the periods are cut
    # there. make_world's top-up (no clock given: the wall clock) comes well before the spending.
    clock.advance(60)
    before_spending = clock()
    clock.advance(1)
    await spend(state, http, clock, fleet)
    clock.advance(1)
    after_spending = clock()

    whole = await all_lines(http, fleet)
    period = await all_lines(http, fleet, **{"from": before_spending.isoformat(), "to": after_spending.isoformat()})
    assert {line["line_id"] for line in period} < {line["line_id"] for line in whole}
    reply = await http.get(fleet.url("/account/statement"), headers=fleet.admin.headers,
                           params={"from": before_spending.isoformat(), "to": after_spending.isoformat()})
    page = reply.json()
    assert page["opening_balance_minor"] == START_BALANCE  # only make_world's top-up came before
    assert page["closing_balance_minor"] == BALANCE_AFTER
    moved = sum(line["amount_minor"] for line in period if line["account"] == "available")
    assert page["opening_balance_minor"] + moved == page["closing_balance_minor"]

    later = (await http.get(fleet.url("/account/statement"), headers=fleet.admin.headers,
                            params={"from": after_spending.isoformat()})).json()
    assert later["lines"] == [] and later["opening_balance_minor"] == later["closing_balance_minor"] == BALANCE_AFTER
    earlier = (await http.get(fleet.url("/account/statement"), headers=fleet.admin.headers,
                              params={"to": before_spending.isoformat()})).json()
    assert (earlier["opening_balance_minor"], earlier["closing_balance_minor"]) == (0, START_BALANCE)
    assert [line["entry_kind"] for line in earlier["lines"]] == ["top_up"]
    plain = (await http.get(fleet.url("/account/statement"), headers=fleet.admin.headers)).json()
    assert plain["opening_balance_minor"] is None and plain["closing_balance_minor"] is None


async def test_statement_refuses_bad_pages_and_periods(http, fleet):
    url = fleet.url("/account/statement")
    for params, code in (({"limit": 201}, "invalid_request"), ({"limit": 0}, "invalid_request"),
                         ({"cursor": "not-a-cursor"}, "invalid_cursor"),
                         ({"from": "2024-05-01T00:00:00"}, "invalid_request"),  # no time zone
                         ({"from": "2024-05-02T00:00:00Z", "to": "2024-05-01T00:00:00Z"}, "invalid_period"),
                         ({"from": "9999-12-31T23:59:59-23:00"}, "invalid_request")):
        reply = await http.get(url, params=params, headers=fleet.admin.headers)
        assert (reply.status_code, reply.json()["error"]) == (422, code), (params, reply.text)
