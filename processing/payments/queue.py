"""The operator's queue of transfers the matcher would not decide: confirm, re-assign, reject.

Every decision is one transaction with its credit and its audit entry. A line is decided once:
the decision is a conditional UPDATE from ``queued``; a second decision (or a concurrent one)
finds it decided and gets 409.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from processing.audit import service as audit
from processing.audit.service import AuditActor, snapshot
from processing.ledger.service import top_up
from processing.payments.companies import get_company
from processing.payments.errors import (
    AlreadyDecided,
    InvalidTopUp,
    NotACandidate,
    StatementLineNotFound,
)
from processing.payments.invoices import get_invoice, record_payment
from processing.payments.models import MatchRule, StatementLine, StatementLineStatus

L = StatementLineStatus


async def list_lines(session: AsyncSession, *, status: str, limit: int,
                     before_id: int | None) -> list[StatementLine]:
    statement = select(StatementLine).where(StatementLine.status == status)
    if before_id:
        statement = statement.where(StatementLine.id < before_id)
    return list((await session.execute(statement.order_by(StatementLine.id.desc()).limit(limit))).scalars())


async def get_line(session: AsyncSession, line_id: int) -> StatementLine:
    line = await session.get(StatementLine, line_id)
    if line is None:
        raise StatementLineNotFound(f"statement line {line_id} does not exist")
    return line


def _line_snapshot(line: StatementLine) -> dict:
    return snapshot(status=line.status, company_id=line.company_id, invoice_id=line.invoice_id,
                    amount_minor=line.amount_minor, matched_by=line.matched_by,
                    credited_entry_id=line.credited_entry_id, decision_reason=line.decision_reason)


async def _decide(session: AsyncSession, line_id: int, *, status: str, values: dict, actor: AuditActor,
                  now: datetime) -> tuple[StatementLine, dict]:
    line = await get_line(session, line_id)
    before = _line_snapshot(line)
    moved = (await session.execute(
        update(StatementLine).where(StatementLine.id == line_id, StatementLine.status == L.QUEUED)
        .values(status=status, decided_by_user_id=actor.user_id, decided_at=now, **values)
        .execution_options(synchronize_session=False)
    )).rowcount == 1
    if not moved:
        await session.refresh(line)
        raise AlreadyDecided(f"statement line {line_id} is already {line.status}")
    await session.refresh(line)
    return line, before


async def _credit(session: AsyncSession, line: StatementLine, *, company_id: int, invoice_id: int | None,
                  how: str, now: datetime) -> dict:
    company = await get_company(session, company_id)
    if company.currency != line.currency:
        raise InvalidTopUp(f"company {company_id} keeps its account in {company.currency}, "
                           f"the transfer is in {line.currency}")
    if invoice_id is not None:
        invoice = await get_invoice(session, invoice_id, company_id=company_id, for_update=True)
        record_payment(invoice, line.amount_minor, now)
    entry_id = await top_up(session, company_id=company_id, amount_minor=line.amount_minor,
                            description=f"bank transfer {line.document_number} of "
                                        f"{line.document_date:%d.%m.%Y}, {how} by an operator",
                            reference=f"bank transfer {line.document_number}"[:200], now=now)
    return {"company_id": company_id, "invoice_id": invoice_id, "credited_entry_id": entry_id,
            "matched_by": MatchRule.OPERATOR.value}


async def confirm_line(session: AsyncSession, *, line_id: int, company_id: int, invoice_id: int | None,
                       actor: AuditActor, now: datetime) -> StatementLine:
    """Credit one of the companies the matcher suggested."""
    line = await get_line(session, line_id)
    suggested = {candidate["company_id"] for candidate in line.candidates or []}
    if line.status == L.QUEUED and company_id not in suggested:
        raise NotACandidate(f"company {company_id} is not among the matcher's suggestions "
                            f"{sorted(suggested) or '(none)'}; re-assign the line instead")
    return await _credit_and_decide(session, line_id, status=L.CONFIRMED, company_id=company_id,
                                    invoice_id=invoice_id, reason=None, actor=actor, now=now)


async def reassign_line(session: AsyncSession, *, line_id: int, company_id: int, invoice_id: int | None,
                        reason: str, actor: AuditActor, now: datetime) -> StatementLine:
    """Credit a company of the operator's choosing (the matcher found none, or the wrong ones)."""
    return await _credit_and_decide(session, line_id, status=L.REASSIGNED, company_id=company_id,
                                    invoice_id=invoice_id, reason=reason, actor=actor, now=now)


async def _credit_and_decide(session: AsyncSession, line_id: int, *, status: str, company_id: int,
                             invoice_id: int | None, reason: str | None, actor: AuditActor,
                             now: datetime) -> StatementLine:
    line, before = await _decide(session, line_id, status=status, values={"decision_reason": reason},
                                 actor=actor, now=now)
    credited = await _credit(session, line, company_id=company_id, invoice_id=invoice_id,
                             how="confirmed" if status == L.CONFIRMED else "re-assigned", now=now)
    await session.execute(update(StatementLine).where(StatementLine.id == line_id).values(**credited)
                          .execution_options(synchronize_session=False))
    await session.refresh(line)
    await audit.record(session, actor=actor, action=f"statement_line.{'confirm' if status == L.CONFIRMED else 'reassign'}",
                       target_kind="statement_line", target_id=line_id, company_id=company_id,
                       org_unit_path=None, before=before, after=_line_snapshot(line), now=now)
    return line


async def reject_line(session: AsyncSession, *, line_id: int, reason: str, actor: AuditActor,
                      now: datetime) -> StatementLine:
    """Nobody's money on the platform: it goes back to the payer outside the platform."""
    line, before = await _decide(session, line_id, status=L.REJECTED, values={"decision_reason": reason},
                                 actor=actor, now=now)
    await audit.record(session, actor=actor, action="statement_line.reject", target_kind="statement_line",
                       target_id=line_id, company_id=None, org_unit_path=None, before=before,
                       after=_line_snapshot(line), now=now)
    return line
