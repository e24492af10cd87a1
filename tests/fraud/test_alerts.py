"""The alert queue over HTTP: filters and pages, the detail with the authorization and its trace,
assign, comment, resolve; every refusal is a 4xx with a code and changes nothing."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from processing.audit.models import AuditEntry
from processing.db.engine import unit_of_work
from processing.risk.models import AlertSource, FraudAlert
from tests.factories import database_dump
from tests.fraud.support import authorize, raise_alert, signed_in_again


async def real_alert(state, authorization_id: int, rule_code: str) -> int:
    """The one alert the authorization path raised for this rule on this authorization."""
    async with unit_of_work(state.sessionmaker) as session:
        (alert_id,) = (await session.execute(
            select(FraudAlert.id).where(FraudAlert.authorization_id == authorization_id,
                                        FraudAlert.rule_code == rule_code))).scalars().all()
        return alert_id


async def queue(state, http, clock, desk) -> dict[str, int]:
    """Four alerts raised by the real rules through the terminal API, and one as the worker raises it:

    - a_velocity: fleet A's card tries a fifth time in ten minutes (card_velocity: decline, high);
    - b_velocity: fleet B's card, card_velocity again;
    - b_overfill: fleet B's card holds a second tankful within four hours (tank_overfill: review, medium);
    - a_mismatch: fleet A's diesel vehicle buys petrol (product_mismatch: alert, medium; the core says 57);
    - a_outlier: fleet A's completed purchase scored as an outlier by the worker (medium)."""
    ids = {}
    for _ in range(4):
        await authorize(http, clock, desk.world, amount_minor=10_000)
        clock.advance(60)
    fifth = await authorize(http, clock, desk.world, amount_minor=10_000)
    assert fifth.body["response_code"] == "59", fifth.body
    ids["a_velocity"] = await real_alert(state, fifth.body["authorization_id"], "card_velocity")
    ids["a_velocity_authorization"] = fifth.body["authorization_id"]
    clock.advance(60)

    for _ in range(4):
        await authorize(http, clock, desk.other_world, amount_minor=10_000)
        clock.advance(10)
    fifth = await authorize(http, clock, desk.other_world, amount_minor=10_000)
    ids["b_velocity"] = await real_alert(state, fifth.body["authorization_id"], "card_velocity")
    clock.advance(11 * 60)

    await authorize(http, clock, desk.other_world)
    clock.advance(60)
    second = await authorize(http, clock, desk.other_world)
    assert second.body["response_code"] == "00", second.body
    ids["b_overfill"] = await real_alert(state, second.body["authorization_id"], "tank_overfill")
    clock.advance(60)

    petrol = await authorize(http, clock, desk.world, amount_minor=10_000, product="ai95")
    assert petrol.body["response_code"] == "57", petrol.body
    ids["a_mismatch"] = await real_alert(state, petrol.body["authorization_id"], "product_mismatch")
    clock.advance(60)

    paid = await authorize(http, clock, desk.world, amount_minor=10_000)
    ids["a_outlier"] = await raise_alert(state, paid.body["authorization_id"], rule_code="completion_outlier",
                                         severity="medium", outcome="alert", source=AlertSource.WORKER)
    async with unit_of_work(state.sessionmaker) as session:
        assert await session.scalar(select(func.count()).select_from(FraudAlert)) == 5, "only the planned alerts"
    # Twenty minutes went by: longer than an access token lives.
    desk.security = await signed_in_again(state, desk.security)
    return ids


