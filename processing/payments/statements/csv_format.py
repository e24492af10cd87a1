"""Statements as CSV: UTF-8 (a byte-order mark is allowed), a header row, ``,`` or ``;`` between
fields (whichever the header uses), ``"`` for quoting.

Columns (any order; unknown columns refuse the file):

=================== ========= ==========================================================
column              required  meaning
=================== ========= ==========================================================
document_number     yes       the payment order's number
document_date       yes       DD.MM.YYYY or YYYY-MM-DD
amount              yes       roubles with up to two decimals: 550.13 or 550,13
payer_inn           yes       payer's INN; empty or 0 when none
payer_name          yes       payer's name (may be empty)
recipient_account   yes       our account the money came to (20 digits)
purpose             yes       the payment purpose (назначение платежа)
payer_account       no        payer's account (20 digits)
received_date       no        the day the bank credited it
direction           no        ``credit`` (incoming, the default) or ``debit`` (skipped)
=================== ========= ==========================================================
"""

from __future__ import annotations

import csv
import io

from processing.payments.errors import StatementRejected
from processing.payments.statements.model import (
    LIMITS,
    ParsedPayment,
    ParsedStatement,
    check_text,
    line_of_offset,
    parse_account,
    parse_amount,
    parse_date,
    parse_inn,
)

REQUIRED_COLUMNS = ("document_number", "document_date", "amount", "payer_inn", "payer_name",
                    "recipient_account", "purpose")
OPTIONAL_COLUMNS = ("payer_account", "received_date", "direction")
MAX_FIELD = 4000


def parse(raw: bytes) -> ParsedStatement:
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise StatementRejected(line_of_offset(raw, error.start),
                                "the file is not UTF-8 (CSV statements are UTF-8; save it as UTF-8 "
                                "or import the bank's 1CClientBankExchange file instead)") from None
    if "\x00" in text:
        raise StatementRejected(line_of_offset(raw, raw.index(b"\x00")), "the file contains a NUL byte")
    first_line = text.split("\n", 1)[0]
    delimiter = ";" if first_line.count(";") > first_line.count(",") else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, quotechar='"', strict=True)
    try:
        header = next(reader, None)
    except csv.Error as error:
        raise StatementRejected(1, f"the header row cannot be read: {error}") from None
    if not header or not any(cell.strip() for cell in header):
        raise StatementRejected(1, "the file is empty; the first line is the header row")
    columns = [cell.strip().lstrip("\ufeff").lower() for cell in header]
    for name in columns:
        if name not in REQUIRED_COLUMNS + OPTIONAL_COLUMNS:
            raise StatementRejected(1, f"unknown column {name[:40]!r}; the columns are "
                                    f"{', '.join(REQUIRED_COLUMNS + OPTIONAL_COLUMNS)}")
        if columns.count(name) > 1:
            raise StatementRejected(1, f"column {name!r} appears twice")
    missing = [name for name in REQUIRED_COLUMNS if name not in columns]
    if missing:
        raise StatementRejected(1, f"missing column(s): {', '.join(missing)}")
    payments = []
    line = 1
    while True:
        start = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as error:
            raise StatementRejected(reader.line_num or start, f"cannot read the row: {error}") from None
        line = start
        if not row or all(not cell.strip() for cell in row):
            continue
        if len(row) != len(columns):
            raise StatementRejected(line, f"{len(row)} fields, the header has {len(columns)}")
        payments.append(_payment(dict(zip(columns, row, strict=True)), line))
    accounts = tuple(dict.fromkeys(p.recipient_account for p in payments if p.incoming))
    return ParsedStatement(format="csv", accounts=accounts, payments=payments)


def _payment(row: dict[str, str], line: int) -> ParsedPayment:
    for key, value in row.items():
        check_text(value, line, key, MAX_FIELD)
    direction = row.get("direction", "").strip().lower() or "credit"
    if direction not in ("credit", "debit"):
        raise StatementRejected(line, f"direction {direction[:20]!r} is neither credit nor debit")
    number = check_text(row["document_number"], line, "document_number", LIMITS["document_number"])
    if not number:
        raise StatementRejected(line, "document_number is empty")
    received = row.get("received_date", "").strip()
    return ParsedPayment(
        source_line=line, document_number=number,
        document_date=parse_date(row["document_date"], line, "document_date", iso_allowed=True),
        amount_minor=parse_amount(row["amount"], line, "amount"),
        payer_inn=parse_inn(row["payer_inn"], line, "payer_inn"),
        payer_name=check_text(row["payer_name"], line, "payer_name", LIMITS["payer_name"]),
        payer_account=parse_account(row.get("payer_account", ""), line, "payer_account", required=False),
        recipient_account=parse_account(row["recipient_account"], line, "recipient_account", required=True),
        purpose=check_text(row["purpose"], line, "purpose", LIMITS["purpose"]),
        received_date=parse_date(received, line, "received_date", iso_allowed=True) if received else None,
        incoming=direction == "credit",
    )
