"""Cards for the security team over HTTP: search, detail, block (the next authorization through the
real terminal API is declined 62) and unblock, and the card's timeline."""

from __future__ import annotations

import logging

from sqlalchemy import select, update

from processing.audit.models import AuditEntry
from processing.cards.models import Card
from processing.cards.service import enroll_device, set_card_status
from processing.db.engine import unit_of_work
from processing.orgs.models import Company, Driver
from tests.factories import Phone, authorization_message, database_dump, extra_phones, next_transaction_id
from tests.fraud.support import authorize, raise_alert


async def name_things(state, desk) -> None:
    async with unit_of_work(state.sessionmaker) as session:
        await session.execute(update(Company).where(Company.id == desk.world.company_id)
                              .values(name="Taxi Vostok LLC"))
        await session.execute(update(Company).where(Company.id == desk.other_world.company_id)
                              .values(name="Kama Logistics"))
        card = await session.get(Card, desk.other_world.card_id)
        await session.execute(update(Driver).where(Driver.id == card.driver_id).values(full_name="Olga Sidorova"))


async def search(http, desk, **body):
    reply = await http.post("/v1/fraud/cards/search", headers=desk.security.headers, json=body)
    return reply


async def test_search_by_last4_dpan_driver_and_company(state, http, clock, desk, caplog):
    caplog.set_level(logging.DEBUG)
    await name_things(state, desk)
    more = await extra_phones(state, desk.world, 2)

    def ids(reply) -> list[int]:
        assert reply.status_code == 200, reply.text
        return [card["card_id"] for card in reply.json()["cards"]]

    assert ids(await search(http, desk, last4=desk.world.pan[-4:])) == [desk.world.card_id]
    by_dpan = await search(http, desk, dpan=desk.other_world.phone.dpan)
    assert ids(by_dpan) == [desk.other_world.card_id]
    assert desk.other_world.phone.dpan not in by_dpan.text
    assert desk.other_world.pan not in by_dpan.text
    assert by_dpan.json()["cards"][0]["masked_card_number"].endswith(desk.other_world.pan[-4:])
    assert desk.other_world.phone.dpan not in caplog.text
    assert ids(await search(http, desk, dpan="7" * 16)) == []

    async with unit_of_work(state.sessionmaker) as session:
        phone = (await session.execute(select(Driver.phone).join(Card, Card.driver_id == Driver.id)
                                       .where(Card.id == desk.world.card_id))).scalar_one()
    spaced = f"{phone[:2]} ({phone[2:5]}) {phone[5:8]}-{phone[8:10]}-{phone[10:]}"
    assert ids(await search(http, desk, driver=spaced)) == [desk.world.card_id]
    assert ids(await search(http, desk, driver="olga sid")) == [desk.other_world.card_id]
    assert ids(await search(http, desk, driver="Ivan")) == [desk.world.card_id]
    assert ids(await search(http, desk, driver="100%")) == []

    # The company's three cards, newest first, in pages of two.
    company_cards = [desk.world.card_id] + await card_ids_of(state, more)
    first = await search(http, desk, company="vostok", limit=2)
    assert ids(first) == sorted(company_cards, reverse=True)[:2]
    rest = await search(http, desk, company="vostok", limit=2, cursor=first.json()["next_cursor"])
    assert ids(rest) == sorted(company_cards, reverse=True)[2:]
    assert rest.json()["next_cursor"] is None
    assert ids(await search(http, desk, company="Vostok", last4=desk.other_world.pan[-4:])) == []


async def card_ids_of(state, phones: list[Phone]) -> list[int]:
    from processing.cards.models import DeviceEnrollment

    async with unit_of_work(state.sessionmaker) as session:
        return list((await session.execute(
            select(DeviceEnrollment.card_id).where(DeviceEnrollment.id.in_([p.enrollment_id for p in phones]))
        )).scalars())


