"""The alert queue over HTTP: filters and pages, the detail with the authorization and its trace,
assign, comment, resolve; every refusal is a 4xx with a code and changes nothing."""

from __future__ import annotations

import pytest
from sqlalchemy import select, update

from processing.audit.models import AuditEntry
from processing.authorization.models import Authorization
from processing.db.engine import unit_of_work
from processing.risk.models import AlertSource
from tests.factories import database_dump
from tests.fraud.support import authorize, raise_alert

TRACE = {"ruleset": 3, "verdict": "decline", "context": {"hold_litres": 45.8},
         "rules": [{"rule": "card_velocity", "rule_id": 1, "version": 2, "outcome": "decline", "fired": True,
                    "inputs": {"attempts": 5, "max": 4}, "detail": "5 authorizations in 10 minutes (max 4)"}]}


async def queue(state, http, clock, desk) -> dict[str, int]:
    """Five alerts: three on fleet A's card, two on fleet B's, of several rules and severities."""
    ids = {}
    for name, world, rule, severity, source in (
        ("a_velocity", desk.world, "card_velocity", "high", AlertSource.AUTHORIZATION),
        ("a_hours", desk.world, "unusual_hours", "low", AlertSource.AUTHORIZATION),
        ("b_travel", desk.other_world, "impossible_travel", "high", AlertSource.AUTHORIZATION),
        ("a_outlier", desk.world, "completion_outlier", "medium", AlertSource.WORKER),
        ("b_burst", desk.other_world, "terminal_card_burst", "medium", AlertSource.AUTHORIZATION),
    ):
        reply = await authorize(http, clock, world)
        clock.advance(60)
        ids[name] = await raise_alert(state, reply.body["authorization_id"], rule_code=rule, severity=severity,
                                      source=source)
        ids[name + "_authorization"] = reply.body["authorization_id"]
    return ids


async def test_queue_filters_and_pages_newest_first(state, http, clock, desk):
    ids = await queue(state, http, clock, desk)
    headers = desk.security.headers

    everything = await http.get("/v1/fraud/alerts", headers=headers)
    assert everything.status_code == 200, everything.text
    order = ["b_burst", "a_outlier", "b_travel", "a_hours", "a_velocity"]
    assert [alert["alert_id"] for alert in everything.json()["alerts"]] == [ids[name] for name in order]
    assert everything.json()["next_cursor"] is None
    first = everything.json()["alerts"][-1]
    assert first["card"]["masked_card_number"].endswith(desk.world.pan[-4:])
    assert desk.world.pan not in everything.text
    assert first["company"]["company_id"] == desk.world.company_id

    async def listed(**params) -> list[int]:
        reply = await http.get("/v1/fraud/alerts", params=params, headers=headers)
        assert reply.status_code == 200, reply.text
        return [alert["alert_id"] for alert in reply.json()["alerts"]]

    assert await listed(severity="high") == [ids["b_travel"], ids["a_velocity"]]
    assert await listed(severity=["low", "medium"]) == [ids["b_burst"], ids["a_outlier"], ids["a_hours"]]
    assert await listed(rule_code="unusual_hours") == [ids["a_hours"]]
    assert await listed(company_id=desk.other_world.company_id) == [ids["b_burst"], ids["b_travel"]]
    assert await listed(card_id=desk.world.card_id, severity="high") == [ids["a_velocity"]]
    assert await listed(source="worker") == [ids["a_outlier"]]
    assert await listed(status="resolved_fraud") == []

    seen, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = await http.get("/v1/fraud/alerts", params=params, headers=headers)
        assert page.status_code == 200, page.text
        seen += [alert["alert_id"] for alert in page.json()["alerts"]]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            break
    assert seen == [ids[name] for name in order]