async def test_queue_filters_and_pages_newest_first(state, http, clock, desk):
    ids = await queue(state, http, clock, desk)
    headers = desk.security.headers

    everything = await http.get("/v1/fraud/alerts", headers=headers)
    assert everything.status_code == 200, everything.text
    order = ["a_outlier", "a_mismatch", "b_overfill", "b_velocity", "a_velocity"]
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

    assert await listed(severity="high") == [ids["b_velocity"], ids["a_velocity"]]
    assert await listed(severity=["low", "medium"]) == [ids["a_outlier"], ids["a_mismatch"], ids["b_overfill"]]
    assert await listed(rule_code="tank_overfill") == [ids["b_overfill"]]
    assert await listed(company_id=desk.other_world.company_id) == [ids["b_overfill"], ids["b_velocity"]]
    assert await listed(card_id=desk.world.card_id, severity="high") == [ids["a_velocity"]]
    assert await listed(source="worker") == [ids["a_outlier"]]
    assert await listed(source="authorization", status="open") == [ids[name] for name in order[1:]]
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
    comment = await http.post(f"/v1/fraud/alerts/{ids['a_velocity']}/comments", headers=desk.security.headers,
                              json={"body": "Five tries in five minutes at one pump."})
    assert comment.status_code == 201, comment.text
    assert comment.json()["author"]["user_id"] == desk.security.user_id

    reply = await http.get(f"/v1/fraud/alerts/{ids['a_velocity']}", headers=desk.security.headers)
    assert reply.status_code == 200, reply.text
    detail = reply.json()
    alert = detail["alert"]
    assert (alert["rule_code"], alert["outcome"], alert["severity"], alert["source"]) == (
        "card_velocity", "decline", "high", "authorization")
    authorization = detail["authorization"]
    assert authorization["authorization_id"] == ids["a_velocity_authorization"]
    assert (authorization["response_code"], authorization["fraud_verdict"]) == ("59", "decline")
    trace = authorization["fraud_trace"]
    (velocity,) = [rule for rule in trace["rules"] if rule["rule"] == "card_velocity"]
    assert velocity["fired"] is True and velocity["outcome"] == "decline"
    assert (velocity["rule_id"], velocity["version"]) == (alert["rule_id"], alert["rule_version"])
    assert trace["verdict"] == "decline"
    assert authorization["station"]["station_id"] == desk.world.station_id
    assert authorization["card"]["card_id"] == desk.world.card_id
    assert [c["body"] for c in detail["comments"]] == ["Five tries in five minutes at one pump."]
    assert desk.world.pan not in reply.text and desk.world.phone.dpan not in reply.text

    same = await http.get(f"/v1/fraud/authorizations/{ids['a_velocity_authorization']}",
                          headers=desk.security.headers)
    assert same.status_code == 200
    assert same.json() == authorization

    missing = await http.get("/v1/fraud/alerts/999999", headers=desk.security.headers)
    assert (missing.status_code, missing.json()["error"]) == (404, "alert_not_found")


async def test_assign_comment_resolve(state, http, clock, desk):
    ids = await queue(state, http, clock, desk)
    url = f"/v1/fraud/alerts/{ids['a_mismatch']}"
    headers = desk.security.headers

    assigned = await http.post(f"{url}/assign", headers=headers, json={"assignee_user_id": desk.colleague.user_id})
    assert assigned.status_code == 200, assigned.text
    assert assigned.json()["status"] == "in_progress"
    assert assigned.json()["assignee"]["user_id"] == desk.colleague.user_id
    mine = await http.get("/v1/fraud/alerts", params={"assignee_user_id": desk.colleague.user_id}, headers=headers)
    assert [alert["alert_id"] for alert in mine.json()["alerts"]] == [ids["a_mismatch"]]

    back = await http.post(f"{url}/assign", headers=headers, json={"assignee_user_id": None})
    assert (back.json()["status"], back.json()["assignee"]) == ("open", None)

    resolved = await http.post(f"{url}/resolve", headers=headers,
                               json={"resolution": "not_fraud", "note": "A hired car, agreed with the fleet."})
    assert resolved.status_code == 200, resolved.text
    body = resolved.json()
    assert body["status"] == "resolved_not_fraud"
    assert body["resolution_note"] == "A hired car, agreed with the fleet."
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
        ("fraud_alert.assign", ids["a_mismatch"], None, "security"),
        ("fraud_alert.assign", ids["a_mismatch"], None, "security"),
        ("fraud_alert.resolve", ids["a_mismatch"], None, "security"),
        ("fraud_alert.resolve", ids["a_velocity"], None, "security"),
        ("fraud_alert.comment", ids["a_mismatch"], None, "security"),
    ]


async def test_refusals_change_nothing(state, http, clock, desk):
    ids = await queue(state, http, clock, desk)
    headers = desk.security.headers
    done = await http.post(f"/v1/fraud/alerts/{ids['b_overfill']}/resolve", headers=headers,
                           json={"resolution": "fraud", "note": "Cloned token."})
    assert done.status_code == 200
    before = await database_dump(state)
    open_alert, resolved_alert = f"/v1/fraud/alerts/{ids['a_mismatch']}", f"/v1/fraud/alerts/{ids['b_overfill']}"
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
