"""One-off limit exceptions, end to end: Ivan asks in the app, an admin of his unit decides, the
next authorization that needs it uses it once; refused, expired and out-of-scope requests lift
nothing; a sub-admin cannot lift the limits of units above their own."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from processing.cards.service import set_card_status
from processing.db.engine import unit_of_work
from processing.limits.models import LimitException, LimitMetric, LimitPeriod, ScopeKind
from processing.limits.service import set_limit
from tests.conftest import MovableClock
from tests.factories import DIESEL_PRICE_MINOR, authorization_message, database_dump

LITRE = 1000
FIFTY_LITRES = 50 * DIESEL_PRICE_MINOR  # 327_500 kopecks buy exactly 50 L
TWENTY_LITRES = 20 * DIESEL_PRICE_MINOR


@pytest.fixture
def clock() -> MovableClock:
    """Wednesday 12:00 in Moscow: moving minutes never crosses into a new day's counters."""
    fixed = MovableClock()
    fixed.now = datetime(2025, 6, 4, 9, 0, tzinfo=UTC)
    return fixed


async def day_volume_limit(state, scope_kind, scope_id, litres: int) -> None:
    async with unit_of_work(state.sessionmaker) as session:
        await set_limit(session, scope_kind=scope_kind, scope_id=scope_id, metric=LimitMetric.VOLUME,
                        period=LimitPeriod.DAY, max_value=litres * LITRE)


async def pay(http, fleet, clock, amount_minor: int, **extra) -> dict:
    terminal = fleet.world.terminal(http, clock)
    reply = await terminal.authorize(**authorization_message(fleet.world.phone, clock(), amount_minor=amount_minor,
                                                             **extra))
    assert reply.status_code == 200, reply.body
    return reply.body


def approved(body: dict, amount_minor: int, code: str = "00") -> bool:
    return (body["approved"], body["response_code"], body["approved_amount_minor"]) == (True, code, amount_minor)


def declined_by_volume(body: dict) -> bool:
    return (body["approved"], body["response_code"], body["decline_reason"]) == (False, "61", "volume_limit_exceeded")


async def ask(http, fleet, *, litres: int = 100, card_id: int | None = None, headers=None) -> dict:
    reply = await http.post(f"/v1/driver/cards/{card_id or fleet.ivan_card_id}/limit-exceptions",
                            json={"metric": "volume", "extra_value": litres * LITRE, "reason": "long trip today"},
                            headers=headers or fleet.ivan.headers)
    assert reply.status_code == 201, reply.text
    return reply.json()


async def decide(http, fleet, caller, exception_id: int, verb: str, body: dict | None = None):
    return await http.post(fleet.url(f"/limit-exceptions/{exception_id}/{verb}"), json=body or {},
                           headers=caller.headers)


async def spent_fifty_of_sixty(state, http, fleet, clock, *, scope_kind=ScopeKind.CARD, scope_id=None) -> None:
    """A day volume limit of 60 L with 50 L already held: a 20 L purchase no longer fits."""
    await day_volume_limit(state, scope_kind, scope_id or fleet.ivan_card_id, 60)
    assert approved(await pay(http, fleet, clock, FIFTY_LITRES), FIFTY_LITRES)
    assert declined_by_volume(await pay(http, fleet, clock, TWENTY_LITRES))


async def driver_view(http, fleet) -> list[dict]:
    reply = await http.get("/v1/driver/limit-exceptions", headers=fleet.ivan.headers)
    assert reply.status_code == 200, reply.text
    return reply.json()["items"]


async def test_approved_exception_lifts_the_limit_for_one_authorization(state, http, fleet, clock):
    await spent_fifty_of_sixty(state, http, fleet, clock)

    asked = await ask(http, fleet)
    assert asked["status"] == "pending" and asked["extra_value"] == 100_000 and asked["unit"] == "ml"
    assert "••" in asked["card"]
    assert [item["status"] for item in await driver_view(http, fleet)] == ["pending"]
    pending = await http.get(fleet.url("/limit-exceptions?status=pending"), headers=fleet.sub_north.headers)
    assert [item["exception_id"] for item in pending.json()["items"]] == [asked["exception_id"]]
    assert pending.json()["items"][0]["driver_id"] == fleet.ivan_id

    reply = await decide(http, fleet, fleet.sub_north, asked["exception_id"], "approve",
                         {"valid_for_minutes": 120, "comment": "ok for the trip"})
    assert reply.status_code == 200, reply.text
    assert reply.json()["status"] == "approved"
    assert reply.json()["approver_unit_id"] == fleet.north_id
    assert reply.json()["decided_by_user_id"] == fleet.sub_north.user_id

    # Declines before the exception stay declines; the next purchase that needs it gets it.
    lifted = await pay(http, fleet, clock, TWENTY_LITRES)
    assert approved(lifted, TWENTY_LITRES), lifted
    assert lifted["hold_volume_ml"] == 20_000
    # Used once: the one after is declined again.
    assert declined_by_volume(await pay(http, fleet, clock, TWENTY_LITRES))

    used = (await http.get(fleet.url(f"/limit-exceptions/{asked['exception_id']}"),
                           headers=fleet.admin.headers)).json()
    assert used["status"] == "used"
    assert used["used_by_authorization_id"] == lifted["authorization_id"]
    assert [item["status"] for item in await driver_view(http, fleet)] == ["used"]


