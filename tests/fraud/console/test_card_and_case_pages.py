"""Finding a card (last four, DPAN, driver, company), its page and timeline (paged with htmx and
without), blocking and unblocking it with a reason; the cases list and a case resolved whole."""

from __future__ import annotations

import re

from sqlalchemy import select

from processing.audit.models import AuditEntry
from processing.cards.models import Card
from processing.db.engine import unit_of_work
from processing.orgs.models import Company
from processing.risk.models import FraudAlert
from tests.factories import database_dump, make_world
from tests.fraud.console.test_request_checks import assert_no_inline_code
from tests.fraud.support import authorize, raise_alert


def card_ids_on(page_html: str) -> list[int]:
    return [int(number) for number in re.findall(r'href="/console/cards/(\d+)"', page_html)]


async def test_find_a_card_by_last_four_dpan_driver_or_company(console, state):
    fleet = await make_world(state)
    other = await make_world(state)
    search = await console.open("/console/cards")
    assert search.status_code == 200 and "Search by any of the fields above." in search.text
    assert_no_inline_code(search.text)

    found = await console.submit("/console/cards", {"last4": fleet.pan[-4:]})
    assert found.status_code == 200 and fleet.card_id in card_ids_on(found.text)
    assert fleet.pan not in found.text

    by_dpan = await console.submit("/console/cards", {"dpan": fleet.phone.dpan})
    assert card_ids_on(by_dpan.text) == [fleet.card_id]
    assert fleet.phone.dpan not in by_dpan.text  # looked up by its hash, never written back

    async with unit_of_work(state.readonly_sessionmaker) as session:
        other_name = (await session.get(Company, other.company_id)).name
    assert card_ids_on((await console.submit("/console/cards", {"company": other_name})).text) == [other.card_id]
    by_company = await console.submit("/console/cards", {"company": "Fleet"})
    assert set(card_ids_on(by_company.text)) == {fleet.card_id, other.card_id}
    by_driver = await console.submit("/console/cards", {"driver": "ivan pet", "company": "Fleet"})
    assert set(card_ids_on(by_driver.text)) == {fleet.card_id, other.card_id}
    # Every field given must match.
    mismatch = await console.submit("/console/cards", {"last4": fleet.pan[-4:], "company": other_name})
    assert other.card_id not in card_ids_on(mismatch.text) and fleet.card_id not in card_ids_on(mismatch.text)

    # The results alone for htmx.
    partial = await console.submit("/console/cards", {"dpan": fleet.phone.dpan},
                                   headers={"HX-Request": "true", "HX-Target": "card-results"})
    assert "<html" not in partial.text and card_ids_on(partial.text) == [fleet.card_id]

    for form, problem in (({}, "Fill in at least one of the fields."), ({"last4": "12a4"}, "Last four digits"),
                          ({"dpan": "123"}, "DPAN"), ({"driver": "x"}, "Driver")):
        refused = await console.submit("/console/cards", form)
        assert refused.status_code == 422 and problem in refused.text, form
    assert (await console.submit("/console/cards", {"last4": "1234"}, csrf_token="forged")).status_code == 403


async def test_the_card_page_shows_its_timeline_and_pages_it(console, state, http, clock):
    fleet = await make_world(state)
    authorization_ids = []
    for _ in range(22):  # every 4 minutes, 1.5 litres: below every rule's threshold
        reply = await authorize(http, clock, fleet, amount_minor=10_000)
        assert reply.body["response_code"] == "00", reply.body
        authorization_ids.append(reply.body["authorization_id"])
        clock.advance(240)
    alert_id = await raise_alert(state, authorization_ids[-1], summary="velocity on the last one")
    page = await console.open(f"/console/cards/{fleet.card_id}")
    assert page.status_code == 200 and fleet.pan not in page.text
    assert fleet.pan[-4:] in page.text and "Ivan Petrov" in page.text
    assert f'href="/console/alerts/{alert_id}"' in page.text
    assert_no_inline_code(page.text)
    rows = re.findall(r'<td class="kind">([^<]+)</td>', page.text)
    assert len(rows) == 20
    [more] = re.findall(r'hx-get="(/console/cards/\d+/timeline\?cursor=[^"]+)"', page.text)

    # htmx swaps the "older" row for the next rows (and a new "older" row when there are more).
    older = await console.open(more.replace("&amp;", "&"), headers={"HX-Request": "true"})
    assert older.status_code == 200 and "<html" not in older.text
    assert older.text.count('<td class="kind">') == 22 + 1 + 1 - 20  # 22 authorizations, an alert, an enrollment
    # Without htmx the same link is the card page with the older entries.
    whole = await console.open(more.replace("&amp;", "&"))
    assert "<html" in whole.text and "Back to the newest entries" in whole.text
    assert (await console.open(f"/console/cards/{fleet.card_id}/timeline?cursor=nonsense")).status_code == 422
    assert (await console.open("/console/cards/424242")).status_code == 404


