"""The company account, its statement, transactions (list and CSV), and spend by unit, driver, product.

Reads only. Transactions are authorizations; a sub-admin sees those whose org unit (the card's
unit when it was authorized, ``Authorization.org_unit_id``) lies in their subtree, placed where
that unit is in the tree now.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mobile_api.cabinet.access import CabinetActor, scoped_card, scoped_driver, scoped_unit
from mobile_api.cabinet.account.schemas import (
    AccountView,
    SpendGrouping,
    SpendReport,
    SpendRow,
    SpendTotals,
    StatementAccount,
    StatementLineView,
    StatementPage,
    TransactionView,
)
from processing.authorization.models import Authorization, AuthorizationStatus
from processing.cards.models import Card
from processing.cards.service import masked_card_number
from processing.errors import NotFound, ProcessingError
from processing.ledger import statement as ledger_statement
from processing.ledger.models import Account
from processing.orgs.models import Company, Driver, OrgUnit, path_ids
from processing.paging import encode_cursor
from processing.products import Product
from processing.stations.models import Station

CSV_MAX_ROWS = 100_000
_CSV_BATCH = 1_000


class StationNotFound(NotFound):
    code = "station_not_found"


class ExportTooLarge(ProcessingError):
    status_code = 422
    code = "export_too_large"


# --- the account ---------------------------------------------------------------------------------

async def account_view(session: AsyncSession, actor: CabinetActor) -> AccountView:
    """Balances of the company's two ledger accounts."""
    company = await session.get(Company, actor.company_id)
    available = await session.get(Account, company.available_account_id)
    held = await session.get(Account, company.held_account_id)
    return AccountView(
        currency=available.currency, balance_minor=available.balance_minor,
        credit_limit_minor=available.credit_limit_minor, held_minor=held.balance_minor,
        spendable_minor=available.balance_minor + available.credit_limit_minor,
    )


async def statement(
    session: AsyncSession, actor: CabinetActor, *, since: datetime | None, until: datetime | None,
    limit: int, below_line_id: int | None,
) -> StatementPage:
    """Movements of the available and held accounts, newest first; with a period, the available
    balance at its start and end."""
    company = await session.get(Company, actor.company_id)
    names = {company.available_account_id: StatementAccount.AVAILABLE,
             company.held_account_id: StatementAccount.HELD}
    lines = await ledger_statement.account_lines(
        session, account_ids=list(names), since=since, until=until, below_line_id=below_line_id,
        limit=limit + 1,
    )
    opening = closing = None
    if since is not None or until is not None:
        opening = (0 if since is None else await ledger_statement.balance_before(
            session, account_id=company.available_account_id, moment=since))
        closing = await ledger_statement.balance_before(
            session, account_id=company.available_account_id, moment=until)
    views = [
        StatementLineView(
            line_id=line.line_id, entry_id=line.entry_id, entry_kind=line.entry_kind,
            description=line.description, authorization_id=line.authorization_id,
            account=names[line.account_id], amount_minor=line.amount_minor, created_at=line.created_at,
        )
        for line in lines[:limit]
    ]
    return StatementPage(
        currency=company.currency, period_from=since, period_to=until, opening_balance_minor=opening,
        closing_balance_minor=closing, lines=views,
        next_cursor=encode_cursor(views[-1].line_id) if len(lines) > limit else None,
    )


# --- transactions --------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class TransactionFilters:
    """What the caller asked for; ids not yet checked against their scope."""

    since: datetime | None = None
    until: datetime | None = None
    org_unit_id: int | None = None
    driver_id: int | None = None
    card_id: int | None = None
    station_id: int | None = None
    product: Product | None = None
    status: AuthorizationStatus | None = None


@dataclass(frozen=True, slots=True)
class _Scope:
    """Filters checked against the caller's scope: safe to run after the request's checks."""

    company_id: int
    unit_path: str | None  # None: the whole company, authorizations without a unit included
    filters: TransactionFilters


