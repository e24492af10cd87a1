"""Event replay, webhook endpoints and manual re-delivery (the operator's side of the relay)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_bridge.operator_auth import Operator
from crm_bridge.relay.envelope import ENVELOPE_COLUMNS, envelope
from crm_bridge.relay.schemas import (
    CreatedWebhookEndpoint,
    EventEnvelope,
    EventPage,
    NewWebhookEndpoint,
    WebhookDeliveryPage,
    WebhookDeliveryView,
    WebhookEndpointChange,
    WebhookEndpointView,
)
from crm_bridge.relay.signing import new_secret
from processing.audit.service import record, snapshot
from processing.crypto import Keyring
from processing.errors import Conflict, NotFound
from processing.orgs.models import Company
from processing.outbox.delivery_models import (
    WEBHOOK_SECRET_PURPOSE,
    DeliveryStatus,
    WebhookDelivery,
    WebhookEndpoint,
)
from processing.outbox.models import OutboxEvent


class CompanyNotFound(NotFound):
    code = "company_not_found"


class WebhookEndpointNotFound(NotFound):
    code = "webhook_endpoint_not_found"


class WebhookDeliveryNotFound(NotFound):
    code = "webhook_delivery_not_found"


class DeliveryNotDead(Conflict):
    code = "delivery_not_dead"


async def _require_company(session: AsyncSession, company_id: int) -> None:
    if await session.get(Company, company_id) is None:
        raise CompanyNotFound(f"company {company_id} does not exist")


# --- replay ----------------------------------------------------------------------------------

async def replay(session: AsyncSession, *, company_id: int, after_seq: int, limit: int) -> EventPage:
    """A company's numbered events with company_seq > after_seq, in order."""
    await _require_company(session, company_id)
    rows = (await session.execute(
        select(*ENVELOPE_COLUMNS)
        .where(OutboxEvent.company_id == company_id, OutboxEvent.company_seq > after_seq)
        .order_by(OutboxEvent.company_seq).limit(limit + 1)
    )).all()
    page = rows[:limit]
    return EventPage(events=[EventEnvelope(**envelope(row)) for row in page],
                     next_after_seq=page[-1].company_seq if page else after_seq, has_more=len(rows) > limit)


# --- endpoints -------------------------------------------------------------------------------

def _view(endpoint: WebhookEndpoint) -> WebhookEndpointView:
    return WebhookEndpointView(
        id=endpoint.id, company_id=endpoint.company_id, url=endpoint.url, event_types=endpoint.event_types,
        description=endpoint.description, active=endpoint.active, created_at=endpoint.created_at,
        updated_at=endpoint.updated_at,
    )


def _snapshot(endpoint: WebhookEndpoint) -> dict:
    # Never the secret, not even encrypted.
    return snapshot(url=endpoint.url, company_id=endpoint.company_id, event_types=endpoint.event_types,
                    description=endpoint.description, active=endpoint.active)


async def create_endpoint(session: AsyncSession, keyring: Keyring, *, operator: Operator,
                          request: NewWebhookEndpoint, now: datetime) -> CreatedWebhookEndpoint:
    if request.company_id is not None:
        await _require_company(session, request.company_id)
    secret = request.secret or new_secret()
    endpoint = WebhookEndpoint(
        company_id=request.company_id, url=str(request.url), event_types=request.event_types,
        description=request.description, active=True, created_at=now, updated_at=now,
        secret_encrypted=keyring.encrypt(secret.encode(), purpose=WEBHOOK_SECRET_PURPOSE),
    )
    session.add(endpoint)
    await session.flush()
    await record(session, actor=operator.audit_actor(), action="webhook_endpoint.create",
                 target_kind="webhook_endpoint", target_id=endpoint.id, company_id=endpoint.company_id,
                 org_unit_path=None, before=None, after=_snapshot(endpoint), now=now)
    return CreatedWebhookEndpoint(**_view(endpoint).model_dump(), secret=secret)


async def list_endpoints(session: AsyncSession, *, company_id: int | None) -> list[WebhookEndpointView]:
    statement = select(WebhookEndpoint).order_by(WebhookEndpoint.id)
    if company_id is not None:
        statement = statement.where(WebhookEndpoint.company_id == company_id)
    return [_view(endpoint) for endpoint in (await session.execute(statement)).scalars()]


async def _endpoint(session: AsyncSession, endpoint_id: int, *, for_update: bool = False) -> WebhookEndpoint:
    statement = select(WebhookEndpoint).where(WebhookEndpoint.id == endpoint_id)
    if for_update:
        statement = statement.with_for_update()
    endpoint = (await session.execute(statement)).scalar_one_or_none()
    if endpoint is None:
        raise WebhookEndpointNotFound(f"webhook endpoint {endpoint_id} does not exist")
    return endpoint


