"""The terminal-facing API: authorize, complete, reverse, and the status of a transaction."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request, Response

from processing.api import StateDep
from processing.authorization import engine, lifecycle
from processing.authorization.engine import TerminalIdentity
from processing.authorization.idempotency import StoredAnswer
from processing.authorization.schemas import (
    AuthorizationAnswer,
    AuthorizationRequest,
    CompletionAnswer,
    CompletionRequest,
    ErrorBody,
    ReversalAnswer,
    ReversalRequest,
    TerminalTransactionId,
    TransactionStatus,
)
from processing.db.engine import unit_of_work
from processing.ledger.service import FundsMoved
from processing.terminal_api.auth import authenticate_terminal


async def _terminal(request: Request, state: StateDep) -> TerminalIdentity:
    return await authenticate_terminal(
        request, request.app.state.terminal_directory,
        max_age_seconds=state.settings.terminal_signature_max_age_seconds,
        now=state.clock().timestamp(),
    )


# The balance read by a decision may move before its guarded debit (another card of the company
# spent first): decide again; the last attempt locks the account before deciding.
FUNDS_ATTEMPTS = 3

TerminalDep = Annotated[TerminalIdentity, Depends(_terminal)]
TransactionIdPath = Annotated[TerminalTransactionId, Path(description="The terminal's id of the sale.")]

_errors = {status: {"model": ErrorBody} for status in (400, 401, 404, 409, 422, 503)}
router = APIRouter(prefix="/v1/terminal", tags=["terminal"], responses=_errors)


def _send(answer: StoredAnswer) -> Response:
    # The stored bytes, as first sent: a repeated message gets a byte-identical answer.
    return Response(content=answer.body, status_code=answer.http_status, media_type="application/json")


@router.post("/authorizations", response_model=AuthorizationAnswer,
             summary="Authorize: validate the phone's token and hold the most the pump may dispense")
async def authorize(message: AuthorizationRequest, terminal: TerminalDep, state: StateDep) -> Response:
    for attempt in range(1, FUNDS_ATTEMPTS + 1):
        try:
            async with unit_of_work(state.sessionmaker) as session:
                answer = await engine.authorize(
                    session, terminal=terminal, request=message, keyring=state.keyring,
                    settings=state.settings, fraud_rules=state.fraud_rules, now=state.clock(),
                    lock_funds_first=attempt == FUNDS_ATTEMPTS,
                )
            return _send(answer)
        except FundsMoved:
            continue  # rolled back: nothing of this attempt was kept; decide again
    raise AssertionError("the last attempt locks the account first and cannot see the funds move")


@router.post("/authorizations/{terminal_transaction_id}/completion", response_model=CompletionAnswer,
             summary="Complete: capture what was dispensed and release the rest of the hold")
async def complete(terminal_transaction_id: TransactionIdPath, message: CompletionRequest,
                   terminal: TerminalDep, state: StateDep) -> Response:
    async with unit_of_work(state.sessionmaker) as session:
        answer = await lifecycle.complete(
            session, terminal=terminal, transaction_id=terminal_transaction_id, request=message,
            settings=state.settings, fraud_rules=state.fraud_rules, now=state.clock(),
        )
    return _send(answer)


@router.post("/authorizations/{terminal_transaction_id}/reversal", response_model=ReversalAnswer,
             summary="Reverse: release the hold (timeout, customer left)")
async def reverse(terminal_transaction_id: TransactionIdPath, message: ReversalRequest,
                  terminal: TerminalDep, state: StateDep) -> Response:
    async with unit_of_work(state.sessionmaker) as session:
        answer = await lifecycle.reverse(
            session, terminal=terminal, transaction_id=terminal_transaction_id, request=message,
            fraud_rules=state.fraud_rules, now=state.clock(),
        )
    return _send(answer)


@router.get("/authorizations/{terminal_transaction_id}", response_model=TransactionStatus,
            summary="Where a transaction stands (for a terminal that lost an answer)")
async def status(terminal_transaction_id: TransactionIdPath, terminal: TerminalDep,
                 state: StateDep) -> TransactionStatus:
    async with unit_of_work(state.readonly_sessionmaker) as session:
        return await lifecycle.transaction_status(session, terminal=terminal, transaction_id=terminal_transaction_id)
