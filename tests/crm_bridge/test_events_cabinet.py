"""Card and limit events from the fleet cabinet's admin actions: the core services emit them, so the
cabinet (and the CRM API, and anything else) emits exactly one event per change, none for an action
that changed nothing or was refused; every payload valid and free of card numbers."""

from __future__ import annotations

import pytest_asyncio

from tests.crm_bridge.event_checks import events_since, last_event_id
from tests.factories import database_dump
from tests.mobile_api.cabinet.conftest import build_fleet


@pytest_asyncio.fixture
async def fleet(state):
    return await build_fleet(state)


async def _types(state, mark: int) -> list[str]:
    return [event.event_type for event in await events_since(state, mark)]


async def test_card_life_in_the_cabinet_emits_one_event_per_change(state, http, fleet, clock):
    admin = fleet.admin.headers
    mark = await last_event_id(state)

    issued = await http.post(fleet.url("/cards"), headers=admin,
                             json={"org_unit_id": fleet.north_id, "driver_id": fleet.ivan_id})
    assert issued.status_code == 201, issued.text
    card_id = issued.json()["card_id"]
    [event] = await events_since(state, mark)
    assert event.event_type == "card.issued" and event.occurred_at == clock()
    assert event.payload == event.payload | {
        "operation": "card_issue", "company_id": fleet.company_id, "card_id": card_id,
        "card_last4": issued.json()["last4"], "card_masked": issued.json()["masked_card_number"],
        "status": "active", "org_unit_id": fleet.north_east_id, "driver_id": fleet.ivan_id, "vehicle_id": None,
    }

    mark = await last_event_id(state)
    bound = await http.post(fleet.url(f"/cards/{card_id}/bind"), headers=admin, json={"driver_id": fleet.olga_id})
    assert bound.status_code == 200, bound.text
    [event] = await events_since(state, mark)
    assert event.event_type == "card.bound"
    assert event.payload == event.payload | {
        "operation": "card_bind", "card_id": card_id, "driver_id": fleet.olga_id, "org_unit_id": fleet.south_id,
        "previous_driver_id": fleet.ivan_id, "previous_org_unit_id": fleet.north_east_id,
        "revoked_enrollments": 0,
    }

    mark = await last_event_id(state)
    again = await http.post(fleet.url(f"/cards/{card_id}/bind"), headers=admin, json={"driver_id": fleet.olga_id})
    assert again.status_code == 200, again.text
    assert await _types(state, mark) == []  # the same holder: nothing changed

    steps = [
        ("unbind", None, "card.unbound"),
        ("block", {"reason": "phone lost"}, "card.blocked"),
        ("block", {"reason": "phone lost, reported twice"}, None),  # a new reason, not a new status
        ("unblock", None, "card.unblocked"),
        ("close", {"reason": "contract ended"}, "card.closed"),
    ]
    for action, body, expected in steps:
        mark = await last_event_id(state)
        reply = await http.post(fleet.url(f"/cards/{card_id}/{action}"), headers=admin,
                                **({"json": body} if body is not None else {}))
        assert reply.status_code == 200, (action, reply.text)
        assert await _types(state, mark) == ([expected] if expected else []), action

    unbound, blocked, unblocked, closed = [
        event.payload for event in await events_since(state)
        if event.event_type in ("card.unbound", "card.blocked", "card.unblocked", "card.closed")
    ]
    assert unbound == unbound | {"operation": "card_unbind", "driver_id": None, "previous_driver_id": fleet.olga_id}
    assert blocked == blocked | {"operation": "card_status", "status": "blocked", "previous_status": "active",
                                 "reason": "phone lost"}
    assert unblocked == unblocked | {"status": "active", "previous_status": "blocked", "reason": None}
    assert closed == closed | {"status": "closed", "previous_status": "active", "reason": "contract ended"}


async def test_rebinding_the_card_on_a_phone_counts_the_revoked_enrollments(state, http, fleet):
    mark = await last_event_id(state)

    reply = await http.post(fleet.url(f"/cards/{fleet.ivan_card_id}/bind"), headers=fleet.admin.headers,
                            json={"driver_id": fleet.olga_id})

    assert reply.status_code == 200, reply.text
    [event] = await events_since(state, mark)
    assert event.payload["revoked_enrollments"] == 1
    assert event.payload["card_id"] == fleet.ivan_card_id