async def test_block_and_unblock_a_card_with_a_reason(console, state, http, clock):
    fleet = await make_world(state)
    url = f"/console/cards/{fleet.card_id}"
    await console.open(url)
    before = await database_dump(state)
    refused = await console.submit(f"{url}/block", {"reason": " "})
    assert refused.status_code == 422 and 'id="block_reason-error"' in refused.text
    assert await database_dump(state) == before

    blocked = await console.submit(f"{url}/block", {"reason": "Phone reported stolen"})
    assert blocked.status_code == 303 and blocked.headers["location"] == f"{url}?done=blocked"
    page = await console.open(blocked.headers["location"])
    assert "The card is blocked" in page.text and "Unblock card" in page.text and "Phone reported stolen" in page.text
    assert (await authorize(http, clock, fleet)).body["response_code"] == "62"

    not_blocked_again = await console.submit(f"{url}/unblock", {"reason": ""})
    assert not_blocked_again.status_code == 422 and 'id="unblock_reason-error"' in not_blocked_again.text
    unblocked = await console.submit(f"{url}/unblock", {"reason": "Phone found"})
    assert unblocked.status_code == 303
    assert "The card is unblocked" in (await console.open(unblocked.headers["location"])).text
    clock.advance(60)
    assert (await authorize(http, clock, fleet)).body["response_code"] == "00"
    twice = await console.submit(f"{url}/unblock", {"reason": "again"})
    assert twice.status_code == 409 and "not blocked" in twice.text

    async with unit_of_work(state.readonly_sessionmaker) as session:
        assert (await session.get(Card, fleet.card_id)).status == "active"
        entries = (await session.execute(
            select(AuditEntry.action, AuditEntry.actor_role, AuditEntry.company_id).order_by(AuditEntry.id))).all()
    assert [tuple(entry) for entry in entries] == [("card.block", "security", fleet.company_id),
                                                   ("card.unblock", "security", fleet.company_id)]


async def test_cases_list_and_a_case_resolved_with_its_alerts(console, state, http, clock):
    fleet = await make_world(state)
    reply = await authorize(http, clock, fleet)
    first = await raise_alert(state, reply.body["authorization_id"], rule_code="card_velocity")
    second = await raise_alert(state, reply.body["authorization_id"], rule_code="tank_overfill")
    await console.open(f"/console/alerts/{first}")
    opened = await console.submit(f"/console/alerts/{first}/case", {"title": ""})
    case_url = opened.headers["location"].split("?")[0]
    await console.submit(f"/console/alerts/{second}/case", {"case_id": case_url.rsplit("/", 1)[1]})

    listing = await console.open("/console/cases")
    assert listing.status_code == 200 and f'href="{case_url}"' in listing.text
    assert_no_inline_code(listing.text)
    assert f'href="{case_url}"' not in (await console.open("/console/cases?status=resolved_fraud")).text
    assert (await console.open("/console/cases?status=lost")).status_code == 422

    case_page = await console.open(case_url)
    assert_no_inline_code(case_page.text)
    commented = await console.submit(f"{case_url}/comment", {"body": "Both on one night."})
    assert commented.status_code == 303
    assert "Both on one night." in (await console.open(commented.headers["location"])).text
    no_note = await console.submit(f"{case_url}/resolve", {"resolution": "fraud", "note": ""})
    assert no_note.status_code == 422 and 'id="note-error"' in no_note.text
    resolved = await console.submit(f"{case_url}/resolve", {"resolution": "fraud", "note": "Card skimmed."})
    assert resolved.status_code == 303
    page = await console.open(resolved.headers["location"])
    assert "resolved fraud" in page.text and "Resolve the case" not in page.text
    async with unit_of_work(state.readonly_sessionmaker) as session:
        statuses = (await session.execute(select(FraudAlert.status).where(FraudAlert.id.in_([first, second])))).scalars()
        assert set(statuses) == {"resolved_fraud"}
    assert f'href="{case_url}"' in (await console.open("/console/cases?status=resolved_fraud")).text