async def resolve_filters(session: AsyncSession, actor: CabinetActor, filters: TransactionFilters) -> _Scope:
    """404 for a unit, driver or card outside the caller's subtree, and for an unknown station."""
    unit_path = None if actor.whole_company else actor.scope_path
    if filters.org_unit_id is not None:
        unit_path = (await scoped_unit(session, actor, filters.org_unit_id)).path
    if filters.driver_id is not None:
        await scoped_driver(session, actor, filters.driver_id)
    if filters.card_id is not None:
        await scoped_card(session, actor, filters.card_id)
    if filters.station_id is not None and await session.get(Station, filters.station_id) is None:
        raise StationNotFound(f"station {filters.station_id} does not exist")
    return _Scope(company_id=actor.company_id, unit_path=unit_path, filters=filters)


def _where(statement: Select, scope: _Scope) -> Select:
    filters = scope.filters
    statement = statement.where(Authorization.company_id == scope.company_id)
    if scope.unit_path is not None:
        statement = statement.where(OrgUnit.path.startswith(scope.unit_path, autoescape=True))
    if filters.since is not None:
        statement = statement.where(Authorization.created_at >= filters.since)
    if filters.until is not None:
        statement = statement.where(Authorization.created_at < filters.until)
    for column, value in ((Authorization.driver_id, filters.driver_id), (Authorization.card_id, filters.card_id),
                          (Authorization.station_id, filters.station_id), (Authorization.product, filters.product),
                          (Authorization.status, filters.status)):
        if value is not None:
            statement = statement.where(column == value)
    return statement


_COLUMNS = (
    Authorization.id, Authorization.created_at, Authorization.status, Authorization.response_code,
    Authorization.decline_reason, Authorization.reason, Authorization.product, Authorization.currency,
    Authorization.requested_amount_minor, Authorization.approved_amount_minor,
    Authorization.captured_amount_minor, Authorization.captured_volume_ml, Authorization.unit_price_minor,
    Authorization.station_id, Station.name, Authorization.card_id, Card.pan_first6, Card.pan_last4,
    Authorization.driver_id, Driver.full_name, Authorization.org_unit_id, OrgUnit.name,
)


async def transactions(
    session: AsyncSession, scope: _Scope, *, limit: int, below_id: int | None = None,
) -> list[TransactionView]:
    """Authorizations matching the filters, newest (highest id) first."""
    statement = (
        select(*_COLUMNS)
        .join(Station, Station.id == Authorization.station_id)
        .outerjoin(Card, Card.id == Authorization.card_id)
        .outerjoin(Driver, Driver.id == Authorization.driver_id)
        .outerjoin(OrgUnit, OrgUnit.id == Authorization.org_unit_id)
        .order_by(Authorization.id.desc())
        .limit(limit)
    )
    if below_id is not None:
        statement = statement.where(Authorization.id < below_id)
    rows = (await session.execute(_where(statement, scope))).all()
    return [_transaction_view(row) for row in rows]


def _transaction_view(row: Sequence) -> TransactionView:
    (authorization_id, created_at, status, response_code, decline_reason, reason, product, currency,
     requested, approved, captured, captured_volume, unit_price, station_id, station_name, card_id,
     first6, last4, driver_id, driver_name, org_unit_id, org_unit_name) = row
    return TransactionView(
        authorization_id=authorization_id, created_at=created_at, status=status,
        response_code=response_code, decline_reason=decline_reason, reason=reason, product=product,
        currency=currency, requested_amount_minor=requested, approved_amount_minor=approved,
        captured_amount_minor=captured, captured_volume_ml=captured_volume, unit_price_minor=unit_price,
        station_id=station_id, station_name=station_name, card_id=card_id,
        card_number=masked_card_number(first6, last4) if card_id is not None and first6 else None,
        driver_id=driver_id, driver_name=driver_name, org_unit_id=org_unit_id, org_unit_name=org_unit_name,
    )


async def count_transactions(session: AsyncSession, scope: _Scope) -> int:
    statement = (select(func.count(Authorization.id))
                 .outerjoin(OrgUnit, OrgUnit.id == Authorization.org_unit_id))
    return int((await session.execute(_where(statement, scope))).scalar_one())


async def check_export_size(session: AsyncSession, scope: _Scope) -> int:
    """Refuse (422) an export above CSV_MAX_ROWS rather than cut it short unnoticed."""
    rows = await count_transactions(session, scope)
    if rows > CSV_MAX_ROWS:
        raise ExportTooLarge(f"the export would have {rows} rows, more than {CSV_MAX_ROWS}; "
                             "choose a shorter period or more filters")
    return rows


