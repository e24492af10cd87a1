"""Bank statement parsers: 1CClientBankExchange and CSV. Both refuse a malformed file as a whole
(StatementRejected naming the line) before anything is written."""

from __future__ import annotations

from processing.payments.errors import StatementRejected
from processing.payments.statements import csv_format, onec
from processing.payments.statements.model import ParsedPayment, ParsedStatement

FORMATS = {"1c": onec.parse, "csv": csv_format.parse}

__all__ = ["FORMATS", "ParsedPayment", "ParsedStatement", "StatementRejected", "parse_statement"]


def parse_statement(raw: bytes, format: str) -> ParsedStatement:
    if format not in FORMATS:
        raise StatementRejected(1, f"unknown statement format {format!r}; use 1c or csv")
    return FORMATS[format](raw)
