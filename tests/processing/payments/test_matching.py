"""Invoice numbers in purposes, INNs, and the matcher's rules (pure, no database)."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from processing.payments.companies import inn_is_valid
from processing.payments.invoice_numbers import damm_digit, find_invoice_numbers, invoice_number
from processing.payments.matching import InvoiceView, Lookups, decide
from processing.payments.statements import ParsedPayment

NUMBER = invoice_number(2026, 12)  # FC-2026-000128: sequence 00012, check digit 8


@pytest.mark.parametrize("purpose", [
    f"Оплата по счету {NUMBER}", "FC 2026 000128", "ФС-2026-000128", "fc2026000128", "FC-2O26-OOO128",
    "Fс-2026-0001Z8".replace("Z", "2"), "FC_2026/000128", "счет № 2026-000128", "сч. 2026 000128",
    "по счету FC-2026-000128без НДС", "FC-2026-OOOl28", "(FC-2026-000128)", "invoice 2026-000128",
])
def test_an_invoice_number_is_found_however_it_was_typed(purpose):
    assert find_invoice_numbers(purpose) == [NUMBER]


@pytest.mark.parametrize("purpose", [
    "FC-2026-000127", "FC-2026-000182", "FC-2026-001028", "2026-000128", "NFC-2026-000128x",
    "Оплата за топливо", "FC-2026-0001288",
])
def test_a_mistyped_digit_or_a_bare_number_is_no_invoice_number(purpose):
    assert find_invoice_numbers(purpose) == []


@given(year=st.integers(2000, 2099), sequence=st.integers(1, 10**7), data=st.data())
def test_the_check_digit_catches_every_single_digit_error_and_adjacent_swap(year, sequence, data):
    number = invoice_number(year, sequence)
    digits = number.replace("FC-", "").replace("-", "")
    assert damm_digit(digits) == 0 and find_invoice_numbers(number) == [number]
    spot = data.draw(st.integers(0, len(digits) - 1))
    wrong = data.draw(st.sampled_from([d for d in "0123456789" if d != digits[spot]]))
    assert damm_digit(digits[:spot] + wrong + digits[spot + 1:]) != 0
    if spot + 1 < len(digits) and digits[spot] != digits[spot + 1]:
        swapped = digits[:spot] + digits[spot + 1] + digits[spot] + digits[spot + 2:]
        assert damm_digit(swapped) != 0


def test_inn_check_digits():
    assert inn_is_valid("7707083893") and inn_is_valid("500100732259")
    assert not inn_is_valid("7707083894") and not inn_is_valid("500100732258") and not inn_is_valid("77070838")
    assert not inn_is_valid("٧٧٠٧٠٨٣٨٩٣")  # non-ASCII digits


def payment(purpose: str = "", inn: str = "", amount: int = 1_000_00) -> ParsedPayment:
    return ParsedPayment(source_line=1, document_number="1", document_date=date(2026, 3, 2), amount_minor=amount,
                         payer_inn=inn, payer_name="", payer_account="", recipient_account="4" * 20,
                         purpose=purpose, received_date=None, incoming=True)


def lookups() -> Lookups:
    a = InvoiceView(1, NUMBER, 10, "open", 550_00, 0, "RUB", 550_13)
    b = InvoiceView(2, invoice_number(2026, 13), 20, "open", 900_00, 0, "RUB", 900_07)
    return Lookups(invoices_by_id={1: a, 2: b}, invoices_by_number={a.number: a, b.number: b},
                   company_by_inn={"7707083893": 10, "500100732259": 20},
                   open_invoice_by_amount={("RUB", 550_13): a, ("RUB", 900_07): b})


def test_the_rules_and_their_order():
    found = decide(payment(f"по счету {NUMBER}", "7707083893", 550_13), lookups())
    assert (found.company_id, found.matched_by, [i.id for i in found.invoices]) == (10, "invoice", [1])
    found = decide(payment("топливо", "7707083893", 123_00), lookups())
    assert (found.company_id, found.matched_by, found.invoices) == (10, "inn", ())
    found = decide(payment("топливо", "", 900_07), lookups())
    assert (found.company_id, found.matched_by, [i.id for i in found.invoices]) == (20, "amount", [2])
    found = decide(payment("топливо", "7707083893", 550_13), lookups())  # INN and the sum agree
    assert (found.company_id, found.matched_by, [i.id for i in found.invoices]) == (10, "inn", [1])


@pytest.mark.parametrize("purpose, inn, amount", [
    (f"по счету {NUMBER}", "500100732259", 550_13),  # invoice of 10, INN of 20
    ("топливо", "7707083893", 900_07),  # INN of 10, the unique sum of 20's invoice
    (f"счета {NUMBER} и {invoice_number(2026, 13)}", "", 1_450_20),  # two companies' invoices
    ("топливо", "7736050003", 1_00),  # nobody
])
def test_conflicting_or_missing_evidence_goes_to_the_queue(purpose, inn, amount):
    found = decide(payment(purpose, inn, amount), lookups())
    assert found.company_id is None and found.matched_by is None and found.queue_reason