async def test_bad_searches_are_refused_without_echoing(state, http, clock, desk):
    before = await database_dump(state)
    for body in [{}, {"last4": "12a4"}, {"last4": "12345"}, {"dpan": "12345"}, {"dpan": "7" * 20},
                 {"dpan": "7005 1234 5678 9012"}, {"driver": "x"}, {"company": "a\x00b"}, {"limit": 10},
                 {"last4": "1234", "limit": 0}, {"last4": "1234", "limit": 201}, {"last4": "1234", "pan": "1"}]:
        reply = await search(http, desk, **body)
        assert (reply.status_code, reply.json()["error"]) == (422, "invalid_request"), (body, reply.text)
        for value in body.values():
            if isinstance(value, str) and len(value) > 4:
                assert value not in reply.text
    reply = await search(http, desk, last4="1234", cursor="garbage")
    assert (reply.status_code, reply.json()["error"]) == (422, "invalid_cursor")
    assert await database_dump(state) == before


async def test_detail_shows_masked_number_holder_vehicle_phones(state, http, clock, desk):
    reply = await authorize(http, clock, desk.world)
    await raise_alert(state, reply.body["authorization_id"])
    detail = await http.get(f"/v1/fraud/cards/{desk.world.card_id}", headers=desk.security.headers)
    assert detail.status_code == 200, detail.text
    body = detail.json()
    assert body["masked_card_number"].endswith(desk.world.pan[-4:])
    assert desk.world.pan not in detail.text and desk.world.phone.dpan not in detail.text
    assert body["company"]["company_id"] == desk.world.company_id
    assert body["driver"]["full_name"] == "Ivan Petrov"
    assert body["vehicle"]["tank_capacity_ml"] == 60_000
    assert [(e["enrollment_id"], e["dpan_last4"], e["status"]) for e in body["enrollments"]] == [
        (desk.world.phone.enrollment_id, desk.world.phone.dpan[-4:], "active")]
    assert body["unresolved_alert_count"] == 1
    assert body["open_case_ids"] == []
    missing = await http.get("/v1/fraud/cards/999999", headers=desk.security.headers)
    assert (missing.status_code, missing.json()["error"]) == (404, "card_not_found")


async def test_block_declines_the_next_authorization_with_62_and_unblock_lets_it_pay(state, http, clock, desk):
    headers = desk.security.headers
    approved = await authorize(http, clock, desk.world)
    assert approved.body["response_code"] == "00"

    blocked = await http.post(f"/v1/fraud/cards/{desk.world.card_id}/block", headers=headers,
                              json={"reason": "Alert 7: purchases 600 km apart"})
    assert blocked.status_code == 200, blocked.text
    assert (blocked.json()["status"], blocked.json()["status_reason"]) == ("blocked",
                                                                           "Alert 7: purchases 600 km apart")
    clock.advance(60)
    declined = await authorize(http, clock, desk.world)
    assert declined.body["response_code"] == "62", declined.body
    assert declined.body["approved"] is False

    again = await http.post(f"/v1/fraud/cards/{desk.world.card_id}/block", headers=headers,
                            json={"reason": "Confirmed: card lent out"})
    assert again.json()["status_reason"] == "Confirmed: card lent out"

    unblocked = await http.post(f"/v1/fraud/cards/{desk.world.card_id}/unblock", headers=headers,
                                json={"reason": "Fleet took the card back from the other driver"})
    assert unblocked.status_code == 200, unblocked.text
    assert unblocked.json()["status"] == "active"
    clock.advance(60)
    paid = await authorize(http, clock, desk.world)
    assert paid.body["response_code"] == "00", paid.body

    async with unit_of_work(state.sessionmaker) as session:
        entries = (await session.execute(
            select(AuditEntry).where(AuditEntry.target_kind == "card", AuditEntry.target_id == desk.world.card_id)
            .order_by(AuditEntry.id))).scalars().all()
    assert [(e.action, e.actor_role, e.actor_user_id, e.company_id) for e in entries] == [
        ("card.block", "security", desk.security.user_id, desk.world.company_id),
        ("card.block", "security", desk.security.user_id, desk.world.company_id),
        ("card.unblock", "security", desk.security.user_id, desk.world.company_id),
    ]
    assert entries[0].before["status"] == "active" and entries[0].after["status"] == "blocked"
    assert entries[2].after["reason"] == "Fleet took the card back from the other driver"


