"""One authorization as the security team sees it: the decision, its fraud trace (which rules ran,
on what inputs, with what outcome), the station and terminal, and what became of the hold."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from fraud.access import SecurityDep
from fraud.common import CardRef, CompanyRef, path_id
from processing.api import StateDep
from processing.authorization.models import Authorization, Completion, Reversal
from processing.cards.models import Card
from processing.cards.service import masked_card_number
from processing.db.engine import unit_of_work
from processing.errors import NotFound
from processing.orgs.models import Company, Driver
from processing.stations.models import Station, Terminal


class AuthorizationNotFound(NotFound):
    code = "authorization_not_found"


class StationRef(BaseModel):
    station_id: int
    code: str
    name: str
    region: str
    latitude: float
    longitude: float


class DriverRef(BaseModel):
    driver_id: int
    full_name: str
    phone: str


class CompletionView(BaseModel):
    amount_minor: int
    volume_ml: int
    product: str
    created_at: datetime


class ReversalView(BaseModel):
    source: str = Field(description="terminal or expiry")
    reason: str
    released_amount_minor: int
    created_at: datetime


class AuthorizationView(BaseModel):
    authorization_id: int
    created_at: datetime
    status: str
    response_code: str
    decided_by: str
    decline_reason: str | None
    reason: str
    fraud_verdict: str | None
    fraud_trace: dict | None = Field(description=(
        "Which rules ran: {ruleset, verdict, context, rules: [{rule, rule_id, version, outcome, fired, "
        "inputs, detail}]}; empty when no rules ran."))
    product: str
    entry_mode: str
    currency: str
    requested_amount_minor: int
    approved_amount_minor: int
    hold_volume_ml: int
    captured_amount_minor: int
    captured_volume_ml: int
    clock_skew_seconds: int | None
    terminal_id: int
    terminal_code: str
    terminal_transaction_id: str
    station: StationRef
    company: CompanyRef | None
    card: CardRef | None
    driver: DriverRef | None
    enrollment_id: int | None
    completion: CompletionView | None
    reversal: ReversalView | None


async def authorization_view(session: AsyncSession, *, authorization_id: int) -> AuthorizationView:
    """The authorization with everything around it (404 authorization_not_found)."""
    row = (await session.execute(
        select(Authorization, Station, Terminal.code, Company.name, Card, Driver, Completion, Reversal)
        .join(Station, Station.id == Authorization.station_id)
        .join(Terminal, Terminal.id == Authorization.terminal_id)
        .outerjoin(Company, Company.id == Authorization.company_id)
        .outerjoin(Card, Card.id == Authorization.card_id)
        .outerjoin(Driver, Driver.id == Authorization.driver_id)
        .outerjoin(Completion, Completion.authorization_id == Authorization.id)
        .outerjoin(Reversal, Reversal.authorization_id == Authorization.id)
        .where(Authorization.id == authorization_id)
    )).first()
    if row is None:
        raise AuthorizationNotFound(f"authorization {authorization_id} does not exist")
    auth, station, terminal_code, company_name, card, driver, completion, reversal = row
    return AuthorizationView(
        authorization_id=auth.id, created_at=auth.created_at, status=auth.status,
        response_code=auth.response_code, decided_by=auth.decided_by, decline_reason=auth.decline_reason,
        reason=auth.reason, fraud_verdict=auth.fraud_verdict, fraud_trace=auth.fraud_trace,
        product=auth.product, entry_mode=auth.entry_mode, currency=auth.currency,
        requested_amount_minor=auth.requested_amount_minor, approved_amount_minor=auth.approved_amount_minor,
        hold_volume_ml=auth.hold_volume_ml, captured_amount_minor=auth.captured_amount_minor,
        captured_volume_ml=auth.captured_volume_ml, clock_skew_seconds=auth.clock_skew_seconds,
        terminal_id=auth.terminal_id, terminal_code=terminal_code,
        terminal_transaction_id=auth.terminal_transaction_id,
        station=StationRef(station_id=station.id, code=station.code, name=station.name, region=station.region,
                           latitude=station.latitude, longitude=station.longitude),
        company=None if auth.company_id is None else CompanyRef(company_id=auth.company_id, name=company_name),
        card=None if card is None else card_ref(card),
        driver=None if driver is None else DriverRef(driver_id=driver.id, full_name=driver.full_name,
                                                     phone=driver.phone),
        enrollment_id=auth.enrollment_id,
        completion=None if completion is None else CompletionView(
            amount_minor=completion.amount_minor, volume_ml=completion.volume_ml, product=completion.product,
            created_at=completion.created_at),
        reversal=None if reversal is None else ReversalView(
            source=reversal.source, reason=reversal.reason, released_amount_minor=reversal.released_amount_minor,
            created_at=reversal.created_at),
    )


def card_ref(card: Card) -> CardRef:
    return CardRef(card_id=card.id, masked_card_number=masked_card_number(card.pan_first6, card.pan_last4),
                   last4=card.pan_last4, status=card.status)


router = APIRouter(tags=["fraud"])
AuthorizationId = path_id("The authorization's id.")


@router.get("/authorizations/{authorization_id}", response_model=AuthorizationView,
            summary="An authorization with its fraud trace, station, card and what became of the hold")
async def get_authorization(authorization_id: AuthorizationId, actor: SecurityDep, state: StateDep) -> AuthorizationView:
    async with unit_of_work(state.readonly_sessionmaker) as session:
        return await authorization_view(session, authorization_id=authorization_id)
