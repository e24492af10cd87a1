"""Refusals of the payments domain, each with its HTTP status and stable code."""

from __future__ import annotations

from typing import ClassVar

from processing.errors import Conflict, NotFound, ProcessingError


class GatewayNotConfigured(ProcessingError):
    status_code = 503
    code = "gateway_not_configured"
    default_detail = "Card top-ups are not configured (FUELCARD_GATEWAY_SECRET is not set)."


class GatewayUnavailable(ProcessingError):
    status_code = 502
    code = "gateway_unavailable"
    default_detail = "The payment gateway did not accept the payment; try again later."


class BadSignature(ProcessingError):
    status_code = 401
    code = "bad_signature"
    default_detail = "The X-Gateway-Signature header does not match the body."
    www_authenticate: ClassVar[str] = 'HMAC-SHA256 header="X-Gateway-Signature"'

    @property
    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": self.www_authenticate}


class InvalidCallback(ProcessingError):
    status_code = 422
    code = "invalid_callback"


class CallbackMismatch(ProcessingError):
    status_code = 422
    code = "callback_mismatch"


class UnknownGatewayPayment(NotFound):
    code = "unknown_payment"


class CardPaymentNotFound(NotFound):
    code = "card_payment_not_found"


class InvalidTopUp(ProcessingError):
    status_code = 422
    code = "invalid_top_up"


class CompanyNotFound(NotFound):
    code = "company_not_found"


class CompanyNotActive(ProcessingError):
    status_code = 422
    code = "company_not_active"


class InvalidInn(ProcessingError):
    status_code = 422
    code = "invalid_inn"


class InnTaken(Conflict):
    code = "inn_taken"


class InvoiceNotFound(NotFound):
    code = "invoice_not_found"


class InvoiceNotOpen(Conflict):
    code = "invoice_not_open"


class StatementRejected(ProcessingError):
    """A statement file that cannot be read; the message names the line. Nothing is imported."""

    status_code = 422
    code = "malformed_statement"

    def __init__(self, line: int, problem: str):
        self.line = line
        super().__init__(f"line {line}: {problem}")

    def body(self) -> dict:
        return {**super().body(), "line": self.line}


class PayloadTooLarge(ProcessingError):
    status_code = 413
    code = "payload_too_large"


class ConcurrentImport(Conflict):
    code = "concurrent_import"
    default_detail = "Another import of the same statement lines ran at the same time; retry."


class StatementLineNotFound(NotFound):
    code = "statement_line_not_found"


class AlreadyDecided(Conflict):
    code = "already_decided"


class NotACandidate(ProcessingError):
    status_code = 422
    code = "not_a_candidate"
