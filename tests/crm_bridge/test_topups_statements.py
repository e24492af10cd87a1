"""Bank statements over HTTP: import, matching by invoice / INN / amount, idempotent re-import,
the operator's queue, and malformed files refused without a trace."""

from __future__ import annotations

import asyncio
from datetime import date

import pytest
from sqlalchemy import select

from processing.audit.models import AuditEntry
from processing.db.engine import unit_of_work
from processing.ledger.service import find_ledger_problems
from processing.payments.models import Invoice
from processing.payments.statements.render import Transfer, render_csv, render_onec
from tests.crm_bridge.event_checks import events_since, last_event_id
from tests.crm_bridge.topups_support import available_balance, make_top_up_world
from tests.factories import database_dump

OURS = "40702810938000012345"
INN_A, INN_B, INN_STRANGER = "7707083893", "500100732259", "7736050003"
DAY = date(2026, 3, 2)


@pytest.fixture
async def world(state, http):
    world = await make_top_up_world(state)
    for company_id, inn in [(world.company_id, INN_A), (world.other_company_id, INN_B)]:
        answer = await http.put(f"/v1/topups/companies/{company_id}/inn", headers=world.operator, json={"inn": inn})
        assert answer.status_code == 200, answer.text
    return world


async def issue(http, world, company_id, amount_minor) -> dict:
    answer = await http.post("/v1/topups/invoices", headers=world.operator,
                             json={"company_id": company_id, "amount_minor": amount_minor})
    assert answer.status_code == 201
    return answer.json()


def transfer(number: str, amount_minor: int, inn: str, purpose: str, **extra) -> Transfer:
    return Transfer(number=number, date=DAY, amount_minor=amount_minor, payer_inn=inn, payer_name="Payer",
                    payer_account="40702810100000000002", recipient_account=OURS, purpose=purpose, **extra)


async def import_file(http, world, raw: bytes, format: str = "1c", headers=None):
    return await http.post("/v1/topups/statements", params={"format": format}, content=raw,
                           headers={**(world.operator if headers is None else headers), "Content-Type": "text/plain"})


