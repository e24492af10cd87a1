"""ISO 8583 response codes used on the terminal path (DESIGN §4)."""

from __future__ import annotations

from enum import StrEnum


class ResponseCode(StrEnum):
    APPROVED = "00"
    DO_NOT_HONOUR = "05"
    PARTIAL_APPROVAL = "10"
    INVALID_TRANSACTION = "12"
    INVALID_AMOUNT = "13"
    INVALID_CARD = "14"
    UNABLE_TO_LOCATE = "25"
    INSUFFICIENT_FUNDS = "51"
    EXPIRED_TOKEN = "54"
    NOT_PERMITTED = "57"
    NOT_PERMITTED_AT_TERMINAL = "58"
    SUSPECTED_FRAUD = "59"
    EXCEEDS_AMOUNT_LIMIT = "61"
    RESTRICTED_CARD = "62"
    SECURITY_VIOLATION = "63"
    EXCEEDS_FREQUENCY_LIMIT = "65"
    DUPLICATE_TRANSMISSION = "94"
    SYSTEM_MALFUNCTION = "96"


APPROVAL_CODES = frozenset({ResponseCode.APPROVED, ResponseCode.PARTIAL_APPROVAL})
