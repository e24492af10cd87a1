"""Cases over HTTP: alerts of one card grouped, commented, resolved together; another card's alert
is refused and nothing changes."""

from __future__ import annotations

from sqlalchemy import select

from processing.audit.models import AuditEntry
from processing.db.engine import unit_of_work
from processing.risk.models import FraudAlert
from tests.factories import database_dump
from tests.fraud.support import authorize


async def alerts_of(state, http, clock, world, how_many: int) -> list[int]:
    """Alerts raised by the real rules: holds of 45.8 l on a 60 l tank, ten seconds apart, overfill
    it (tank_overfill, review) from the second one on (card velocity may fire too: not counted)."""
    ids = []
    for _ in range(how_many + 1):
        reply = await authorize(http, clock, world, amount_minor=300_000)
        clock.advance(10)
        async with unit_of_work(state.sessionmaker) as session:
            ids += (await session.execute(select(FraudAlert.id).where(
                FraudAlert.authorization_id == reply.body["authorization_id"],
                FraudAlert.rule_code == "tank_overfill"))).scalars().all()
        if len(ids) == how_many:
            break
    assert len(ids) == how_many
    return ids


async def test_open_add_comment_resolve(state, http, clock, desk):
    headers = desk.security.headers
    first, second, third = await alerts_of(state, http, clock, desk.world, 3)
    resolved_before = await http.post(f"/v1/fraud/alerts/{second}/resolve", headers=headers,
                                      json={"resolution": "not_fraud", "note": "Known driver."})
    assert resolved_before.status_code == 200

    opened = await http.post("/v1/fraud/cases", headers=headers,
                             json={"card_id": desk.world.card_id, "alert_ids": [first, second]})
    assert opened.status_code == 201, opened.text
    case = opened.json()
    case_id = case["case"]["case_id"]
    assert case["case"]["status"] == "open"
    assert case["case"]["card"]["card_id"] == desk.world.card_id
    assert case["case"]["company"]["company_id"] == desk.world.company_id
    assert case["case"]["title"] == f"Card •••• {desk.world.pan[-4:]}: 2 alert(s)"
    assert (case["case"]["alert_count"], case["case"]["unresolved_alert_count"]) == (2, 1)
    assert [alert["alert_id"] for alert in case["alerts"]] == [second, first]
    assert all(alert["case_id"] == case_id for alert in case["alerts"])
    assert case["case"]["created_by"]["user_id"] == desk.security.user_id

    added = await http.post(f"/v1/fraud/cases/{case_id}/alerts", headers=headers, json={"alert_ids": [third, first]})
    assert added.status_code == 200, added.text
    assert [alert["alert_id"] for alert in added.json()["alerts"]] == [third, second, first]

    comment = await http.post(f"/v1/fraud/cases/{case_id}/comments", headers=headers,
                              json={"body": "Three attempts at one station; asked the fleet."})
    assert comment.status_code == 201, comment.text

    listed = await http.get("/v1/fraud/cases", params={"card_id": desk.world.card_id, "status": "open"},
                            headers=headers)
    assert [item["case_id"] for item in listed.json()["cases"]] == [case_id]
    in_case = await http.get("/v1/fraud/alerts", params={"case_id": case_id}, headers=headers)
    assert len(in_case.json()["alerts"]) == 3

    resolved = await http.post(f"/v1/fraud/cases/{case_id}/resolve", headers=headers,
                               json={"resolution": "fraud", "note": "The card was lent out."})
    assert resolved.status_code == 200, resolved.text
    detail = resolved.json()
    assert detail["case"]["status"] == "resolved_fraud"
    assert detail["case"]["unresolved_alert_count"] == 0
    statuses = {alert["alert_id"]: (alert["status"], alert["resolution_note"]) for alert in detail["alerts"]}
    # The open alerts take the case's resolution; the one resolved before keeps its own.
    assert statuses == {first: ("resolved_fraud", "The card was lent out."),
                        third: ("resolved_fraud", "The card was lent out."),
                        second: ("resolved_not_fraud", "Known driver.")}
    assert [c["body"] for c in detail["comments"]] == ["Three attempts at one station; asked the fleet."]

    fetched = await http.get(f"/v1/fraud/cases/{case_id}", headers=headers)
    assert fetched.json() == detail

    async with unit_of_work(state.sessionmaker) as session:
        actions = [row.action for row in (await session.execute(
            select(AuditEntry.action).where(AuditEntry.target_kind.in_(["fraud_case", "fraud_alert"]))
            .order_by(AuditEntry.id))).all()]
    assert actions == ["fraud_alert.resolve", "fraud_case.open", "fraud_case.add_alerts", "fraud_case.comment",
                       "fraud_alert.resolve", "fraud_alert.resolve", "fraud_case.resolve"]