async def test_block_and_unblock_refusals_change_nothing(state, http, clock, desk):
    headers = desk.security.headers
    async with unit_of_work(state.sessionmaker) as session:
        await set_card_status(session, card_id=desk.other_world.card_id, status="closed", reason="lost")
    before = await database_dump(state)
    card = f"/v1/fraud/cards/{desk.world.card_id}"
    for path, body, status, code in [
        (f"{card}/block", {}, 422, "invalid_request"),
        (f"{card}/block", {"reason": ""}, 422, "invalid_request"),
        (f"{card}/block", {"reason": "x" * 201}, 422, "invalid_request"),
        (f"{card}/block", {"reason": "line\nbreak"}, 422, "invalid_request"),
        (f"{card}/unblock", {"reason": "not blocked"}, 409, "card_not_blocked"),
        (f"{card}/unblock", {}, 422, "invalid_request"),
        (f"/v1/fraud/cards/{desk.other_world.card_id}/block", {"reason": "x"}, 409, "card_closed"),
        (f"/v1/fraud/cards/{desk.other_world.card_id}/unblock", {"reason": "x"}, 409, "card_closed"),
        ("/v1/fraud/cards/999999/block", {"reason": "x"}, 404, "card_not_found"),
    ]:
        reply = await http.post(path, headers=headers, json=body)
        assert (reply.status_code, reply.json()["error"]) == (status, code), (path, body, reply.text)
    assert await database_dump(state) == before


