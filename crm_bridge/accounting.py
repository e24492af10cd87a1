"""Accounting exports for the CRM / accounting system (service credentials): a company's daily
register of operations, as JSON or CSV, and the reconciliation of that register with the ledger."""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Response

from crm_bridge.api.auth import crm_client
from processing.accounting.reconciliation import reconcile
from processing.accounting.register import daily_register
from processing.api import StateDep
from processing.authorization.schemas import ErrorBody
from processing.db.engine import unit_of_work

router = APIRouter(prefix="/v1/crm/companies/{company_id}", tags=["crm: accounting"],
                   dependencies=[Depends(crm_client)],
                   responses={status: {"model": ErrorBody} for status in (401, 404, 422)})
CompanyId = Annotated[int, Path(ge=1, le=2**62)]
Day = Annotated[date, Query(alias="date", description="The company's local calendar day, YYYY-MM-DD.")]


class ExportFormat(StrEnum):
    JSON = "json"
    CSV = "csv"


@router.get("/register", summary="The day's register of money operations (JSON or CSV)",
            responses={200: {"content": {"text/csv": {}}}})
async def register(company_id: CompanyId, day: Day, state: StateDep,
                   format: ExportFormat = ExportFormat.JSON) -> Any:  # noqa: A002 - the query name
    async with unit_of_work(state.readonly_sessionmaker) as session:
        day_register = await daily_register(session, company_id=company_id, local_date=day)
    if format == ExportFormat.CSV:
        filename = f"register-{company_id}-{day.isoformat()}.csv"
        return Response(day_register.as_csv(), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{filename}"'})
    return day_register.as_json()


@router.get("/reconciliation", summary="Proof that the day's register equals the ledger's movements")
async def reconciliation(company_id: CompanyId, day: Day, state: StateDep) -> dict[str, Any]:
    """``balanced`` is true only when every total and every journal entry of the day agree."""
    async with unit_of_work(state.readonly_sessionmaker) as session:
        return (await reconcile(session, company_id=company_id, local_date=day)).as_json()