CSV_HEADER = (
    "authorization_id", "created_at", "status", "response_code", "decline_reason", "reason", "product",
    "currency", "requested_amount", "requested_amount_minor", "approved_amount", "approved_amount_minor",
    "captured_amount", "captured_amount_minor", "captured_volume_litres", "captured_volume_ml",
    "unit_price", "unit_price_minor", "station_id", "station_name", "card_id", "card_number",
    "driver_id", "driver_name", "org_unit_id", "org_unit_name",
)


def decimal_amount(amount_minor: int | None) -> str:
    """12345 -> "123.45": exact, no grouping, no currency (a CSV cell)."""
    if amount_minor is None:
        return ""
    sign = "-" if amount_minor < 0 else ""
    major, minor = divmod(abs(amount_minor), 100)
    return f"{sign}{major}.{minor:02d}"


def decimal_litres(volume_ml: int) -> str:
    """45800 -> "45.800"."""
    sign = "-" if volume_ml < 0 else ""
    litres, millilitres = divmod(abs(volume_ml), 1000)
    return f"{sign}{litres}.{millilitres:03d}"


def safe_text(value: str | None) -> str:
    """A free-text cell a spreadsheet will not run as a formula (names are typed by admins)."""
    if not value:
        return ""
    return "'" + value if value[0] in "=+-@\t\r" else value


def _csv_row(view: TransactionView) -> list:
    def number(value: int | None) -> str:
        return "" if value is None else str(value)

    return [
        view.authorization_id, view.created_at.isoformat(), view.status, view.response_code,
        view.decline_reason or "", safe_text(view.reason), view.product, view.currency,
        decimal_amount(view.requested_amount_minor), view.requested_amount_minor,
        decimal_amount(view.approved_amount_minor), view.approved_amount_minor,
        decimal_amount(view.captured_amount_minor), view.captured_amount_minor,
        decimal_litres(view.captured_volume_ml), view.captured_volume_ml,
        decimal_amount(view.unit_price_minor), number(view.unit_price_minor),
        view.station_id, safe_text(view.station_name), number(view.card_id), view.card_number or "",
        number(view.driver_id), safe_text(view.driver_name), number(view.org_unit_id),
        safe_text(view.org_unit_name),
    ]


