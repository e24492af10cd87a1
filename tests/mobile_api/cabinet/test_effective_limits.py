"""A card's effective limits: every limit that applies (the card's and each unit's up to the root),
where it comes from, what is used and left now, what binds, the controls and the exceptions."""

from __future__ import annotations

from datetime import timedelta

import pytest

from processing.db.engine import unit_of_work
from processing.limits.models import ExceptionStatus, LimitException
from tests.mobile_api.cabinet.pay import approved, authorize

pytestmark = pytest.mark.asyncio


def amount(period: str, max_value: int) -> dict:
    return {"metric": "amount", "period": period, "max_value": max_value}


def volume(period: str, max_value: int) -> dict:
    return {"metric": "volume", "period": period, "max_value": max_value}


async def put(http, fleet, path: str, body: dict) -> None:
    reply = await http.put(fleet.url(path), headers=fleet.admin.headers, json=body)
    assert reply.status_code == 200, reply.text


async def test_every_limit_its_source_what_is_used_and_what_binds(state, http, clock, fleet):
    await put(http, fleet, f"/units/{fleet.root_id}/limits", {"limits": [amount("day", 1_000_000)]})
    await put(http, fleet, f"/units/{fleet.north_id}/limits", {"limits": [amount("week", 800_000)]})
    await put(http, fleet, f"/units/{fleet.north_east_id}/limits", {"limits": [volume("day", 100_000)]})
    await put(http, fleet, f"/cards/{fleet.ivan_card_id}/limits",
              {"limits": [amount("day", 300_000), amount("transaction", 200_000)]})
    await put(http, fleet, f"/units/{fleet.north_id}/controls",
              {"allowed_products": ["diesel", "ai95", "car_wash"], "allowed_hours": [{"from": "00:00", "to": "24:00"}]})
    await put(http, fleet, f"/cards/{fleet.ivan_card_id}/controls", {"allowed_products": ["diesel", "car_wash"]})
    assert approved(await authorize(fleet, http, clock, fleet.world.phone, 131_000))  # 20 litres of diesel

    reply = await http.get(fleet.url(f"/cards/{fleet.ivan_card_id}/effective-limits"), headers=fleet.sub_north.headers)
    assert reply.status_code == 200, reply.text
    assert fleet.world.pan not in reply.text
    view = reply.json()
    assert (view["card_id"], view["org_unit_id"], view["currency"]) == (fleet.ivan_card_id, fleet.north_east_id, "RUB")
    masked = view["masked_card_number"]

    def source(kind, scope_id, name):
        return {"scope": kind, "scope_id": scope_id, "name": name}

    card = source("card", fleet.ivan_card_id, masked)
    rows = [(item["source"]["scope"], item["source"]["scope_id"], item["metric"], item["period"], item["max_value"],
             item["used"], item["remaining"]) for item in view["limits"]]
    assert rows == [
        ("card", fleet.ivan_card_id, "amount", "transaction", 200_000, 0, 200_000),
        ("card", fleet.ivan_card_id, "amount", "day", 300_000, 131_000, 169_000),
        ("org_unit", fleet.root_id, "amount", "day", 1_000_000, 131_000, 869_000),
        ("org_unit", fleet.north_id, "amount", "week", 800_000, 131_000, 669_000),
        ("org_unit", fleet.north_east_id, "volume", "day", 100_000, 20_000, 80_000),
    ]
    assert view["limits"][0]["source"] == card
    assert view["limits"][3]["source"]["name"] == "North"
    assert view["limits"][4]["display"] == "100.00 l per day" and view["limits"][4]["unit"] == "ml"
    assert view["limits"][2]["source"]["name"].startswith("Fleet ")  # the root unit has the company's name

    binding = {(item["metric"], item["period"]): item for item in view["binding"]}
    assert set(binding) == {("amount", "transaction"), ("amount", "day"), ("amount", "week"), ("volume", "day")}
    # One purchase may take 169 000 at most: the card's day remainder caps its per-transaction limit.
    assert (binding["amount", "transaction"]["remaining"], binding["amount", "transaction"]["binding_period"]) == (
        169_000, "day")
    assert binding["amount", "day"]["remaining"] == 169_000 and binding["amount", "day"]["source"] == card
    assert binding["amount", "week"]["remaining"] == 669_000
    assert binding["amount", "week"]["source"]["scope_id"] == fleet.north_id
    assert binding["volume", "day"]["remaining"] == 80_000

    controls = {(item["source"]["scope"], item["source"]["scope_id"]): item["controls"] for item in view["controls"]}
    assert controls["card", fleet.ivan_card_id]["allowed_products"] == ["diesel", "car_wash"]
    assert controls["org_unit", fleet.north_id]["allowed_hours"] == [{"from": "00:00", "to": "24:00"}]
    assert view["allowed_products"] == ["diesel", "car_wash"]  # and the vehicle runs on diesel only
    assert view["exceptions"] == []


async def test_a_card_without_limits_and_the_scope_of_the_view(state, http, fleet):
    reply = await http.get(fleet.url(f"/cards/{fleet.olga_card_id}/effective-limits"), headers=fleet.sub_south.headers)
    assert reply.status_code == 200, reply.text
    view = reply.json()
    assert (view["limits"], view["binding"], view["controls"], view["exceptions"]) == ([], [], [], [])
    assert "diesel" in view["allowed_products"] and "shop" in view["allowed_products"]

    for caller, card_id, status in [(fleet.sub_south, fleet.ivan_card_id, 404), (fleet.admin, fleet.other_card_id, 404),
                                    (fleet.other_admin, fleet.ivan_card_id, 404), (fleet.ivan, fleet.ivan_card_id, 403),
                                    (fleet.admin, 999_999, 404)]:
        reply = await http.get(fleet.url(f"/cards/{card_id}/effective-limits"), headers=caller.headers)
        assert reply.status_code == status, (caller.name, reply.text)


async def test_active_approved_exceptions_are_listed(state, http, clock, fleet):
    now = clock()
    async with unit_of_work(state.sessionmaker) as session:
        def exception(status, valid_until, extra_value):
            return LimitException(
                company_id=fleet.company_id, card_id=fleet.ivan_card_id, driver_id=fleet.ivan_id,
                org_unit_id=fleet.north_east_id, metric="volume", extra_value=extra_value, reason="long trip",
                status=status, requested_at=now, valid_until=valid_until, decided_by_user_id=fleet.admin.user_id,
                decided_at=now if status != ExceptionStatus.PENDING else None,
            )
        session.add_all([
            exception(ExceptionStatus.APPROVED, now + timedelta(hours=4), 100_000),
            exception(ExceptionStatus.APPROVED, now - timedelta(minutes=1), 50_000),  # expired
            exception(ExceptionStatus.PENDING, None, 30_000),
            exception(ExceptionStatus.USED, now + timedelta(hours=4), 20_000),
        ])
    reply = await http.get(fleet.url(f"/cards/{fleet.ivan_card_id}/effective-limits"), headers=fleet.admin.headers)
    [listed] = reply.json()["exceptions"]
    assert (listed["metric"], listed["extra_value"], listed["unit"], listed["reason"]) == (
        "volume", 100_000, "ml", "long trip")
    assert listed["decided_by_user_id"] == fleet.admin.user_id
