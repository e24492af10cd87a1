"""The alert queue and an alert's page, used as an officer would: filters (also as htmx partials),
pages, the decision's trace, and every action (assign, comment, resolve, block the card, case),
each also refused with the problem shown next to its field and nothing changed."""

from __future__ import annotations

import re

from sqlalchemy import select, update

from processing.audit.models import AuditEntry
from processing.authorization.models import Authorization
from processing.cards.models import Card
from processing.db.engine import unit_of_work
from processing.risk.models import FraudAlert
from tests.factories import database_dump, make_world
from tests.fraud.console.test_request_checks import assert_no_inline_code
from tests.fraud.support import authorize, raise_alert

TRACE = {"ruleset": 3, "verdict": "decline", "context": {"hold_litres": 45.8, "vehicle_tank_litres": 60},
         "rules": [{"rule": "card_velocity", "rule_id": 1, "version": 2, "outcome": "decline", "fired": True,
                    "inputs": {"attempts": 5, "max_authorizations": 4}, "detail": "5 authorizations in 10 minutes"},
                   {"rule": "tank_overfill", "rule_id": 2, "version": 1, "outcome": "review", "fired": False,
                    "inputs": {"litres": 45.8, "limit_litres": 72}, "detail": "45.8 l of 72 l allowed"}]}


def alert_ids_on(page_html: str) -> list[int]:
    return [int(number) for number in re.findall(r'href="/console/alerts/(\d+)"', page_html)]


async def alerts_of_two_fleets(state, http, clock) -> dict:
    fleet_a, fleet_b = await make_world(state), await make_world(state)
    ids = {"fleet_a": fleet_a, "fleet_b": fleet_b}
    for name, world, rule, severity in (("a_velocity", fleet_a, "card_velocity", "high"),
                                        ("a_hours", fleet_a, "unusual_hours", "low"),
                                        ("b_travel", fleet_b, "impossible_travel", "critical")):
        # A small purchase: two of them stay far below the tank (no tank_overfill of its own).
        reply = await authorize(http, clock, world, amount_minor=50_000)
        clock.advance(60)
        ids[name] = await raise_alert(state, reply.body["authorization_id"], rule_code=rule, severity=severity,
                                      summary=f"{rule} fired on {name}")
        ids[name + "_authorization"] = reply.body["authorization_id"]
    return ids


async def test_the_queue_filters_by_status_severity_rule_company_and_card(console, state, http, clock):
    ids = await alerts_of_two_fleets(state, http, clock)
    queue = await console.open("/console/alerts")
    assert queue.status_code == 200
    assert alert_ids_on(queue.text) == [ids["b_travel"], ids["a_hours"], ids["a_velocity"]]
    assert ids["fleet_a"].pan not in queue.text and ids["fleet_a"].pan[-4:] in queue.text
    assert_no_inline_code(queue.text)

    async def listed(**params) -> list[int]:
        reply = await console.open("/console/alerts", params=params)
        assert reply.status_code == 200, reply.text
        return alert_ids_on(reply.text)

    assert await listed(severity="critical") == [ids["b_travel"]]
    assert await listed(rule="unusual_hours") == [ids["a_hours"]]
    assert await listed(company=str(ids["fleet_a"].company_id)) == [ids["a_hours"], ids["a_velocity"]]
    assert await listed(card=str(ids["fleet_b"].card_id), status="any") == [ids["b_travel"]]
    assert await listed(status="resolved_fraud") == []
    assert await listed(mine="true") == []
    assert await listed(company="", card="", severity="", rule="") == alert_ids_on(queue.text)

    # The filter form asks htmx for the results only, and pushes the filtered URL.
    partial = await console.open("/console/alerts", params={"severity": "high"},
                                 headers={"HX-Request": "true", "HX-Target": "alert-results"})
    assert partial.status_code == 200 and "<html" not in partial.text and "<table" in partial.text
    assert alert_ids_on(partial.text) == [ids["a_velocity"]]
    # A history restore of the same URL is a whole page again.
    restored = await console.open("/console/alerts", params={"severity": "high"},
                                  headers={"HX-Request": "true", "HX-Target": "alert-results",
                                           "HX-History-Restore-Request": "true"})
    assert "<html" in restored.text

    for params, field in (({"company": "abc"}, "Company"), ({"card": "0"}, "Card"), ({"status": "closed"}, "Status"),
                          ({"rule": "no_such_rule"}, "Rule"), ({"severity": "extreme"}, "Severity")):
        refused = await console.open("/console/alerts", params=params)
        assert refused.status_code == 422 and f"<strong>{field}</strong>" in refused.text, params
    assert (await console.open("/console/alerts", params={"cursor": "garbage"})).status_code == 422