async def test_timeline_has_everything_newest_first_in_exact_pages(state, http, clock, desk):
    headers = desk.security.headers
    terminal = desk.world.terminal(http, clock)
    clock.advance(10)
    completed_id = next_transaction_id()
    approved = await terminal.authorize(**authorization_message(desk.world.phone, clock.now,
                                                                transaction_id=completed_id))
    clock.advance(10)
    completion = await terminal.complete(completed_id, amount_minor=131_000, volume_ml=20_000, product="diesel")
    assert completion.status_code == 200, completion.body
    clock.advance(10)
    reversed_id = next_transaction_id()
    await terminal.authorize(**authorization_message(desk.world.phone, clock.now, transaction_id=reversed_id))
    clock.advance(10)
    assert (await terminal.reverse(reversed_id, "customer left")).status_code == 200
    clock.advance(10)
    alert_id = await raise_alert(state, approved.body["authorization_id"], rule_code="tank_overfill",
                                 severity="medium", outcome="review")
    await http.post(f"/v1/fraud/cards/{desk.world.card_id}/block", headers=headers, json={"reason": "Overfill"})
    clock.advance(10)
    declined = await authorize(http, clock, desk.world)
    assert declined.body["response_code"] == "62"
    clock.advance(10)
    await http.post(f"/v1/fraud/cards/{desk.world.card_id}/unblock", headers=headers, json={"reason": "Checked"})
    async with unit_of_work(state.sessionmaker) as session:
        new_phone = await enroll_device(session, state.keyring, card_id=desk.world.card_id,
                                        dpan_prefix=state.settings.dpan_prefix, device_label="new phone")

    everything = await http.get(f"/v1/fraud/cards/{desk.world.card_id}/timeline", params={"limit": 200},
                                headers=headers)
    assert everything.status_code == 200, everything.text
    entries = everything.json()["entries"]
    assert everything.json()["next_cursor"] is None
    kinds = [entry["kind"] for entry in entries]
    assert sorted(kinds) == sorted([
        "enrollment_created", "enrollment_created", "enrollment_revoked", "authorization", "authorization",
        "authorization", "completion", "reversal", "alert", "audit", "audit"])
    times = [entry["at"] for entry in entries]
    assert times == sorted(times, reverse=True)
    assert kinds[:2] == ["enrollment_revoked", "enrollment_created"] or kinds[:2] == ["enrollment_created",
                                                                                      "enrollment_revoked"]

    by_kind = {}
    for entry in entries:
        by_kind.setdefault(entry["kind"], []).append(entry)
    decline = next(e for e in by_kind["authorization"] if e["data"]["response_code"] == "62")
    assert decline["authorization_id"] == declined.body["authorization_id"]
    assert decline["data"]["decline_reason"] and decline["data"]["reason"]
    assert decline["summary"].startswith("Declined 62")
    assert "fraud_verdict" in decline["data"]
    assert by_kind["completion"][0]["data"] == {"amount_minor": 131_000, "volume_ml": 20_000, "product": "diesel",
                                                "unit_price_minor": 6_550, "currency": "RUB"}
    assert by_kind["completion"][0]["authorization_id"] == approved.body["authorization_id"]
    assert by_kind["reversal"][0]["data"]["source"] == "terminal"
    assert by_kind["alert"][0]["ref_id"] == alert_id
    assert by_kind["alert"][0]["data"]["rule_code"] == "tank_overfill"
    assert [e["data"]["action"] for e in by_kind["audit"]] == ["card.unblock", "card.block"]
    assert by_kind["audit"][1]["summary"].endswith(": Overfill")
    created = {e["data"]["enrollment_id"] for e in by_kind["enrollment_created"]}
    assert created == {desk.world.phone.enrollment_id, new_phone.enrollment.id}
    assert by_kind["enrollment_revoked"][0]["data"]["enrollment_id"] == desk.world.phone.enrollment_id
    assert desk.world.pan not in everything.text and desk.world.phone.dpan not in everything.text
    assert new_phone.dpan not in everything.text

    for size in (1, 2, 3, 5):
        paged, cursor = [], None
        while True:
            params = {"limit": size, **({"cursor": cursor} if cursor else {})}
            page = await http.get(f"/v1/fraud/cards/{desk.world.card_id}/timeline", params=params, headers=headers)
            assert page.status_code == 200, page.text
            assert len(page.json()["entries"]) <= size
            paged += page.json()["entries"]
            cursor = page.json()["next_cursor"]
            if cursor is None:
                break
        assert paged == entries, size

    other = await http.get(f"/v1/fraud/cards/{desk.other_world.card_id}/timeline", headers=headers)
    assert [e["kind"] for e in other.json()["entries"]] == ["enrollment_created"]
    for params, status, code in [({"cursor": "bad"}, 422, "invalid_cursor"), ({"limit": 0}, 422, "invalid_request"),
                                 ({"cursor": "x" * 81}, 422, "invalid_request")]:
        reply = await http.get(f"/v1/fraud/cards/{desk.world.card_id}/timeline", params=params, headers=headers)
        assert (reply.status_code, reply.json()["error"]) == (status, code), reply.text
    missing = await http.get("/v1/fraud/cards/999999/timeline", headers=headers)
    assert (missing.status_code, missing.json()["error"]) == (404, "card_not_found")


async def test_timeline_pages_are_exact_when_many_entries_share_one_instant(state, http, clock, desk):
    """The clock stands still: every authorization and alert has the same timestamp."""
    for _ in range(4):
        reply = await desk.world.terminal(http, clock).authorize(
            **authorization_message(desk.world.phone, clock.now, amount_minor=10_000))
        await raise_alert(state, reply.body["authorization_id"])
    whole = (await http.get(f"/v1/fraud/cards/{desk.world.card_id}/timeline", params={"limit": 200},
                            headers=desk.security.headers)).json()["entries"]
    assert len(whole) == 9  # the phone, four authorizations, four alerts
    paged, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await http.get(f"/v1/fraud/cards/{desk.world.card_id}/timeline", params=params,
                               headers=desk.security.headers)).json()
        paged += page["entries"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert paged == whole
    # The phone was enrolled at the wall clock's time, after this test's midday; at the one instant of
    # the purchases, alerts read as newer than the authorizations that raised them, higher ids first.
    alerts = sorted((e["ref_id"] for e in whole if e["kind"] == "alert"), reverse=True)
    authorizations = sorted((e["ref_id"] for e in whole if e["kind"] == "authorization"), reverse=True)
    assert [(e["kind"], e["ref_id"]) for e in whole] == (
        [("enrollment_created", desk.world.phone.enrollment_id)]
        + [("alert", ref) for ref in alerts] + [("authorization", ref) for ref in authorizations])
