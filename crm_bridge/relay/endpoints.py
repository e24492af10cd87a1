"""Routes: replay a company's events from a sequence number; webhook endpoints and their deliveries.

Platform operator only for now (crm_bridge.operator_auth); the CRM's service credentials come next.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from crm_bridge.operator_auth import ERROR_RESPONSES, OperatorDep
from crm_bridge.relay import service
from crm_bridge.relay.schemas import (
    CreatedWebhookEndpoint,
    EventPage,
    NewWebhookEndpoint,
    WebhookDeliveryPage,
    WebhookDeliveryView,
    WebhookEndpointChange,
    WebhookEndpointView,
)
from processing.api import StateDep
from processing.db.engine import unit_of_work
from processing.outbox.delivery_models import DeliveryStatus

router = APIRouter(prefix="/v1/crm", tags=["crm: events and webhooks"], responses=ERROR_RESPONSES)

EndpointId = Annotated[int, Path(ge=1, le=2**62, description="The webhook endpoint's id.")]
MAX_REPLAY_PAGE = 1000


@router.get("/events", response_model=EventPage,
            summary="Replay: a company's events after a sequence number, in order")
async def replay_events(
    operator: OperatorDep, state: StateDep,
    company_id: Annotated[int, Query(ge=1, le=2**62)],
    after_seq: Annotated[int, Query(ge=0, le=2**62, description="Last company_seq you have; 0 from the start.")] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_REPLAY_PAGE)] = 100,
) -> EventPage:
    async with unit_of_work(state.readonly_sessionmaker) as session:
        return await service.replay(session, company_id=company_id, after_seq=after_seq, limit=limit)


@router.post("/webhooks", response_model=CreatedWebhookEndpoint, status_code=201,
             summary="Add a webhook endpoint; the answer shows its signing secret, once")
async def create_webhook(request: NewWebhookEndpoint, operator: OperatorDep, state: StateDep) -> CreatedWebhookEndpoint:
    async with unit_of_work(state.sessionmaker) as session:
        return await service.create_endpoint(session, state.keyring, operator=operator, request=request,
                                             now=state.clock())


@router.get("/webhooks", response_model=list[WebhookEndpointView], summary="Webhook endpoints")
async def list_webhooks(
    operator: OperatorDep, state: StateDep,
    company_id: Annotated[int | None, Query(ge=1, le=2**62, description="Only this company's endpoints.")] = None,
) -> list[WebhookEndpointView]:
    async with unit_of_work(state.readonly_sessionmaker) as session:
        return await service.list_endpoints(session, company_id=company_id)


@router.get("/webhooks/{endpoint_id}", response_model=WebhookEndpointView, summary="A webhook endpoint")
async def get_webhook(endpoint_id: EndpointId, operator: OperatorDep, state: StateDep) -> WebhookEndpointView:
    async with unit_of_work(state.readonly_sessionmaker) as session:
        return await service.get_endpoint(session, endpoint_id)


@router.patch("/webhooks/{endpoint_id}", response_model=WebhookEndpointView,
              summary="Change a webhook endpoint's URL or filter, or switch it off and on")
async def change_webhook(endpoint_id: EndpointId, request: WebhookEndpointChange, operator: OperatorDep,
                         state: StateDep) -> WebhookEndpointView:
    async with unit_of_work(state.sessionmaker) as session:
        return await service.change_endpoint(session, operator=operator, endpoint_id=endpoint_id,
                                             request=request, now=state.clock())


@router.get("/webhooks/{endpoint_id}/deliveries", response_model=WebhookDeliveryPage,
            summary="An endpoint's deliveries, newest first (status=dead: the dead letters)")
async def list_webhook_deliveries(
    endpoint_id: EndpointId, operator: OperatorDep, state: StateDep,
    status: Annotated[DeliveryStatus | None, Query()] = None,
    before_id: Annotated[int | None, Query(ge=1, le=2**62)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> WebhookDeliveryPage:
    async with unit_of_work(state.readonly_sessionmaker) as session:
        return await service.list_deliveries(session, endpoint_id=endpoint_id, status=status,
                                             before_id=before_id, limit=limit)


@router.post("/webhook-deliveries/{delivery_id}/redeliver", response_model=WebhookDeliveryView,
             summary="Send a dead delivery again (attempts start over)")
async def redeliver(
    delivery_id: Annotated[int, Path(ge=1, le=2**62)], operator: OperatorDep, state: StateDep,
) -> WebhookDeliveryView:
    async with unit_of_work(state.sessionmaker) as session:
        return await service.redeliver(session, operator=operator, delivery_id=delivery_id, now=state.clock())