async def test_a_statement_is_matched_credited_and_queued_and_a_second_import_changes_nothing(http, state, world):
    mark = await last_event_id(state)
    a1 = await issue(http, world, world.company_id, 55_000)
    b1 = await issue(http, world, world.other_company_id, 100_000)
    b2 = await issue(http, world, world.other_company_id, 200_000)
    typo = a1["number"].replace("FC-", "ФС ").replace("-", " ")
    transfers = [
        transfer("101", a1["payable_amount_minor"], "", f"Оплата по счету {typo} за топливо"),
        transfer("102", 30_000, INN_A, "Пополнение топливных карт по договору 7"),
        transfer("103", b1["payable_amount_minor"], "", "Оплата за топливо"),
        transfer("104", 12_345, INN_STRANGER, "Оплата по договору 15/3"),
        transfer("105", b2["payable_amount_minor"], INN_A, f"Оплата по счету {b2['number']}"),
        transfer("106", 5_000, "", "Перевод"),
        Transfer("107", DAY, 990, "7707083893", "Us", OURS, "30232810000000000001", "Комиссия банка",
                 incoming=False),
    ]
    raw = render_onec(OURS, transfers)
    answer = await import_file(http, world, raw)
    assert answer.status_code == 201, answer.text
    summary = answer.json()
    assert {key: value for key, value in summary.items() if key != "statement_id"} == {
        "lines": 7, "matched_by_invoice": 1, "matched_by_inn": 1, "matched_by_amount": 1, "queued": 3,
        "duplicates_skipped": 0, "not_incoming": 1,
        "credited_minor": a1["payable_amount_minor"] + 30_000 + b1["payable_amount_minor"]}
    assert await available_balance(state, world.company_id) == a1["payable_amount_minor"] + 30_000
    assert await available_balance(state, world.other_company_id) == b1["payable_amount_minor"]
    async with unit_of_work(state.readonly_sessionmaker) as session:
        statuses = dict((await session.execute(select(Invoice.id, Invoice.status))).all())
        assert await find_ledger_problems(session) == []
    assert statuses == {a1["id"]: "paid", b1["id"]: "paid", b2["id"]: "open"}

    before = await database_dump(state)
    again = await import_file(http, world, raw)
    assert again.status_code == 201
    assert again.json() == {**summary, "matched_by_invoice": 0, "matched_by_inn": 0, "matched_by_amount": 0,
                            "queued": 0, "duplicates_skipped": 6, "credited_minor": 0}
    # The same transfers inside another export (CSV this time) are recognised too.
    assert (await import_file(http, world, render_csv(transfers), "csv")).json()["duplicates_skipped"] == 6
    assert await database_dump(state) == before

    queue = (await http.get("/v1/topups/queue", headers=world.operator)).json()["items"]
    by_number = {line["document_number"]: line for line in queue}
    assert sorted(by_number) == ["104", "105", "106"]
    ambiguous = by_number["105"]
    assert {(c["rule"], c["company_id"]) for c in ambiguous["candidates"]} == {
        ("invoice", world.other_company_id), ("inn", world.company_id), ("amount", world.other_company_id)}
    assert "different companies" in ambiguous["queue_reason"]

    # Confirm the ambiguous one for company B and its invoice.
    confirmed = await http.post(f"/v1/topups/queue/{ambiguous['id']}/confirm", headers=world.operator,
                                json={"company_id": world.other_company_id, "invoice_id": b2["id"]})
    assert confirmed.status_code == 200, confirmed.text
    assert confirmed.json()["status"] == "confirmed" and confirmed.json()["credited_entry_id"]
    again = await http.post(f"/v1/topups/queue/{ambiguous['id']}/confirm", headers=world.operator,
                            json={"company_id": world.other_company_id})
    assert again.status_code == 409 and again.json()["error"] == "already_decided"
    assert await available_balance(state, world.other_company_id) == (b1["payable_amount_minor"]
                                                                        + b2["payable_amount_minor"])
    stranger = by_number["104"]
    refused = await http.post(f"/v1/topups/queue/{stranger['id']}/confirm", headers=world.operator,
                              json={"company_id": world.company_id})
    assert refused.status_code == 422 and refused.json()["error"] == "not_a_candidate"
    moved = await http.post(f"/v1/topups/queue/{stranger['id']}/reassign", headers=world.operator,
                            json={"company_id": world.company_id, "reason": "the payer phoned: for Volga Taxi"})
    assert moved.json()["status"] == "reassigned" and moved.json()["company_id"] == world.company_id
    rejected = await http.post(f"/v1/topups/queue/{by_number['106']['id']}/reject", headers=world.operator,
                               json={"reason": "not a customer; returned"})
    assert rejected.json()["status"] == "rejected" and rejected.json()["credited_entry_id"] is None
    assert (await http.post(f"/v1/topups/queue/{by_number['106']['id']}/reassign", headers=world.operator,
                            json={"company_id": world.company_id, "reason": "changed my mind"})).status_code == 409
    assert (await http.get("/v1/topups/queue", headers=world.operator)).json()["items"] == []
    assert await available_balance(state, world.company_id) == a1["payable_amount_minor"] + 30_000 + 12_345
    async with unit_of_work(state.readonly_sessionmaker) as session:
        entries = (await session.execute(select(AuditEntry.action, AuditEntry.before, AuditEntry.after)
                                         .where(AuditEntry.action.like("statement%")))).all()
        assert await find_ledger_problems(session) == []
        assert (await session.get(Invoice, b2["id"])).status == "paid"
    assert [entry.action for entry in entries] == ["statement.import", "statement_line.confirm",
                                                   "statement_line.reassign", "statement_line.reject"]
    assert all(entry.after is not None for entry in entries)
    assert [entry.before["status"] for entry in entries[1:]] == ["queued"] * 3
    # Every credit, automatic or by the operator, reached accounting as one event naming its entry.
    credited = [event for event in await events_since(state, mark, world_has_cards=False) if event.event_type == "account.top_up_credited"]
    assert sorted((event.company_id, event.payload["amount_minor"]) for event in credited) == sorted([
        (world.company_id, a1["payable_amount_minor"]), (world.company_id, 30_000),
        (world.other_company_id, b1["payable_amount_minor"]), (world.other_company_id, b2["payable_amount_minor"]),
        (world.company_id, 12_345)])
    assert all(event.payload["reference"].startswith("bank transfer ") for event in credited)