async def get_endpoint(session: AsyncSession, endpoint_id: int) -> WebhookEndpointView:
    return _view(await _endpoint(session, endpoint_id))


async def change_endpoint(session: AsyncSession, *, operator: Operator, endpoint_id: int,
                          request: WebhookEndpointChange, now: datetime) -> WebhookEndpointView:
    endpoint = await _endpoint(session, endpoint_id, for_update=True)
    before = _snapshot(endpoint)
    given = request.model_fields_set
    if "url" in given and request.url is not None:
        endpoint.url = str(request.url)
    if "event_types" in given:
        endpoint.event_types = request.event_types
    if "description" in given:
        endpoint.description = request.description
    if "active" in given and request.active is not None:
        endpoint.active = request.active
    endpoint.updated_at = now
    await session.flush()
    await record(session, actor=operator.audit_actor(), action="webhook_endpoint.update",
                 target_kind="webhook_endpoint", target_id=endpoint.id, company_id=endpoint.company_id,
                 org_unit_path=None, before=before, after=_snapshot(endpoint), now=now)
    return _view(endpoint)


# --- deliveries ------------------------------------------------------------------------------

_DELIVERY_COLUMNS = (
    WebhookDelivery.id, WebhookDelivery.endpoint_id, OutboxEvent.event_id, OutboxEvent.event_type,
    OutboxEvent.company_id, WebhookDelivery.company_seq, WebhookDelivery.status, WebhookDelivery.attempts,
    WebhookDelivery.next_attempt_at, WebhookDelivery.last_attempt_at, WebhookDelivery.last_status_code,
    WebhookDelivery.last_error, WebhookDelivery.delivered_at, WebhookDelivery.created_at,
)


def _delivery_view(row) -> WebhookDeliveryView:
    return WebhookDeliveryView(**row._asdict())


async def list_deliveries(session: AsyncSession, *, endpoint_id: int, status: DeliveryStatus | None,
                          before_id: int | None, limit: int) -> WebhookDeliveryPage:
    """An endpoint's deliveries, newest first."""
    await _endpoint(session, endpoint_id)
    statement = (select(*_DELIVERY_COLUMNS)
                 .join(OutboxEvent, OutboxEvent.id == WebhookDelivery.outbox_event_id)
                 .where(WebhookDelivery.endpoint_id == endpoint_id)
                 .order_by(WebhookDelivery.id.desc()).limit(limit + 1))
    if status is not None:
        statement = statement.where(WebhookDelivery.status == status.value)
    if before_id is not None:
        statement = statement.where(WebhookDelivery.id < before_id)
    rows = (await session.execute(statement)).all()
    page = rows[:limit]
    return WebhookDeliveryPage(deliveries=[_delivery_view(row) for row in page],
                               next_before_id=page[-1].id if len(rows) > limit else None)


async def redeliver(session: AsyncSession, *, operator: Operator, delivery_id: int,
                    now: datetime) -> WebhookDeliveryView:
    """A dead delivery goes back to pending with its attempts reset; it is sent next in its queue."""
    delivery = (await session.execute(
        select(WebhookDelivery).where(WebhookDelivery.id == delivery_id).with_for_update()
    )).scalar_one_or_none()
    if delivery is None:
        raise WebhookDeliveryNotFound(f"webhook delivery {delivery_id} does not exist")
    if delivery.status != DeliveryStatus.DEAD:
        raise DeliveryNotDead(f"webhook delivery {delivery_id} is {delivery.status}; only a dead "
                              "delivery can be re-delivered")
    before = snapshot(status=delivery.status, attempts=delivery.attempts, last_error=delivery.last_error,
                      last_status_code=delivery.last_status_code)
    delivery.status = DeliveryStatus.PENDING.value
    delivery.attempts = 0
    delivery.next_attempt_at = now
    await session.flush()
    await record(session, actor=operator.audit_actor(), action="webhook_delivery.redeliver",
                 target_kind="webhook_delivery", target_id=delivery.id,
                 company_id=delivery.company_id or None, org_unit_path=None, before=before,
                 after=snapshot(status=delivery.status, attempts=delivery.attempts), now=now)
    row = (await session.execute(
        select(*_DELIVERY_COLUMNS).join(OutboxEvent, OutboxEvent.id == WebhookDelivery.outbox_event_id)
        .where(WebhookDelivery.id == delivery_id)
    )).one()
    return _delivery_view(row)