async def test_the_queue_pages_newest_first(console, state, http, clock):
    world = await make_world(state)
    reply = await authorize(http, clock, world)
    created = [await raise_alert(state, reply.body["authorization_id"]) for _ in range(27)]
    first = await console.open("/console/alerts")
    assert alert_ids_on(first.text) == created[::-1][:25]
    [older] = re.findall(r'<a href="(/console/alerts\?[^"]*cursor=[^"]+)"', first.text)
    second = await console.open(older.replace("&amp;", "&"))
    assert alert_ids_on(second.text) == created[1::-1]
    assert "Older alerts" not in second.text and "First page" in second.text


async def test_the_alert_page_shows_the_decision_and_the_rules_that_ran(console, state, http, clock):
    ids = await alerts_of_two_fleets(state, http, clock)
    async with unit_of_work(state.sessionmaker) as session:
        await session.execute(update(Authorization).where(Authorization.id == ids["a_velocity_authorization"])
                              .values(fraud_trace=TRACE))
    page = await console.open(f"/console/alerts/{ids['a_velocity']}")
    assert page.status_code == 200
    text = page.text
    assert "card_velocity fired on a_velocity" in text and ids["fleet_a"].pan not in text
    assert "Rule set 3" in text and "5 authorizations in 10 minutes" in text and "45.8 l of 72 l allowed" in text
    assert '<tr class="fired">' in text and text.count('<tr class="fired">') == 1
    assert "max authorizations</span> 4" in text and "vehicle tank litres</span> 60" in text
    assert ids["fleet_a"].terminal_code in text
    assert_no_inline_code(text)
    assert (await console.open("/console/alerts/999999")).status_code == 404
    assert (await console.open("/console/alerts/0")).status_code == 422


async def audit_actions(state) -> list[tuple[str, str]]:
    async with unit_of_work(state.readonly_sessionmaker) as session:
        rows = await session.execute(select(AuditEntry.action, AuditEntry.actor_role).order_by(AuditEntry.id))
        return [tuple(row) for row in rows]