async def csv_chunks(sessionmaker: async_sessionmaker[AsyncSession], scope: _Scope) -> AsyncIterator[str]:
    """The export as text chunks: a header row, then the rows newest first, read in keyset batches
    in one read transaction (the response streams; the whole export is never in memory)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_HEADER)
    yield buffer.getvalue()
    below_id, sent = None, 0
    async with sessionmaker() as session, session.begin():
        while sent < CSV_MAX_ROWS:
            batch = await transactions(session, scope, limit=min(_CSV_BATCH, CSV_MAX_ROWS - sent),
                                       below_id=below_id)
            if not batch:
                break
            buffer.seek(0)
            buffer.truncate()
            writer.writerows(_csv_row(view) for view in batch)
            yield buffer.getvalue()
            sent += len(batch)
            below_id = batch[-1].authorization_id


# --- spend report --------------------------------------------------------------------------------

_PRODUCT_NAMES = {
    Product.DIESEL: "Diesel", Product.AI92: "AI-92", Product.AI95: "AI-95", Product.AI98: "AI-98",
    Product.GAS: "Autogas (LPG)", Product.ADBLUE: "AdBlue", Product.CAR_WASH: "Car wash",
    Product.SHOP: "Shop goods",
}

_COMPLETED = Authorization.status == AuthorizationStatus.COMPLETED
_HELD = Authorization.status == AuthorizationStatus.APPROVED


@dataclass
class _Sums:
    captured_amount_minor: int = 0
    captured_volume_ml: int = 0
    completed_count: int = 0
    held_amount_minor: int = 0
    held_count: int = 0

    def add(self, other: _Sums) -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))


async def spend_report(
    session: AsyncSession, actor: CabinetActor, *, since: datetime, until: datetime, group_by: SpendGrouping,
) -> SpendReport:
    """Captured and held amounts of the period's authorizations in the caller's scope, by group."""
    scope = await resolve_filters(session, actor, TransactionFilters(since=since, until=until))
    key_column = {SpendGrouping.UNIT: Authorization.org_unit_id, SpendGrouping.DRIVER: Authorization.driver_id,
                  SpendGrouping.PRODUCT: Authorization.product}[group_by]
    statement = (
        select(key_column,
               func.coalesce(func.sum(case((_COMPLETED, Authorization.captured_amount_minor), else_=0)), 0),
               func.coalesce(func.sum(case((_COMPLETED, Authorization.captured_volume_ml), else_=0)), 0),
               func.coalesce(func.sum(case((_COMPLETED, 1), else_=0)), 0),
               func.coalesce(func.sum(case((_HELD, Authorization.approved_amount_minor), else_=0)), 0),
               func.coalesce(func.sum(case((_HELD, 1), else_=0)), 0))
        .outerjoin(OrgUnit, OrgUnit.id == Authorization.org_unit_id)
        .where(Authorization.status.in_([AuthorizationStatus.COMPLETED, AuthorizationStatus.APPROVED]))
        .group_by(key_column)
    )
    sums = {key: _Sums(*(int(value) for value in values))
            for key, *values in (await session.execute(_where(statement, scope))).all()}
    totals = _Sums()
    for row_sums in sums.values():
        totals.add(row_sums)
    if group_by == SpendGrouping.UNIT:
        rows = await _unit_rows(session, actor, sums)
    elif group_by == SpendGrouping.DRIVER:
        rows = await _driver_rows(session, sums)
    else:
        rows = [_row(key, _PRODUCT_NAMES.get(key, key), row_sums) for key, row_sums in sums.items()]
    if group_by != SpendGrouping.UNIT:
        rows.sort(key=lambda row: (-row.captured_amount_minor, -row.held_amount_minor, str(row.key)))
    company = await session.get(Company, actor.company_id)
    return SpendReport(group_by=group_by, period_from=since, period_to=until, currency=company.currency,
                       rows=rows, totals=SpendTotals(**vars(totals)))


def _row(key: int | str | None, name: str, sums: _Sums, **extra) -> SpendRow:
    return SpendRow(key=key, name=name, **vars(sums), **extra)


async def _driver_rows(session: AsyncSession, sums: dict) -> list[SpendRow]:
    ids = [key for key in sums if key is not None]
    names = dict((await session.execute(
        select(Driver.id, Driver.full_name).where(Driver.id.in_(ids))
    )).all()) if ids else {}
    return [_row(key, names.get(key, "(no driver)") if key is not None else "(no driver)", row_sums)
            for key, row_sums in sums.items()]


async def _unit_rows(session: AsyncSession, actor: CabinetActor, sums: dict) -> list[SpendRow]:
    """Every unit of the caller's subtree, in tree order: its own spend and its subtree's
    (children rolled up into their ancestors, never above the caller's own unit)."""
    units = (await session.execute(
        select(OrgUnit.id, OrgUnit.parent_id, OrgUnit.name, OrgUnit.path, OrgUnit.status)
        .where(OrgUnit.company_id == actor.company_id,
               OrgUnit.path.startswith(actor.scope_path, autoescape=True))
    )).all()
    in_scope = {unit.id for unit in units}
    subtree = {unit.id: _Sums() for unit in units}
    for unit in units:
        if unit.id in sums:
            for ancestor_id in path_ids(unit.path):
                if ancestor_id in in_scope:
                    subtree[ancestor_id].add(sums[unit.id])
    rows = [
        _row(unit.id, unit.name, sums.get(unit.id, _Sums()), parent_id=unit.parent_id, path=unit.path,
             subtree_amount_minor=subtree[unit.id].captured_amount_minor,
             subtree_volume_ml=subtree[unit.id].captured_volume_ml,
             subtree_completed_count=subtree[unit.id].completed_count)
        for unit in sorted(units, key=lambda unit: path_ids(unit.path))
        # A closed unit stays in the report while it has spend in the period.
        if unit.status == "active" or unit.id in sums or subtree[unit.id] != _Sums()
    ]
    if None in sums:  # authorizations from before units were recorded on them (company admins only)
        rows.append(_row(None, "(no unit)", sums[None]))
    return rows