async def test_an_authorization_within_the_limits_does_not_use_the_exception(state, http, fleet, clock):
    await day_volume_limit(state, ScopeKind.CARD, fleet.ivan_card_id, 60)
    asked = await ask(http, fleet, litres=30)
    assert (await decide(http, fleet, fleet.admin, asked["exception_id"], "approve")).status_code == 200

    assert approved(await pay(http, fleet, clock, FIFTY_LITRES), FIFTY_LITRES)
    assert (await driver_view(http, fleet))[0]["status"] == "approved"
    # Partial approval: the lifted limit (60 + 30 - 50 = 40 L) is what the purchase may reach.
    partial = await pay(http, fleet, clock, 50 * DIESEL_PRICE_MINOR, partial_approval_allowed=True)
    assert approved(partial, 40 * DIESEL_PRICE_MINOR, code="10"), partial
    assert (await driver_view(http, fleet))[0]["status"] == "used"


async def test_refused_exception_lifts_nothing(state, http, fleet, clock):
    await spent_fifty_of_sixty(state, http, fleet, clock)
    asked = await ask(http, fleet)

    reply = await decide(http, fleet, fleet.sub_north, asked["exception_id"], "refuse",
                         {"comment": "use the depot tank"})
    assert reply.status_code == 200, reply.text
    assert declined_by_volume(await pay(http, fleet, clock, TWENTY_LITRES))
    seen = (await driver_view(http, fleet))[0]
    assert (seen["status"], seen["decision_comment"]) == ("refused", "use the depot tank")


async def test_expired_exception_lifts_nothing(state, http, fleet, clock):
    await spent_fifty_of_sixty(state, http, fleet, clock)
    asked = await ask(http, fleet)
    assert (await decide(http, fleet, fleet.sub_north, asked["exception_id"], "approve",
                         {"valid_for_minutes": 5})).status_code == 200

    clock.advance(5 * 60)  # valid_until is exclusive
    assert declined_by_volume(await pay(http, fleet, clock, TWENTY_LITRES))
    assert (await driver_view(http, fleet))[0]["status"] == "expired"
    expired = await http.get(fleet.url("/limit-exceptions?status=expired"), headers=fleet.admin.headers)
    assert [item["exception_id"] for item in expired.json()["items"]] == [asked["exception_id"]]
    approved_now = await http.get(fleet.url("/limit-exceptions?status=approved"), headers=fleet.admin.headers)
    assert approved_now.json()["items"] == []


async def test_sub_admin_lifts_their_own_unit_but_never_the_root_unit(state, http, fleet, clock):
    await day_volume_limit(state, ScopeKind.ORG_UNIT, fleet.north_id, 80)  # sub_north's own unit
    await spent_fifty_of_sixty(state, http, fleet, clock, scope_kind=ScopeKind.ORG_UNIT, scope_id=fleet.root_id)

    by_sub_admin = await ask(http, fleet)
    assert (await decide(http, fleet, fleet.sub_north, by_sub_admin["exception_id"], "approve")).status_code == 200
    # The root's 60 L still binds: the sub-admin's exception is not used.
    assert declined_by_volume(await pay(http, fleet, clock, TWENTY_LITRES))
    assert (await driver_view(http, fleet))[0]["status"] == "approved"

    # The company admin's exception lifts the root's limit and North's (80 L) alike.
    by_admin = await ask(http, fleet)
    assert (await decide(http, fleet, fleet.admin, by_admin["exception_id"], "approve")).status_code == 200
    lifted = await pay(http, fleet, clock, 40 * DIESEL_PRICE_MINOR)
    assert approved(lifted, 40 * DIESEL_PRICE_MINOR), lifted
    statuses = {item["exception_id"]: item["status"] for item in await driver_view(http, fleet)}
    assert statuses == {by_sub_admin["exception_id"]: "approved", by_admin["exception_id"]: "used"}