async def test_a_case_refuses_another_cards_alerts_and_bad_input(state, http, clock, desk):
    headers = desk.security.headers
    ours = await alerts_of(state, http, clock, desk.world, 2)
    theirs = await alerts_of(state, http, clock, desk.other_world, 1)
    opened = await http.post("/v1/fraud/cases", headers=headers,
                             json={"card_id": desk.world.card_id, "alert_ids": [ours[0]]})
    case_id = opened.json()["case"]["case_id"]
    closed = await http.post("/v1/fraud/cases", headers=headers,
                             json={"card_id": desk.world.card_id, "alert_ids": [ours[1]]})
    closed_id = closed.json()["case"]["case_id"]
    await http.post(f"/v1/fraud/cases/{closed_id}/resolve", headers=headers,
                    json={"resolution": "not_fraud", "note": "ok"})
    extra = await alerts_of(state, http, clock, desk.world, 1)

    before = await database_dump(state)
    for path, body, status, code in [
        ("/v1/fraud/cases", {"card_id": desk.world.card_id, "alert_ids": [extra[0], theirs[0]]},
         422, "alert_of_another_card"),
        ("/v1/fraud/cases", {"card_id": desk.other_world.card_id, "alert_ids": [extra[0]]},
         422, "alert_of_another_card"),
        ("/v1/fraud/cases", {"card_id": desk.world.card_id, "alert_ids": [ours[0]]}, 409, "alert_in_another_case"),
        ("/v1/fraud/cases", {"card_id": desk.world.card_id, "alert_ids": [extra[0], 999999]}, 404, "alert_not_found"),
        ("/v1/fraud/cases", {"card_id": 999999, "alert_ids": [extra[0]]}, 404, "card_not_found"),
        ("/v1/fraud/cases", {"card_id": desk.world.card_id, "alert_ids": []}, 422, "invalid_request"),
        ("/v1/fraud/cases", {"card_id": desk.world.card_id, "alert_ids": [extra[0], extra[0]]},
         422, "invalid_request"),
        ("/v1/fraud/cases", {"card_id": desk.world.card_id, "alert_ids": [extra[0]], "title": ""},
         422, "invalid_request"),
        (f"/v1/fraud/cases/{case_id}/alerts", {"alert_ids": [theirs[0]]}, 422, "alert_of_another_card"),
        (f"/v1/fraud/cases/{case_id}/alerts", {"alert_ids": [ours[1]]}, 409, "alert_in_another_case"),
        (f"/v1/fraud/cases/{closed_id}/alerts", {"alert_ids": [extra[0]]}, 409, "case_resolved"),
        (f"/v1/fraud/cases/{closed_id}/resolve", {"resolution": "fraud", "note": "x"}, 409, "case_resolved"),
        ("/v1/fraud/cases/999999/resolve", {"resolution": "fraud", "note": "x"}, 404, "case_not_found"),
        ("/v1/fraud/cases/999999/comments", {"body": "x"}, 404, "case_not_found"),
        (f"/v1/fraud/cases/{case_id}/comments", {"body": ""}, 422, "invalid_request"),
    ]:
        reply = await http.post(path, headers=headers, json=body)
        assert (reply.status_code, reply.json()["error"]) == (status, code), (path, body, reply.text)
    missing = await http.get("/v1/fraud/cases/999999", headers=headers)
    assert (missing.status_code, missing.json()["error"]) == (404, "case_not_found")
    assert await database_dump(state) == before


async def test_cases_page_newest_first(state, http, clock, desk):
    headers = desk.security.headers
    alert_ids = await alerts_of(state, http, clock, desk.world, 3)
    case_ids = []
    for alert_id in alert_ids:
        reply = await http.post("/v1/fraud/cases", headers=headers,
                                json={"card_id": desk.world.card_id, "alert_ids": [alert_id], "title": f"#{alert_id}"})
        case_ids.append(reply.json()["case"]["case_id"])
    first = await http.get("/v1/fraud/cases", params={"limit": 2}, headers=headers)
    assert [item["case_id"] for item in first.json()["cases"]] == case_ids[:0:-1]
    rest = await http.get("/v1/fraud/cases", params={"limit": 2, "cursor": first.json()["next_cursor"]},
                          headers=headers)
    assert [item["case_id"] for item in rest.json()["cases"]] == [case_ids[0]]
    assert rest.json()["next_cursor"] is None
    other = await http.get("/v1/fraud/cases", params={"company_id": desk.other_world.company_id}, headers=headers)
    assert other.json()["cases"] == []
