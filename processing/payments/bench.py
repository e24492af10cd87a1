"""Statement matching benchmark: ``python -m processing.payments.bench --lines 10000``.

Builds a world with a known truth (companies, their INNs, open invoices), writes a realistic
1CClientBankExchange statement for it (typos in purposes, missing invoice numbers, payments
split in two, duplicates, unknown payers, payers paying for a related company, bank fees),
imports it into a fresh database, and prints how long the import took, the share of
transfers matched automatically, and the share matched correctly against the truth.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from processing.db.engine import create_engine, create_sessionmaker, unit_of_work
from processing.db.migrate import upgrade
from processing.ledger.service import find_ledger_problems
from processing.orgs.service import create_company
from processing.payments.companies import set_company_inn
from processing.payments.invoices import create_invoice
from processing.payments.statement_import import import_statement
from processing.payments.statements.render import Transfer, render_onec

OUR_ACCOUNT = "40702810938000012345"
# What the statement's lines are, and how often (the rest of the mix is "invoice").
SCENARIOS = {
    "invoice": 0.28,  # the invoice number as issued, the company's own INN
    "invoice_typo": 0.14,  # the number as typed or OCR'd: spaces, Cyrillic ФС, O for 0, glued words
    "inn_only": 0.17,  # no number, the company's registered INN
    "amount_only": 0.07,  # a person pays the invoice's exact sum, no number, no INN
    "split": 0.08,  # an invoice paid in two transfers (two lines)
    "duplicate": 0.05,  # a document that is already in the statement (overlapping exports)
    "unknown": 0.08,  # a payer nobody knows, no number: must go to the queue
    "related_party": 0.05,  # invoice of one company, INN of another registered company: queue
    "digit_typo": 0.04,  # a wrong digit in the number (the check digit refuses it), exact sum
    "bank_fee": 0.04,  # a debit of our account: not a top-up
}
PURPOSES_WITH_NUMBER = (
    "Оплата по счету {n} за топливо. НДС не облагается",
    "Оплата по сч. {n} (топливные карты)",
    "Пополнение лицевого счета по счету {n}. Без НДС",
    "Аванс за ГСМ, счет {n} от {d}",
    "{n} оплата за топливо",
)
PURPOSES_WITHOUT_NUMBER = (
    "Пополнение топливных карт по договору № Д-{k} от {d}. Без НДС",
    "Оплата за ГСМ по договору {k}",
    "Аванс за топливо, договор поставки {k}/2025",
    "Оплата за нефтепродукты",
)


def _inn10(rng: random.Random) -> str:
    digits = [rng.randint(0, 9) for _ in range(9)]
    digits[0] = rng.randint(1, 9)
    check = sum(d * w for d, w in zip(digits, (2, 4, 10, 3, 5, 9, 4, 6, 8), strict=True)) % 11 % 10
    return "".join(map(str, digits + [check]))


def _account(rng: random.Random, prefix: str = "40702810") -> str:
    return prefix + "".join(str(rng.randint(0, 9)) for _ in range(20 - len(prefix)))


_OCR = {"0": "OО", "1": "lI", "3": "З", "5": "S", "6": "б", "8": "B"}


def mistype(number: str, rng: random.Random) -> str:
    """What people and OCR make of an invoice number, keeping it recognisable."""
    prefix, year, body = number.split("-")
    style = rng.randrange(7)
    if style == 0:
        return f"{prefix} {year} {body}"
    if style == 1:
        return f"ФС-{year}-{body}"
    if style == 2:
        return f"{prefix}{year}{body}".lower()
    if style == 3:
        chars = list(f"{year}-{body}")
        for _ in range(2):
            spots = [i for i, c in enumerate(chars) if c in _OCR]
            if spots:
                spot = rng.choice(spots)
                chars[spot] = rng.choice(_OCR[chars[spot]])
        return f"{prefix}-{''.join(chars)}"
    if style == 4:
        return f"счет № {year}-{body}"
    if style == 5:
        return f"{prefix}_{year}/{body}"
    return f"Fс-{year}-{body}"


def wrong_digit(number: str, rng: random.Random) -> str:
    prefix, year, body = number.split("-")
    spot = rng.randrange(len(body))
    digit = rng.choice([d for d in "0123456789" if d != body[spot]])
    return f"{prefix}-{year}-{body[:spot]}{digit}{body[spot + 1:]}"


@dataclass
class Company:
    id: int
    name: str
    inn: str | None  # registered INN (None: the company has none on file)
    account: str


@dataclass
class OpenInvoice:
    id: int
    number: str
    company: Company
    payable_minor: int


@dataclass
class Generated:
    transfers: list[Transfer]
    truth: list[int | None]  # per transfer: the company it belongs to (None: nobody's)
    kinds: list[str]
    duplicates: int


@dataclass
class BenchReport:
    lines: int
    incoming: int
    duplicates_expected: int
    duplicates_skipped: int
    import_seconds: float
    matched: int
    matched_correctly: int
    matched_wrongly: int
    queued: int
    with_truth: int
    by_rule: Counter
    by_kind: dict[str, Counter] = field(default_factory=dict)
    ledger_problems: int = 0

    @property
    def share_matched(self) -> float:
        return self.matched / max(self.incoming - self.duplicates_skipped, 1)

    @property
    def share_correct(self) -> float:
        return self.matched_correctly / max(self.matched, 1)

    @property
    def share_of_truth_found(self) -> float:
        return self.matched_correctly / max(self.with_truth, 1)

    def render(self) -> str:
        new = self.incoming - self.duplicates_skipped
        rows = [
            f"statement lines:              {self.lines} ({self.incoming} incoming, "
            f"{self.lines - self.incoming} debits skipped)",
            f"duplicates skipped:           {self.duplicates_skipped} (generated {self.duplicates_expected})",
            f"import time:                  {self.import_seconds:.2f} s "
            f"({self.lines / max(self.import_seconds, 1e-9):,.0f} lines/s)",
            f"matched automatically:        {self.matched}/{new} = {self.share_matched:.1%}  "
            f"(by invoice {self.by_rule['invoice']}, by INN {self.by_rule['inn']}, "
            f"by amount {self.by_rule['amount']})",
            f"matched correctly:            {self.matched_correctly}/{self.matched} = {self.share_correct:.2%}"
            f"  (wrong company: {self.matched_wrongly})",
            f"queued for an operator:       {self.queued}",
            f"owned lines found:            {self.matched_correctly}/{self.with_truth} = "
            f"{self.share_of_truth_found:.1%}",
            f"ledger problems:              {self.ledger_problems}",
            "per kind (matched/queued/wrong):",
        ]
        rows += [f"  {kind:<14} {c['matched']:>5} / {c['queued']:>5} / {c['wrong']:>3}"
                 for kind, c in sorted(self.by_kind.items())]
        return "\n".join(rows)


async def build_world(sessionmaker, rng: random.Random, *, companies: int, invoices: int,
                      now: datetime) -> tuple[list[Company], list[OpenInvoice]]:
    made: list[Company] = []
    async with unit_of_work(sessionmaker) as session:
        for n in range(companies):
            company = await create_company(session, name=f"ООО Флит-{n:05d}")
            inn = _inn10(rng) if rng.random() < 0.85 else None
            if inn is not None:
                try:
                    await set_company_inn(session, company_id=company.id, inn=inn, now=now)
                except Exception:  # noqa: BLE001 - a random INN that is already taken: go without one
                    inn = None
            made.append(Company(company.id, f"ООО \"Флит-{n:05d}\"", inn, _account(rng)))
    issued: list[OpenInvoice] = []
    async with unit_of_work(sessionmaker) as session:
        for _ in range(invoices):
            company = rng.choice(made)
            amount = rng.randint(10, 3000) * 100_00  # 1,000 .. 300,000 roubles in whole hundreds
            invoice = await create_invoice(session, company_id=company.id, amount_minor=amount, now=now, user_id=None)
            issued.append(OpenInvoice(invoice.id, invoice.number, company, invoice.payable_amount_minor))
    return made, issued


def generate(rng: random.Random, lines: int, companies: list[Company], invoices: list[OpenInvoice],
             start: date) -> Generated:
    transfers: list[Transfer] = []
    truth: list[int | None] = []
    kinds: list[str] = []
    duplicates = 0
    unused = invoices[:]
    rng.shuffle(unused)
    with_inn = [c for c in companies if c.inn]
    numbers = iter(range(100, 10**6))

    def day() -> date:
        return start + timedelta(days=rng.randrange(28))

    def add(kind: str, owner: int | None, transfer: Transfer) -> None:
        transfers.append(transfer)
        truth.append(owner)
        kinds.append(kind)

    def payer_inn(company: Company) -> str:
        return company.inn or ""

    def take_invoice() -> OpenInvoice:
        return unused.pop() if unused else rng.choice(invoices)

    names, weights = zip(*SCENARIOS.items(), strict=True)
    while len(transfers) < lines:
        kind = rng.choices(names, weights)[0]
        d = day()
        if kind in ("invoice", "invoice_typo"):
            invoice = take_invoice()
            company = invoice.company
            number = invoice.number if kind == "invoice" else mistype(invoice.number, rng)
            purpose = rng.choice(PURPOSES_WITH_NUMBER).format(n=number, d=f"{d:%d.%m.%Y}")
            inn = payer_inn(company) if kind == "invoice" or rng.random() < 0.5 else ""
            add(kind, company.id, Transfer(str(next(numbers)), d, invoice.payable_minor, inn, company.name,
                                           company.account, OUR_ACCOUNT, purpose))
        elif kind == "inn_only":
            company = rng.choice(with_inn)
            amount = rng.randint(5, 500) * 1000_00
            purpose = rng.choice(PURPOSES_WITHOUT_NUMBER).format(k=rng.randint(1, 999), d=f"{d:%d.%m.%Y}")
            add(kind, company.id, Transfer(str(next(numbers)), d, amount, company.inn, company.name,
                                           company.account, OUR_ACCOUNT, purpose))
        elif kind == "amount_only":
            invoice = take_invoice()
            add(kind, invoice.company.id, Transfer(
                str(next(numbers)), d, invoice.payable_minor, "", "Иванов Иван Иванович",
                _account(rng, "40817810"), OUR_ACCOUNT, f"Оплата за {invoice.company.name} за топливо"))
        elif kind == "split":
            invoice = take_invoice()
            company = invoice.company
            first = invoice.payable_minor // 2 + rng.randint(-50_00, 50_00)
            for part in (first, invoice.payable_minor - first):
                with_number = rng.random() < 0.7 or not company.inn
                purpose = (rng.choice(PURPOSES_WITH_NUMBER).format(n=invoice.number, d=f"{d:%d.%m.%Y}")
                           if with_number else rng.choice(PURPOSES_WITHOUT_NUMBER).format(k=7, d=f"{d:%d.%m.%Y}"))
                add(kind, company.id, Transfer(str(next(numbers)), d, part, payer_inn(company), company.name,
                                               company.account, OUR_ACCOUNT, purpose + " (частичная оплата)"))
        elif kind == "duplicate" and transfers:
            index = rng.randrange(len(transfers))
            if kinds[index] in ("duplicate", "bank_fee"):
                continue
            duplicates += 1
            add(kind, truth[index], transfers[index])
        elif kind == "unknown":
            amount = rng.randint(1_000_00, 300_000_00)
            purpose = rng.choice(PURPOSES_WITHOUT_NUMBER).format(k=rng.randint(1, 999), d=f"{d:%d.%m.%Y}")
            add(kind, None, Transfer(str(next(numbers)), d, amount, _inn10(rng), "ООО \"Неизвестный плательщик\"",
                                     _account(rng), OUR_ACCOUNT, purpose))
        elif kind == "related_party":
            invoice = take_invoice()
            others = [c for c in with_inn if c.id != invoice.company.id]
            payer = rng.choice(others)
            purpose = f"Оплата по счету {invoice.number} за {invoice.company.name}"
            add(kind, invoice.company.id, Transfer(str(next(numbers)), d, invoice.payable_minor, payer.inn,
                                                   payer.name, payer.account, OUR_ACCOUNT, purpose))
        elif kind == "digit_typo":
            invoice = take_invoice()
            purpose = f"Оплата по счету {wrong_digit(invoice.number, rng)}"
            add(kind, invoice.company.id, Transfer(str(next(numbers)), d, invoice.payable_minor, "",
                                                   "ИП Сидоров С.С.", _account(rng, "40802810"), OUR_ACCOUNT,
                                                   purpose))
        elif kind == "bank_fee":
            add(kind, None, Transfer(str(next(numbers)), d, rng.randint(100_00, 3_000_00), "7707083893",
                                     "ООО \"ТопливоСервис\"", OUR_ACCOUNT, "30232810000000000001",
                                     "Комиссия за ведение счета", incoming=False))
    return Generated(transfers[:lines], truth[:lines], kinds[:lines],
                     sum(1 for k in kinds[:lines] if k == "duplicate"))


async def run_bench(database_url: str, *, lines: int, seed: int = 2026,
                    companies: int | None = None) -> BenchReport:
    """Set up, generate, import (timed) and score. The database must be migrated and empty."""
    rng = random.Random(seed)
    now = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
    engine = create_engine(database_url, pool_size=2)
    sessionmaker = create_sessionmaker(engine)
    try:
        company_count = companies or max(lines // 5, 20)
        made, invoices = await build_world(sessionmaker, rng, companies=company_count,
                                           invoices=int(lines * 0.55), now=now)
        generated = generate(rng, lines, made, invoices, date(2026, 3, 2))
        raw = render_onec(OUR_ACCOUNT, generated.transfers)
        started = time.perf_counter()
        async with unit_of_work(sessionmaker) as session:
            result = await import_statement(session, raw=raw, format="1c", now=now, user_id=None)
        elapsed = time.perf_counter() - started
        async with unit_of_work(sessionmaker) as session:
            problems = await find_ledger_problems(session)
    finally:
        await engine.dispose()
    return score(generated, result, elapsed, len(problems))


def score(generated: Generated, result, elapsed: float, ledger_problems: int) -> BenchReport:
    # The importer returns new lines in file order; map them back to the generated transfers.
    first_seen: dict[tuple, int] = {}
    for index, transfer in enumerate(generated.transfers):
        if transfer.incoming:
            first_seen.setdefault((transfer.number, transfer.date, transfer.amount_minor, transfer.payer_inn), index)
    by_kind: dict[str, Counter] = {}
    rules: Counter = Counter()
    matched = correct = wrong = queued = with_truth = 0
    for line in result.lines:
        p = line.payment
        index = first_seen[(p.document_number, p.document_date, p.amount_minor, p.payer_inn)]
        owner, kind = generated.truth[index], generated.kinds[index]
        counter = by_kind.setdefault(kind, Counter())
        with_truth += owner is not None
        company = line.decision.company_id
        if company is None:
            queued += 1
            counter["queued"] += 1
            continue
        matched += 1
        counter["matched"] += 1
        rules[line.decision.matched_by] += 1
        if company == owner:
            correct += 1
        else:
            wrong += 1
            counter["wrong"] += 1
    summary = result.summary
    return BenchReport(
        lines=summary.lines, incoming=summary.lines - summary.not_incoming,
        duplicates_expected=generated.duplicates, duplicates_skipped=summary.duplicates_skipped,
        import_seconds=elapsed, matched=matched, matched_correctly=correct, matched_wrongly=wrong, queued=queued,
        with_truth=with_truth, by_rule=rules, by_kind=by_kind, ledger_problems=ledger_problems)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m processing.payments.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=10_000, help="statement lines to generate")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--companies", type=int, default=None, help="default: lines / 5")
    parser.add_argument("--database-url", default=None,
                        help="an EMPTY database to use (e.g. postgresql+asyncpg://...); default: a fresh SQLite file")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as directory:
        url = args.database_url or f"sqlite+aiosqlite:///{Path(directory) / 'bench.db'}"
        upgrade(url)
        print(f"database: {url.split('@')[-1]}  lines: {args.lines}  seed: {args.seed}")
        report = asyncio.run(run_bench(url, lines=args.lines, seed=args.seed, companies=args.companies))
    print(report.render())


if __name__ == "__main__":
    main()