@pytest.mark.parametrize("params, code", [
    ({"cursor": "not-a-cursor"}, "invalid_cursor"),
    ({"status": "closed"}, "invalid_request"),
    ({"severity": "extreme"}, "invalid_request"),
    ({"limit": 201}, "invalid_request"),
    ({"company_id": 0}, "invalid_request"),
    ({"rule_code": "DROP TABLE"}, "invalid_request"),
])
async def test_bad_filters_are_refused(state, http, clock, desk, params, code):
    reply = await http.get("/v1/fraud/alerts", params=params, headers=desk.security.headers)
    assert reply.status_code == 422, reply.text
    assert reply.json()["error"] == code


async def test_detail_has_the_authorization_its_trace_and_comments(state, http, clock, desk):
    ids = await queue(state, http, clock, desk)
    async with unit_of_work(state.sessionmaker) as session:
        await session.execute(update(Authorization).where(Authorization.id == ids["a_velocity_authorization"])
                              .values(fraud_trace=TRACE, fraud_verdict="decline"))
    comment = await http.post(f"/v1/fraud/alerts/{ids['a_velocity']}/comments", headers=desk.security.headers,
                              json={"body": "Five tries in ten minutes at one pump."})
    assert comment.status_code == 201, comment.text
    assert comment.json()["author"]["user_id"] == desk.security.user_id

    reply = await http.get(f"/v1/fraud/alerts/{ids['a_velocity']}", headers=desk.security.headers)
    assert reply.status_code == 200, reply.text
    detail = reply.json()
    assert detail["alert"]["rule_code"] == "card_velocity"
    authorization = detail["authorization"]
    assert authorization["authorization_id"] == ids["a_velocity_authorization"]
    assert authorization["fraud_trace"] == TRACE
    assert authorization["fraud_verdict"] == "decline"
    assert authorization["station"]["station_id"] == desk.world.station_id
    assert authorization["card"]["card_id"] == desk.world.card_id
    assert authorization["response_code"] == "00"
    assert [c["body"] for c in detail["comments"]] == ["Five tries in ten minutes at one pump."]
    assert desk.world.pan not in reply.text

    same = await http.get(f"/v1/fraud/authorizations/{ids['a_velocity_authorization']}",
                          headers=desk.security.headers)
    assert same.status_code == 200
    assert same.json() == authorization

    missing = await http.get("/v1/fraud/alerts/999999", headers=desk.security.headers)
    assert (missing.status_code, missing.json()["error"]) == (404, "alert_not_found")


async def test_assign_comment_resolve(state, http, clock, desk):
    ids = await queue(state, http, clock, desk)
    url = f"/v1/fraud/alerts/{ids['a_hours']}"
    headers = desk.security.headers

    assigned = await http.post(f"{url}/assign", headers=headers, json={"assignee_user_id": desk.colleague.user_id})
    assert assigned.status_code == 200, assigned.text
    assert assigned.json()["status"] == "in_progress"
    assert assigned.json()["assignee"]["user_id"] == desk.colleague.user_id
    mine = await http.get("/v1/fraud/alerts", params={"assignee_user_id": desk.colleague.user_id}, headers=headers)
    assert [alert["alert_id"] for alert in mine.json()["alerts"]] == [ids["a_hours"]]

    back = await http.post(f"{url}/assign", headers=headers, json={"assignee_user_id": None})
    assert (back.json()["status"], back.json()["assignee"]) == ("open", None)

    resolved = await http.post(f"{url}/resolve", headers=headers,
                               json={"resolution": "not_fraud", "note": "Night shift, agreed with the fleet."})
    assert resolved.status_code == 200, resolved.text
    body = resolved.json()
    assert body["status"] == "resolved_not_fraud"
    assert body["resolution_note"] == "Night shift, agreed with the fleet."
    assert body["resolved_by"]["user_id"] == desk.security.user_id
    assert body["resolved_at"] is not None

    fraud = await http.post(f"/v1/fraud/alerts/{ids['a_velocity']}/resolve", headers=headers,
                            json={"resolution": "fraud", "note": "Card shared with another driver."})
    assert fraud.json()["status"] == "resolved_fraud"

    later = await http.post(f"{url}/comments", headers=headers, json={"body": "The fleet confirmed in writing."})
    assert later.status_code == 201

    async with unit_of_work(state.sessionmaker) as session:
        actions = (await session.execute(
            select(AuditEntry.action, AuditEntry.target_id, AuditEntry.company_id, AuditEntry.actor_role)
            .where(AuditEntry.target_kind == "fraud_alert").order_by(AuditEntry.id)
        )).all()
    assert [tuple(row) for row in actions] == [
        ("fraud_alert.assign", ids["a_hours"], None, "security"),
        ("fraud_alert.assign", ids["a_hours"], None, "security"),
        ("fraud_alert.resolve", ids["a_hours"], None, "security"),
        ("fraud_alert.resolve", ids["a_velocity"], None, "security"),
        ("fraud_alert.comment", ids["a_hours"], None, "security"),
    ]


