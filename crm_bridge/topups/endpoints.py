"""Top-up routes: ``/v1/topups/...``.

* card payments (company admin of the company, or the operator) and the gateway's callback
  (authenticated by its HMAC signature, no token);
* invoices for bank transfers (company admin or operator), a company's INN (operator);
* bank statement import and the queue of unmatched transfers (operator).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Path, Query, Request

from crm_bridge.topups.auth import OperatorDep, TopUpUserDep
from crm_bridge.topups.schemas import (
    CallbackAnswer,
    CardPaymentOut,
    CardPaymentRequest,
    ConfirmRequest,
    ImportSummaryOut,
    InnOut,
    InnRequest,
    InvoiceOut,
    InvoicePage,
    InvoiceRequest,
    ReassignRequest,
    RejectRequest,
    StatementLineOut,
    StatementLinePage,
)
from crm_bridge.topups.service import GatewayDep, create_card_payment, invoice_snapshot
from processing.api import StateDep
from processing.audit import service as audit
from processing.audit.service import snapshot
from processing.authorization.schemas import ErrorBody
from processing.db.engine import unit_of_work
from processing.paging import Cursor, PageLimit, decode_cursor, next_cursor
from processing.payments import card_payments, companies, invoices, queue
from processing.payments.errors import CardPaymentNotFound, GatewayNotConfigured, PayloadTooLarge
from processing.payments.gateway import MAX_CALLBACK_BYTES, SIGNATURE_HEADER, verify_callback
from processing.payments.models import Invoice, StatementLineStatus
from processing.payments.statement_import import MAX_STATEMENT_BYTES, import_statement

ERRORS: dict[int | str, dict[str, Any]] = {status: {"model": ErrorBody} for status in (401, 403, 404, 409, 422)}
router = APIRouter(prefix="/v1/topups", tags=["top-ups"], responses=ERRORS)
IdPath = Annotated[int, Path(ge=1, le=2**62)]


# --- card payments ------------------------------------------------------------------------------

@router.post("/card-payments", status_code=201, response_model=CardPaymentOut,
             responses={502: {"model": ErrorBody}, 503: {"model": ErrorBody}},
             summary="Start a top-up by bank card; send the payer to redirect_url")
async def start_card_payment(body: CardPaymentRequest, user: TopUpUserDep, state: StateDep,
                             gateway: GatewayDep) -> CardPaymentOut:
    user.require_company(body.company_id)
    payment = await create_card_payment(state, gateway, user, company_id=body.company_id,
                                        amount_minor=body.amount_minor, return_url=body.return_url)
    return CardPaymentOut.model_validate(payment, from_attributes=True)


@router.get("/card-payments/{card_payment_id}", response_model=CardPaymentOut, summary="A card payment")
async def get_card_payment(card_payment_id: IdPath, user: TopUpUserDep, state: StateDep) -> CardPaymentOut:
    async with unit_of_work(state.readonly_sessionmaker) as session:
        payment = await card_payments.get_card_payment(session, card_payment_id)
        if not user.is_operator and user.company_id != payment.company_id:
            raise CardPaymentNotFound(f"card payment {card_payment_id} does not exist")
        user.require_company(payment.company_id)
        return CardPaymentOut.model_validate(payment, from_attributes=True)


@router.post("/gateway-callback", response_model=CallbackAnswer,
             responses={503: {"model": ErrorBody}, 413: {"model": ErrorBody}},
             summary="The payment gateway's callback (signed with X-Gateway-Signature)",
             openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": {
                 "type": "object", "required": ["payment_id", "status", "amount_minor", "currency",
                                                "event_id", "timestamp"],
                 "properties": {"payment_id": {"type": "string"}, "status": {"type": "string", "enum": [
                     "created", "authorized", "captured", "failed", "refunded"]},
                     "amount_minor": {"type": "integer"}, "currency": {"type": "string"},
                     "event_id": {"type": "string"}, "timestamp": {"type": "integer"}}}}}}})
async def gateway_callback(
    request: Request, state: StateDep,
    signature: Annotated[str | None, Header(alias=SIGNATURE_HEADER, max_length=256)] = None,
) -> CallbackAnswer:
    secret = state.settings.gateway_secret
    if secret is None or not secret.get_secret_value():
        raise GatewayNotConfigured()
    body = await _read_body(request, MAX_CALLBACK_BYTES + 1)
    callback = verify_callback(secret.get_secret_value(), body, signature)
    async with unit_of_work(state.sessionmaker) as session:
        outcome = await card_payments.apply_gateway_callback(session, callback=callback, now=state.clock())
    return CallbackAnswer(result=outcome.result, card_payment_id=outcome.card_payment_id, status=outcome.status)


async def _read_body(request: Request, limit: int) -> bytes:
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"the body is larger than {limit - 1} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


# --- invoices and tax ids ----------------------------------------------------------------------

def _invoice_out(invoice: Invoice) -> InvoiceOut:
    return InvoiceOut(
        id=invoice.id, number=invoice.number, company_id=invoice.company_id, amount_minor=invoice.amount_minor,
        payable_amount_minor=invoice.payable_amount_minor, currency=invoice.currency, status=invoice.status,
        paid_minor=invoice.paid_minor, purpose=f"Оплата по счету {invoice.number} за топливо. Без НДС",
        created_at=invoice.created_at, paid_at=invoice.paid_at, cancelled_at=invoice.cancelled_at)


@router.post("/invoices", status_code=201, response_model=InvoiceOut,
             summary="Issue an invoice for a top-up by bank transfer")
async def create_invoice(body: InvoiceRequest, user: TopUpUserDep, state: StateDep) -> InvoiceOut:
    user.require_company(body.company_id)
    now = state.clock()
    async with unit_of_work(state.sessionmaker) as session:
        invoice = await invoices.create_invoice(session, company_id=body.company_id,
                                                amount_minor=body.amount_minor, now=now, user_id=user.user_id)
        await audit.record(session, actor=user.audit_actor(), action="invoice.create", target_kind="invoice",
                           target_id=invoice.id, company_id=invoice.company_id, org_unit_path=None,
                           before=None, after=invoice_snapshot(invoice), now=now)
        return _invoice_out(invoice)


@router.get("/invoices", response_model=InvoicePage, summary="A company's invoices, newest first")
async def list_invoices(
    user: TopUpUserDep, state: StateDep, company_id: Annotated[int, Query(ge=1, le=2**62)],
    limit: PageLimit = 50, cursor: Cursor = None,
    status: Annotated[Literal["open", "paid", "cancelled"] | None, Query()] = None,
) -> InvoicePage:
    user.require_company(company_id)
    async with unit_of_work(state.readonly_sessionmaker) as session:
        await companies.get_company(session, company_id)
        items = await invoices.list_invoices(session, company_id=company_id, status=status, limit=limit,
                                             before_id=decode_cursor(cursor))
    return InvoicePage(items=[_invoice_out(item) for item in items], next_cursor=next_cursor(items, limit))


@router.post("/invoices/{invoice_id}/cancel", response_model=InvoiceOut, summary="Cancel an open invoice")
async def cancel_invoice(invoice_id: IdPath, user: TopUpUserDep, state: StateDep) -> InvoiceOut:
    now = state.clock()
    async with unit_of_work(state.sessionmaker) as session:
        invoice = await invoices.get_invoice(session, invoice_id, for_update=True,
                                             company_id=None if user.is_operator else user.company_id)
        user.require_company(invoice.company_id)
        before = invoice_snapshot(invoice)
        await invoices.cancel_invoice(session, invoice=invoice, now=now)
        await audit.record(session, actor=user.audit_actor(), action="invoice.cancel", target_kind="invoice",
                           target_id=invoice.id, company_id=invoice.company_id, org_unit_path=None,
                           before=before, after=invoice_snapshot(invoice), now=now)
        return _invoice_out(invoice)


@router.put("/companies/{company_id}/inn", response_model=InnOut,
            summary="Set a company's INN (transfers from it are matched to the company)")
async def set_inn(company_id: IdPath, body: InnRequest, user: OperatorDep, state: StateDep) -> InnOut:
    now = state.clock()
    async with unit_of_work(state.sessionmaker) as session:
        previous = await companies.set_company_inn(session, company_id=company_id, inn=body.inn, now=now)
        await audit.record(session, actor=user.audit_actor(), action="company.set_inn", target_kind="company",
                           target_id=company_id, company_id=company_id, org_unit_path=None,
                           before=None if previous is None else snapshot(inn=previous),
                           after=snapshot(inn=body.inn), now=now)
    return InnOut(company_id=company_id, inn=body.inn, previous_inn=previous)


# --- bank statements and the queue --------------------------------------------------------------

@router.post("/statements", response_model=ImportSummaryOut, status_code=201,
             responses={413: {"model": ErrorBody}},
             summary="Import a bank statement (the file as the raw request body)",
             openapi_extra={"requestBody": {"required": True, "content": {
                 "text/plain": {"schema": {"type": "string"}},
                 "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}})
async def import_bank_statement(
    request: Request, user: OperatorDep, state: StateDep,
    format: Annotated[Literal["1c", "csv"], Query(description="1c: 1CClientBankExchange; csv: see the docs")],
) -> ImportSummaryOut:
    raw = await _read_body(request, MAX_STATEMENT_BYTES + 1)
    now = state.clock()
    async with unit_of_work(state.sessionmaker) as session:
        result = await import_statement(session, raw=raw, format=format, now=now, user_id=user.user_id)
        summary = result.summary.as_dict()
        if result.lines:  # an import that found nothing new writes nothing, not even an audit entry
            await audit.record(session, actor=user.audit_actor(), action="statement.import",
                               target_kind="bank_statement", target_id=result.summary.statement_id,
                               company_id=None, org_unit_path=None, before=None, after=summary, now=now)
    return ImportSummaryOut(**summary)


@router.get("/queue", response_model=StatementLinePage,
            summary="Transfers waiting for an operator (or decided ones, by status), newest first")
async def list_queue(
    user: OperatorDep, state: StateDep, limit: PageLimit = 50, cursor: Cursor = None,
    status: Annotated[Literal["queued", "matched", "confirmed", "reassigned", "rejected"], Query()] = "queued",
) -> StatementLinePage:
    async with unit_of_work(state.readonly_sessionmaker) as session:
        items = await queue.list_lines(session, status=status, limit=limit, before_id=decode_cursor(cursor))
    return StatementLinePage(items=[StatementLineOut.model_validate(item, from_attributes=True) for item in items],
                             next_cursor=next_cursor(items, limit))


@router.post("/queue/{line_id}/confirm", response_model=StatementLineOut,
             summary="Credit one of the companies the matcher suggested")
async def confirm(line_id: IdPath, body: ConfirmRequest, user: OperatorDep, state: StateDep) -> StatementLineOut:
    async with unit_of_work(state.sessionmaker) as session:
        line = await queue.confirm_line(session, line_id=line_id, company_id=body.company_id,
                                        invoice_id=body.invoice_id, actor=user.audit_actor(), now=state.clock())
        return StatementLineOut.model_validate(line, from_attributes=True)


@router.post("/queue/{line_id}/reassign", response_model=StatementLineOut,
             summary="Credit a company of the operator's choosing")
async def reassign(line_id: IdPath, body: ReassignRequest, user: OperatorDep, state: StateDep) -> StatementLineOut:
    async with unit_of_work(state.sessionmaker) as session:
        line = await queue.reassign_line(session, line_id=line_id, company_id=body.company_id,
                                         invoice_id=body.invoice_id, reason=body.reason,
                                         actor=user.audit_actor(), now=state.clock())
        return StatementLineOut.model_validate(line, from_attributes=True)


@router.post("/queue/{line_id}/reject", response_model=StatementLineOut,
             summary="Refuse the transfer (it is returned to the payer outside the platform)")
async def reject(line_id: IdPath, body: RejectRequest, user: OperatorDep, state: StateDep) -> StatementLineOut:
    async with unit_of_work(state.sessionmaker) as session:
        line = await queue.reject_line(session, line_id=line_id, reason=body.reason, actor=user.audit_actor(),
                                       now=state.clock())
        return StatementLineOut.model_validate(line, from_attributes=True)


__all__ = ["StatementLineStatus", "router"]
