"""Which company an incoming transfer belongs to.

Three rules, each naming a company or nothing:

1. **invoice**: an invoice number in the purpose ("FC-2026-000123", and what typing and OCR make
   of it: "FC 2026 000123", "ФС-2026-000123", "fc2026000123", "FC-2O26-OOO123", "счет 2026-000123");
   the number must exist exactly after normalisation and pass its check digit;
2. **inn**: the payer's INN is a company's INN;
3. **amount**: the amount is the unique payable sum of an open invoice.

If the rules that found something all name the same company, the transfer is that company's
(``matched_by`` is the strongest rule that found it). If they name two different companies, or
none found anything, the transfer goes to the operator's queue: the matcher never guesses.

This module is pure: it decides from lookups the importer loads in bulk, so that 10,000 lines
cost a handful of queries.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from processing.payments.invoice_numbers import find_invoice_numbers
from processing.payments.models import MatchRule
from processing.payments.statements import ParsedPayment


@dataclass(slots=True)
class InvoiceView:
    id: int
    number: str
    company_id: int
    status: str
    amount_minor: int
    paid_minor: int
    currency: str
    open_payable_amount_minor: int | None
    paid_at: datetime | None = None
    changed: bool = False


@dataclass
class Lookups:
    invoices_by_id: dict[int, InvoiceView] = field(default_factory=dict)
    invoices_by_number: dict[str, InvoiceView] = field(default_factory=dict)
    company_by_inn: dict[str, int] = field(default_factory=dict)
    # (currency, payable sum) -> the open invoice asking for it
    open_invoice_by_amount: dict[tuple[str, int], InvoiceView] = field(default_factory=dict)


@dataclass(frozen=True)
class Decision:
    company_id: int | None  # None: to the queue
    matched_by: str | None
    invoices: tuple[InvoiceView, ...]
    candidates: list[dict]
    queue_reason: str | None


def decide(payment: ParsedPayment, lookups: Lookups, *, currency: str = "RUB") -> Decision:
    candidates: list[dict] = []
    by_invoice = [lookups.invoices_by_number[number] for number in find_invoice_numbers(payment.purpose)
                  if number in lookups.invoices_by_number]
    for invoice in by_invoice:
        candidates.append({"rule": MatchRule.INVOICE.value, "company_id": invoice.company_id,
                           "invoice_id": invoice.id, "invoice_number": invoice.number})
    inn_company = lookups.company_by_inn.get(payment.payer_inn) if payment.payer_inn else None
    if inn_company is not None:
        candidates.append({"rule": MatchRule.INN.value, "company_id": inn_company, "invoice_id": None})
    amount_invoice = lookups.open_invoice_by_amount.get((currency, payment.amount_minor))
    if amount_invoice is not None:
        candidates.append({"rule": MatchRule.AMOUNT.value, "company_id": amount_invoice.company_id,
                           "invoice_id": amount_invoice.id, "invoice_number": amount_invoice.number})
    companies = {candidate["company_id"] for candidate in candidates}
    if not companies:
        return Decision(None, None, (), candidates, "no invoice number in the purpose, unknown payer INN, "
                        "and no open invoice asks for this amount")
    if len(companies) > 1:
        found = "; ".join(f"{c['rule']} -> company {c['company_id']}"
                          + (f" (invoice {c['invoice_number']})" if c.get("invoice_number") else "")
                          for c in candidates)
        return Decision(None, None, (), candidates, f"the rules name different companies: {found}")
    company_id = companies.pop()
    if by_invoice:
        rule, invoices = MatchRule.INVOICE, tuple({i.id: i for i in by_invoice}.values())
    elif inn_company is not None:
        rule, invoices = MatchRule.INN, (amount_invoice,) if amount_invoice else ()
    else:
        rule, invoices = MatchRule.AMOUNT, (amount_invoice,)
    return Decision(company_id, rule.value, invoices, candidates, None)