async def test_refused_card_actions_emit_nothing(state, http, fleet):
    before = await database_dump(state)

    for path, body in [
        (f"/cards/{fleet.olga_card_id}/unblock", None),  # not blocked
        (f"/cards/{fleet.olga_card_id}/bind", {"driver_id": 999_999}),
        ("/cards", {"org_unit_id": fleet.north_id, "driver_id": fleet.olga_id}),  # driver outside the unit
    ]:
        reply = await http.post(fleet.url(path), headers=fleet.admin.headers,
                                **({"json": body} if body is not None else {}))
        assert reply.status_code >= 400, reply.text

    assert await database_dump(state) == before


async def test_limit_changes_emit_one_event_per_admin_change(state, http, fleet):
    admin = fleet.admin.headers
    limits = {"limits": [{"metric": "amount", "period": "day", "max_value": 1_500_000},
                         {"metric": "volume", "period": "day", "max_value": 100_000},
                         {"metric": "count", "period": "day", "max_value": 5}]}
    mark = await last_event_id(state)

    reply = await http.put(fleet.url(f"/units/{fleet.north_id}/limits"), headers=admin, json=limits)
    assert reply.status_code == 200, reply.text
    [event] = await events_since(state, mark)  # three limits, one admin change
    assert event.event_type == "limit.changed"
    assert event.payload == event.payload | {
        "operation": "limit", "change": "limits", "scope_kind": "org_unit", "scope_id": fleet.north_id,
        "org_unit_id": fleet.north_id, "card_id": None, "currency": "RUB", "limits_before": [],
        "controls_before": None, "credit_limit_before_minor": None,
    }
    assert sorted(event.payload["limits_after"], key=str) == sorted(limits["limits"], key=str)

    mark = await last_event_id(state)
    same = await http.put(fleet.url(f"/units/{fleet.north_id}/limits"), headers=admin, json=limits)
    assert same.status_code == 200, same.text
    assert await _types(state, mark) == []  # nothing changed

    mark = await last_event_id(state)
    removed = await http.delete(fleet.url(f"/units/{fleet.north_id}/limits/count/day"), headers=admin)
    assert removed.status_code == 200, removed.text
    [event] = await events_since(state, mark)
    assert len(event.payload["limits_before"]) == 3
    assert {(limit["metric"], limit["period"]) for limit in event.payload["limits_after"]} == {
        ("amount", "day"), ("volume", "day")}

    mark = await last_event_id(state)
    card_limits = await http.put(fleet.url(f"/cards/{fleet.ivan_card_id}/limits"), headers=admin,
                                 json={"limits": [{"metric": "amount", "period": "transaction", "max_value": 500_000}]})
    assert card_limits.status_code == 200, card_limits.text
    [event] = await events_since(state, mark)
    assert event.payload == event.payload | {
        "scope_kind": "card", "scope_id": fleet.ivan_card_id, "card_id": fleet.ivan_card_id,
        "org_unit_id": fleet.north_east_id,
        "limits_after": [{"metric": "amount", "period": "transaction", "max_value": 500_000}],
    }
    assert event.payload["card_last4"] == fleet.world.pan[-4:]


async def test_control_changes_emit_one_event_and_a_refused_change_none(state, http, fleet):
    admin = fleet.admin.headers
    controls = {"allowed_products": ["diesel", "adblue"], "allowed_weekdays": [1, 2, 3, 4, 5],
                "allowed_hours": [{"from": "06:00", "to": "22:00"}]}
    mark = await last_event_id(state)

    reply = await http.put(fleet.url(f"/units/{fleet.north_id}/controls"), headers=admin, json=controls)
    assert reply.status_code == 200, reply.text
    [event] = await events_since(state, mark)
    assert event.payload["change"] == "controls"
    assert event.payload["controls_before"]["allowed_products"] is None
    assert event.payload["controls_after"] == event.payload["controls_after"] | {
        "allowed_products": ["diesel", "adblue"], "allowed_weekdays": [1, 2, 3, 4, 5],
        "allowed_hours": [[360, 1320]], "allowed_regions": None}

    before = await database_dump(state)
    wider = await http.put(fleet.url(f"/units/{fleet.north_east_id}/controls"), headers=admin,
                           json={"allowed_products": ["diesel", "ai95"]})
    assert wider.status_code == 422, wider.text
    assert await database_dump(state) == before

    mark = await last_event_id(state)
    empty = await http.put(fleet.url(f"/cards/{fleet.ivan_card_id}/limits"), headers=admin, json={"limits": []})
    assert empty.status_code == 200, empty.text
    assert await _types(state, mark) == []  # no limits where there were none: no change