async def test_sub_admin_of_another_subtree_cannot_see_or_decide(state, http, fleet, clock):
    asked = await ask(http, fleet)
    exception_id = asked["exception_id"]
    listed = await http.get(fleet.url("/limit-exceptions"), headers=fleet.sub_south.headers)
    assert listed.status_code == 200 and listed.json()["items"] == []
    before = await database_dump(state)
    for reply in (
        await http.get(fleet.url(f"/limit-exceptions/{exception_id}"), headers=fleet.sub_south.headers),
        await decide(http, fleet, fleet.sub_south, exception_id, "approve"),
        await decide(http, fleet, fleet.sub_south, exception_id, "refuse", {"comment": "no"}),
        await decide(http, fleet, fleet.other_admin, exception_id, "approve"),
    ):
        assert reply.status_code == 404, reply.text
    assert (await http.get(fleet.url(f"/limit-exceptions/{exception_id}", company_id=fleet.other_world.company_id),
                           headers=fleet.other_admin.headers)).status_code == 404
    assert await database_dump(state) == before
    assert (await http.get(fleet.url(f"/limit-exceptions/{exception_id}"),
                           headers=fleet.sub_north.headers)).status_code == 200


async def test_deciding_twice_is_409_and_changes_nothing(state, http, fleet, clock):
    asked = await ask(http, fleet)
    assert (await decide(http, fleet, fleet.sub_north, asked["exception_id"], "approve")).status_code == 200
    before = await database_dump(state)
    for verb, body in (("approve", {}), ("refuse", {"comment": "changed my mind"})):
        reply = await decide(http, fleet, fleet.admin, asked["exception_id"], verb, body)
        assert reply.status_code == 409, reply.text
        assert reply.json()["error"] == "exception_not_pending"
    assert await database_dump(state) == before


async def test_decisions_are_audited_with_before_and_after(state, http, fleet, clock):
    from processing.audit.models import AuditEntry

    first, second = await ask(http, fleet), await ask(http, fleet)
    await decide(http, fleet, fleet.sub_north, first["exception_id"], "approve", {"valid_for_minutes": 60})
    await decide(http, fleet, fleet.admin, second["exception_id"], "refuse", {"comment": "no"})
    async with unit_of_work(state.readonly_sessionmaker) as session:
        entries = (await session.execute(
            select(AuditEntry).where(AuditEntry.target_kind == "limit_exception").order_by(AuditEntry.id)
        )).scalars().all()
    assert [(e.action, e.target_id, e.actor_user_id) for e in entries] == [
        ("limit_exception.approve", first["exception_id"], fleet.sub_north.user_id),
        ("limit_exception.refuse", second["exception_id"], fleet.admin.user_id),
    ]
    assert (entries[0].before["status"], entries[0].after["status"]) == ("pending", "approved")
    assert entries[0].after["approver_scope_path"].endswith(f"/{fleet.north_id}/")
    assert (entries[1].before["status"], entries[1].after["status"]) == ("pending", "refused")