async def test_only_the_operator_imports_and_decides(http, state, world):
    raw = render_onec(OURS, [transfer("1", 10_000, INN_STRANGER, "x")])
    before = await database_dump(state)
    for headers, status in [(world.admin, 403), (world.sub_admin, 403), (world.driver, 401), ({}, 401)]:
        assert (await import_file(http, world, raw, headers=headers)).status_code == status
        assert (await http.get("/v1/topups/queue", headers=headers)).status_code == status
        assert (await http.post("/v1/topups/queue/1/reject", headers=headers, json={"reason": "nope"})
                ).status_code == status
    assert (await http.post("/v1/topups/queue/424242/reject", headers=world.operator,
                            json={"reason": "nope"})).status_code == 404
    assert await database_dump(state) == before


@pytest.mark.parametrize("damage, line, words", [
    (lambda text: text.encode("utf-8"), 3, "UTF-8"),
    (lambda text: text.replace("Кодировка=Windows", "Кодировка=DOS").encode("cp1251"), 3, "Кодировка=DOS"),
    (lambda text: text.replace("КонецДокумента\r\nСекцияДокумент", "СекцияДокумент", 1).encode("cp1251"),
     None, "missing КонецДокумента"),
    (lambda text: text.replace("ВидОплаты=01", "ВидОплатыX=01", 1).encode("cp1251"), None, "unknown field"),
    (lambda text: text.replace("Сумма=100.00", "Сумма=100,0.0", 1).encode("cp1251"), None, "Сумма"),
    (lambda text: text.replace("КонецФайла\r\n", "").encode("cp1251"), None, "КонецФайла"),
])
async def test_a_malformed_statement_is_refused_naming_the_line_and_nothing_is_credited(
        http, state, world, damage, line, words):
    transfers = [transfer(str(n), 10_000, INN_A, "Пополнение") for n in range(1, 4)]
    text = render_onec(OURS, transfers).decode("cp1251")
    before = await database_dump(state)
    answer = await import_file(http, world, damage(text))
    assert answer.status_code == 422, answer.text
    body = answer.json()
    assert body["error"] == "malformed_statement" and words in body["detail"]
    assert body["detail"].startswith(f"line {body['line']}: ")
    if line is not None:
        assert body["line"] == line
    assert await database_dump(state) == before
    assert await available_balance(state, world.company_id) == 0


async def test_the_same_statement_imported_twice_at_once_credits_once(http, state, world):
    a1 = await issue(http, world, world.company_id, 70_000)
    raw = render_onec(OURS, [transfer("201", a1["payable_amount_minor"], INN_A, f"по счету {a1['number']}"),
                             transfer("202", 10_000, INN_A, "аванс"),
                             transfer("203", 777, INN_STRANGER, "?")])
    answers = await asyncio.gather(*[import_file(http, world, raw) for _ in range(3)])
    assert sorted(answer.status_code for answer in answers)[0] == 201
    assert all(answer.status_code in (201, 409) for answer in answers), [a.text for a in answers]
    assert sum(answer.json().get("credited_minor", 0) for answer in answers if answer.status_code == 201) == (
        a1["payable_amount_minor"] + 10_000)
    assert await available_balance(state, world.company_id) == a1["payable_amount_minor"] + 10_000
    async with unit_of_work(state.readonly_sessionmaker) as session:
        assert await find_ledger_problems(session) == []

    queued = (await http.get("/v1/topups/queue", headers=world.operator)).json()["items"]
    assert len(queued) == 1
    url = f"/v1/topups/queue/{queued[0]['id']}"
    decisions = await asyncio.gather(
        http.post(f"{url}/reassign", headers=world.operator, json={"company_id": world.company_id, "reason": "first"}),
        http.post(f"{url}/reassign", headers=world.operator,
                  json={"company_id": world.other_company_id, "reason": "second"}),
        http.post(f"{url}/reject", headers=world.operator, json={"reason": "third"}))
    assert sorted(answer.status_code for answer in decisions) == [200, 409, 409]
    total = (await available_balance(state, world.company_id)) + (await available_balance(state, world.other_company_id))
    assert total - a1["payable_amount_minor"] - 10_000 in (0, 777)
