"""Cabinet routes: company account, statement, transactions (list and CSV export), spend report."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated

from fastapi import Depends, Query
from fastapi.responses import StreamingResponse

from mobile_api.cabinet.access import ActorDep, CompanyAdminDep, company_router
from mobile_api.cabinet.account import service
from mobile_api.cabinet.account.period import RequiredSince, RequiredUntil, Since, Until, check_period
from mobile_api.cabinet.account.schemas import (
    AccountView,
    SpendGrouping,
    SpendReport,
    StatementPage,
    TransactionPage,
)
from processing.api import StateDep
from processing.authorization.models import AuthorizationStatus
from processing.db.engine import unit_of_work
from processing.paging import Cursor, PageLimit, decode_cursor, encode_cursor
from processing.products import Product

router = company_router(tags=["cabinet: company account"])

_Id = Query(ge=1, le=2**62)


def transaction_filters(
    org_unit_id: Annotated[int | None, Query(ge=1, le=2**62, description="This unit and every unit below it.")] = None,
    driver_id: Annotated[int | None, _Id] = None,
    card_id: Annotated[int | None, _Id] = None,
    station_id: Annotated[int | None, _Id] = None,
    product: Annotated[Product | None, Query()] = None,
    status: Annotated[AuthorizationStatus | None, Query()] = None,
) -> service.TransactionFilters:
    return service.TransactionFilters(org_unit_id=org_unit_id, driver_id=driver_id, card_id=card_id,
                                      station_id=station_id, product=product, status=status)


FiltersDep = Annotated[service.TransactionFilters, Depends(transaction_filters)]


@router.get("/account", response_model=AccountView, summary="The company's balance, credit limit and holds")
async def get_account(actor: CompanyAdminDep, state: StateDep) -> AccountView:
    async with unit_of_work(state.readonly_sessionmaker) as session:
        return await service.account_view(session, actor)


@router.get("/account/statement", response_model=StatementPage,
            summary="Ledger movements of the company's available and held accounts, newest first")
async def get_statement(actor: CompanyAdminDep, state: StateDep, since: Since = None, until: Until = None,
                        limit: PageLimit = 50, cursor: Cursor = None) -> StatementPage:
    check_period(since, until)
    below = decode_cursor(cursor)
    async with unit_of_work(state.readonly_sessionmaker) as session:
        return await service.statement(session, actor, since=since, until=until, limit=limit,
                                       below_line_id=below)


@router.get("/transactions", response_model=TransactionPage,
            summary="Transactions (authorizations) in your scope, newest first, with filters")
async def list_transactions(actor: ActorDep, state: StateDep, filters: FiltersDep, since: Since = None,
                            until: Until = None, limit: PageLimit = 50, cursor: Cursor = None) -> TransactionPage:
    check_period(since, until)
    below = decode_cursor(cursor)
    async with unit_of_work(state.readonly_sessionmaker) as session:
        scope = await service.resolve_filters(session, actor, replace(filters, since=since, until=until))
        rows = await service.transactions(session, scope, limit=limit + 1, below_id=below)
    return TransactionPage(
        transactions=rows[:limit],
        next_cursor=encode_cursor(rows[limit - 1].authorization_id) if len(rows) > limit else None,
    )


@router.get("/transactions.csv", response_class=StreamingResponse,
            summary="Transactions as CSV (a period of at most 366 days, at most 100 000 rows)",
            responses={200: {"content": {"text/csv": {}}, "description": "The CSV file, header row first."}})
async def export_transactions(actor: ActorDep, state: StateDep, filters: FiltersDep, since: RequiredSince,
                              until: RequiredUntil) -> StreamingResponse:
    check_period(since, until, bounded=True)
    async with unit_of_work(state.readonly_sessionmaker) as session:
        scope = await service.resolve_filters(session, actor, replace(filters, since=since, until=until))
        await service.check_export_size(session, scope)
    filename = f"transactions-{actor.company_id}-{since:%Y%m%d}-{until:%Y%m%d}.csv"
    return StreamingResponse(
        service.csv_chunks(state.readonly_sessionmaker, scope), media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@router.get("/reports/spend", response_model=SpendReport,
            summary="Spend by org unit, driver or product for a period of at most 366 days")
async def spend_report(actor: ActorDep, state: StateDep, since: RequiredSince, until: RequiredUntil,
                       group_by: Annotated[SpendGrouping, Query()] = SpendGrouping.UNIT) -> SpendReport:
    check_period(since, until, bounded=True)
    async with unit_of_work(state.readonly_sessionmaker) as session:
        return await service.spend_report(session, actor, since=since, until=until, group_by=group_by)