async def test_driver_asks_only_for_own_active_cards_and_at_most_three_pending(state, http, fleet, clock):
    for _ in range(3):
        await ask(http, fleet, litres=10)
    before = await database_dump(state)
    too_many = await http.post(f"/v1/driver/cards/{fleet.ivan_card_id}/limit-exceptions",
                               json={"metric": "amount", "extra_value": 100_000, "reason": "again"},
                               headers=fleet.ivan.headers)
    assert too_many.status_code == 409 and too_many.json()["error"] == "too_many_pending_exceptions"
    for card_id, body, status in (
        (fleet.olga_card_id, {"metric": "amount", "extra_value": 100, "reason": "x"}, 404),
        (fleet.other_card_id, {"metric": "amount", "extra_value": 100, "reason": "x"}, 404),
        (fleet.ivan_card_id, {"metric": "volume", "extra_value": 2_000_001, "reason": "x"}, 422),
        (fleet.ivan_card_id, {"metric": "amount", "extra_value": 10**9 + 1, "reason": "x"}, 422),
        (fleet.ivan_card_id, {"metric": "amount", "extra_value": 0, "reason": "x"}, 422),
        (fleet.ivan_card_id, {"metric": "count", "extra_value": 1, "reason": "x"}, 422),
        (fleet.ivan_card_id, {"metric": "amount", "extra_value": 1, "reason": ""}, 422),
        (fleet.ivan_card_id, {"metric": "amount", "extra_value": 1, "reason": "a\nb"}, 422),
        (fleet.ivan_card_id, {"metric": "amount", "extra_value": 1, "reason": "x" * 301}, 422),
    ):
        reply = await http.post(f"/v1/driver/cards/{card_id}/limit-exceptions", json=body, headers=fleet.ivan.headers)
        assert reply.status_code == status, (card_id, body, reply.text)
    assert await database_dump(state) == before

    # A decision frees a slot; a blocked card gets none.
    oldest = (await driver_view(http, fleet))[-1]
    assert (await decide(http, fleet, fleet.admin, oldest["exception_id"], "refuse", {"comment": "no"})).status_code == 200
    await ask(http, fleet, litres=10)
    async with unit_of_work(state.sessionmaker) as session:
        await set_card_status(session, card_id=fleet.ivan_card_id, status="blocked")
    blocked = await http.post(f"/v1/driver/cards/{fleet.ivan_card_id}/limit-exceptions",
                              json={"metric": "amount", "extra_value": 100, "reason": "x"}, headers=fleet.ivan.headers)
    assert blocked.status_code == 409 and blocked.json()["error"] == "card_not_active"
    async with unit_of_work(state.readonly_sessionmaker) as session:
        assert await session.scalar(select(LimitException.id).where(LimitException.reason == "x")) is None


async def test_cabinet_list_filters_and_pages(state, http, fleet, clock):
    ids = [(await ask(http, fleet, litres=litres))["exception_id"] for litres in (10, 20, 30)]
    await decide(http, fleet, fleet.admin, ids[0], "refuse", {"comment": "no"})
    first = await http.get(fleet.url("/limit-exceptions?limit=2"), headers=fleet.sub_north.headers)
    assert [item["exception_id"] for item in first.json()["items"]] == [ids[2], ids[1]]
    rest = await http.get(fleet.url(f"/limit-exceptions?limit=2&cursor={first.json()['next_cursor']}"),
                          headers=fleet.sub_north.headers)
    assert [item["exception_id"] for item in rest.json()["items"]] == [ids[0]]
    assert rest.json()["next_cursor"] is None
    refused = await http.get(fleet.url("/limit-exceptions?status=refused"), headers=fleet.admin.headers)
    assert [item["exception_id"] for item in refused.json()["items"]] == [ids[0]]
    by_card = await http.get(fleet.url(f"/limit-exceptions?card_id={fleet.ivan_card_id}&org_unit_id={fleet.north_id}"),
                             headers=fleet.admin.headers)
    assert len(by_card.json()["items"]) == 3
    south = await http.get(fleet.url(f"/limit-exceptions?org_unit_id={fleet.south_id}"), headers=fleet.admin.headers)
    assert south.json()["items"] == []
    for query, status in (("status=bogus", 422), ("limit=201", 422), (f"org_unit_id={fleet.south_id}", 404),
                          (f"card_id={fleet.olga_card_id}", 404), ("cursor=zzz", 422)):
        reply = await http.get(fleet.url(f"/limit-exceptions?{query}"), headers=fleet.sub_north.headers)
        assert reply.status_code == status, (query, reply.text)


async def test_concurrent_authorizations_use_one_exception_once(state, http, fleet, clock):
    await spent_fifty_of_sixty(state, http, fleet, clock)
    asked = await ask(http, fleet)
    assert (await decide(http, fleet, fleet.sub_north, asked["exception_id"], "approve")).status_code == 200

    terminal = fleet.world.terminal(http, clock)
    messages = [authorization_message(fleet.world.phone, clock(), amount_minor=TWENTY_LITRES) for _ in range(6)]
    replies = await asyncio.gather(*(terminal.authorize(**message) for message in messages))
    assert all(reply.status_code == 200 for reply in replies)
    winners = [reply.body for reply in replies if reply.body["approved"]]
    assert len(winners) == 1, [reply.body for reply in replies]
    assert {reply.body["decline_reason"] for reply in replies if not reply.body["approved"]} <= {
        "volume_limit_exceeded", "token_replayed"}
    async with unit_of_work(state.readonly_sessionmaker) as session:
        exception = await session.get(LimitException, asked["exception_id"])
    assert (exception.status, exception.used_by_authorization_id) == ("used", winners[0]["authorization_id"])