async def test_refusals_change_nothing(state, http, clock, desk):
    ids = await queue(state, http, clock, desk)
    headers = desk.security.headers
    done = await http.post(f"/v1/fraud/alerts/{ids['b_travel']}/resolve", headers=headers,
                           json={"resolution": "fraud", "note": "Cloned token."})
    assert done.status_code == 200
    before = await database_dump(state)
    open_alert, resolved_alert = f"/v1/fraud/alerts/{ids['a_hours']}", f"/v1/fraud/alerts/{ids['b_travel']}"
    for path, body, status, code in [
        (f"{open_alert}/assign", {"assignee_user_id": desk.operator.user_id}, 422, "invalid_assignee"),
        (f"{open_alert}/assign", {"assignee_user_id": desk.admin.user_id}, 422, "invalid_assignee"),
        (f"{open_alert}/assign", {"assignee_user_id": 987654}, 422, "invalid_assignee"),
        (f"{open_alert}/assign", {}, 422, "invalid_request"),
        (f"{resolved_alert}/assign", {"assignee_user_id": desk.security.user_id}, 409, "alert_resolved"),
        (f"{resolved_alert}/resolve", {"resolution": "not_fraud", "note": "again"}, 409, "alert_resolved"),
        (f"{open_alert}/resolve", {"resolution": "fraud"}, 422, "invalid_request"),
        (f"{open_alert}/resolve", {"resolution": "fraud", "note": ""}, 422, "invalid_request"),
        (f"{open_alert}/resolve", {"resolution": "maybe", "note": "x"}, 422, "invalid_request"),
        (f"{open_alert}/resolve", {"resolution": "fraud", "note": "x", "extra": 1}, 422, "invalid_request"),
        (f"{open_alert}/comments", {"body": ""}, 422, "invalid_request"),
        (f"{open_alert}/comments", {"body": "nul \x00 byte"}, 422, "invalid_request"),
        (f"{open_alert}/comments", {"body": "x" * 4001}, 422, "invalid_request"),
        ("/v1/fraud/alerts/999999/comments", {"body": "hello"}, 404, "alert_not_found"),
        ("/v1/fraud/alerts/999999/resolve", {"resolution": "fraud", "note": "x"}, 404, "alert_not_found"),
        ("/v1/fraud/alerts/0/resolve", {"resolution": "fraud", "note": "x"}, 422, "invalid_request"),
    ]:
        reply = await http.post(path, headers=headers, json=body)
        assert (reply.status_code, reply.json()["error"]) == (status, code), (path, body, reply.text)
    malformed = await http.post(f"{open_alert}/comments", headers={**headers, "Content-Type": "application/json"},
                                content=b"{not json")
    assert (malformed.status_code, malformed.json()["error"]) == (400, "malformed_json")
    assert await database_dump(state) == before


async def test_officers_are_the_active_security_team(state, http, clock, desk):
    reply = await http.get("/v1/fraud/officers", headers=desk.security.headers)
    assert reply.status_code == 200, reply.text
    assert sorted(officer["user_id"] for officer in reply.json()["officers"]) == sorted(
        [desk.security.user_id, desk.colleague.user_id])