async def test_assign_comment_and_resolve_from_the_alert_page(console, state, http, clock, officer_id):
    ids = await alerts_of_two_fleets(state, http, clock)
    url = f"/console/alerts/{ids['a_hours']}"
    await console.open(url)

    assigned = await console.submit(f"{url}/assign", {"to": "me"})
    assert assigned.status_code == 303 and assigned.headers["location"] == f"{url}?done=assigned"
    page = await console.open(assigned.headers["location"])
    assert "The alert is assigned to you." in page.text and "Put back in the queue" in page.text
    assert alert_ids_on((await console.open("/console/alerts", params={"mine": "true"})).text) == [ids["a_hours"]]

    before = await database_dump(state)
    empty = await console.submit(f"{url}/comment", {"body": "   "})
    assert empty.status_code == 422
    assert re.search(r'<p class="field-error" id="comment-error">[^<]+</p>', empty.text)
    unresolved = await console.submit(f"{url}/resolve", {"resolution": "maybe", "note": ""})
    assert unresolved.status_code == 422
    assert 'id="resolution-error"' in unresolved.text and 'id="note-error"' in unresolved.text
    assert await database_dump(state) == before

    commented = await console.submit(f"{url}/comment", {"body": "Driver confirms a night shift <b>today</b>."})
    assert commented.status_code == 303
    page = await console.open(commented.headers["location"])
    assert "Driver confirms a night shift &lt;b&gt;today&lt;/b&gt;." in page.text  # escaped, never markup

    resolved = await console.submit(f"{url}/resolve", {"resolution": "not_fraud", "note": "Planned night shift."})
    assert resolved.status_code == 303
    page = await console.open(resolved.headers["location"])
    assert "resolved not fraud" in page.text and "Planned night shift." in page.text
    assert "Assign to me" not in page.text
    again = await console.submit(f"{url}/resolve", {"resolution": "fraud", "note": "Changed my mind."})
    assert again.status_code == 409 and "already resolved_not_fraud" in again.text

    async with unit_of_work(state.readonly_sessionmaker) as session:
        alert = await session.get(FraudAlert, ids["a_hours"])
        assert (alert.status, alert.assignee_user_id, alert.resolved_by_user_id) == (
            "resolved_not_fraud", officer_id, officer_id)
    assert [action for action, role in await audit_actions(state) if role == "security"] == [
        "fraud_alert.assign", "fraud_alert.comment", "fraud_alert.resolve"]


async def test_block_the_card_from_the_alert_and_the_next_authorization_is_declined_62(console, state, http, clock):
    ids = await alerts_of_two_fleets(state, http, clock)
    url = f"/console/alerts/{ids['a_velocity']}"
    await console.open(url)
    before = await database_dump(state)
    no_reason = await console.submit(f"{url}/block-card", {"reason": ""})
    assert no_reason.status_code == 422 and 'id="reason-error"' in no_reason.text
    assert await database_dump(state) == before

    blocked = await console.submit(f"{url}/block-card", {"reason": "Alert: five tries in ten minutes"})
    assert blocked.status_code == 303
    page = await console.open(blocked.headers["location"])
    assert "The card is blocked" in page.text and "Block card</button>" not in page.text
    async with unit_of_work(state.readonly_sessionmaker) as session:
        card = await session.get(Card, ids["fleet_a"].card_id)
        assert (card.status, card.status_reason) == ("blocked", "Alert: five tries in ten minutes")
    assert ("card.block", "security") in await audit_actions(state)

    clock.advance(60)
    declined = await authorize(http, clock, ids["fleet_a"])
    assert declined.body["response_code"] == "62"


async def test_open_a_case_from_an_alert_and_add_another_alert_of_the_card(console, state, http, clock):
    ids = await alerts_of_two_fleets(state, http, clock)
    await console.open(f"/console/alerts/{ids['a_velocity']}")
    opened = await console.submit(f"/console/alerts/{ids['a_velocity']}/case", {"title": "Night trips"})
    assert opened.status_code == 303 and "done=case_opened" in opened.headers["location"]
    case_url = opened.headers["location"].split("?")[0]
    case_page = await console.open(opened.headers["location"])
    assert "Night trips" in case_page.text and alert_ids_on(case_page.text) == [ids["a_velocity"]]

    other = await console.open(f"/console/alerts/{ids['a_hours']}")
    case_id = int(case_url.rsplit("/", 1)[1])
    assert f"Add to case #{case_id}: Night trips" in other.text
    added = await console.submit(f"/console/alerts/{ids['a_hours']}/case", {"case_id": str(case_id)})
    assert added.status_code == 303 and added.headers["location"] == f"{case_url}?done=case_added"
    case_page = await console.open(added.headers["location"])
    assert sorted(alert_ids_on(case_page.text)) == sorted([ids["a_velocity"], ids["a_hours"]])

    # An alert of another card does not join this card's case; nothing changes.
    before = await database_dump(state)
    refused = await console.submit(f"/console/alerts/{ids['b_travel']}/case", {"case_id": str(case_id)})
    assert refused.status_code in (409, 422) and "Refused" not in refused.text
    assert await database_dump(state) == before
