"""What a statement parser produces, and the value parsers both formats share."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import date

from processing.payments.errors import StatementRejected

MAX_AMOUNT_MINOR = 10**15  # ten trillion roubles: anything bigger is a broken file
_AMOUNT = re.compile(r"^(\d{1,13})(?:[.,](\d{1,2}))?$")
_DATE_DMY = re.compile(r"^(\d{2})\.(\d{2})\.(\d{4})$")
_DATE_ISO = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
_ACCOUNT = re.compile(r"^\d{20}$")
_INN = re.compile(r"^(\d{5}|\d{10}|\d{12})$")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")

LIMITS = {"document_number": 64, "payer_name": 500, "purpose": 2000}


@dataclass(frozen=True, slots=True)
class ParsedPayment:
    """One payment document of a statement."""

    source_line: int  # the line of the file where the document begins
    document_number: str
    document_date: date
    amount_minor: int
    payer_inn: str  # "" when the payer gave none ("0" in the file)
    payer_name: str
    payer_account: str
    recipient_account: str
    purpose: str
    received_date: date | None
    incoming: bool  # a credit to one of our accounts

    @property
    def line_hash(self) -> str:
        """Who paid what to which account in which document: the same transfer in any file."""
        key = "|".join((self.recipient_account, self.document_number, self.document_date.isoformat(),
                        str(self.amount_minor), self.payer_inn))
        return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class ParsedStatement:
    format: str
    accounts: tuple[str, ...]
    payments: list[ParsedPayment]


def parse_amount(text: str, line: int, field: str) -> int:
    """"550.13", "550,13", "550.1", "550" -> kopecks. Positive, at most two decimals."""
    match = _AMOUNT.match(text.strip())
    if not match:
        raise StatementRejected(line, f"{field} {text!r} is not an amount like 1234.56")
    kopecks = int(match.group(1)) * 100 + int((match.group(2) or "0").ljust(2, "0"))
    if kopecks <= 0:
        raise StatementRejected(line, f"{field} must be more than zero")
    if kopecks > MAX_AMOUNT_MINOR:
        raise StatementRejected(line, f"{field} {text!r} is too large")
    return kopecks


def parse_date(text: str, line: int, field: str, *, iso_allowed: bool = False) -> date:
    text = text.strip()
    match = _DATE_DMY.match(text)
    if match:
        day, month, year = (int(part) for part in match.groups())
    elif iso_allowed and (match := _DATE_ISO.match(text)):
        year, month, day = (int(part) for part in match.groups())
    else:
        expected = "DD.MM.YYYY or YYYY-MM-DD" if iso_allowed else "DD.MM.YYYY"
        raise StatementRejected(line, f"{field} {text!r} is not a date ({expected})")
    try:
        return date(year, month, day)
    except ValueError:
        raise StatementRejected(line, f"{field} {text!r} is not a real date") from None


def parse_account(text: str, line: int, field: str, *, required: bool) -> str:
    text = text.strip()
    if not text and not required:
        return ""
    if not _ACCOUNT.match(text):
        raise StatementRejected(line, f"{field} {text!r} is not a 20-digit account number")
    return text


def parse_inn(text: str, line: int, field: str) -> str:
    text = text.strip()
    if text in ("", "0"):
        return ""
    if not _INN.match(text):
        raise StatementRejected(line, f"{field} {text!r} is not an INN (10 or 12 digits, or 0)")
    return text


def check_text(text: str, line: int, field: str, limit: int) -> str:
    if _CONTROL.search(text):
        raise StatementRejected(line, f"{field} contains a control character")
    text = text.strip()
    if len(text) > limit:
        raise StatementRejected(line, f"{field} is longer than {limit} characters")
    return text


def line_of_offset(raw: bytes, offset: int) -> int:
    """1-based line number of a byte offset (for decoding errors)."""
    return raw.count(b"\n", 0, offset) + 1
