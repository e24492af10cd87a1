"""The few steps of the top-up routes that span more than one transaction or talk to the gateway."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from crm_bridge.topups.auth import TopUpUser
from processing.api import StateDep
from processing.audit import service as audit
from processing.audit.service import snapshot
from processing.db.engine import unit_of_work
from processing.payments import card_payments
from processing.payments.errors import GatewayNotConfigured, GatewayUnavailable
from processing.payments.gateway import GatewayClient
from processing.payments.models import CardPayment, Invoice
from processing.state import PlatformState


def gateway_client(state: StateDep) -> GatewayClient:
    """The gateway client from settings; tests override this dependency to reach the simulator in-process."""
    secret = state.settings.gateway_secret
    if secret is None or not secret.get_secret_value():
        raise GatewayNotConfigured()
    return GatewayClient(base_url=state.settings.gateway_url, secret=secret.get_secret_value(),
                         timeout_seconds=state.settings.gateway_timeout_seconds)


GatewayDep = Annotated[GatewayClient, Depends(gateway_client)]


def payment_snapshot(payment: CardPayment) -> dict:
    return snapshot(status=payment.status, amount_minor=payment.amount_minor, currency=payment.currency,
                    gateway_payment_id=payment.gateway_payment_id, return_url=payment.return_url)


def invoice_snapshot(invoice: Invoice) -> dict:
    return snapshot(number=invoice.number, status=invoice.status, amount_minor=invoice.amount_minor,
                    payable_amount_minor=invoice.payable_amount_minor, paid_minor=invoice.paid_minor)


async def create_card_payment(state: PlatformState, gateway: GatewayClient, user: TopUpUser, *, company_id: int,
                              amount_minor: int, return_url: str) -> CardPayment:
    """Record the payment, ask the gateway for it, record the gateway's id and redirect URL.

    Three steps because the gateway call must not hold a database transaction open. If the
    gateway refuses or cannot be reached the payment ends ``failed`` (502 to the caller). The
    order id sent to the gateway is ours, so a retried creation is the same payment there.
    """
    now = state.clock()
    async with unit_of_work(state.sessionmaker) as session:
        payment = await card_payments.start_card_payment(
            session, company_id=company_id, amount_minor=amount_minor, return_url=return_url, now=now,
            user_id=user.user_id)
        await audit.record(session, actor=user.audit_actor(), action="card_payment.create",
                           target_kind="card_payment", target_id=payment.id, company_id=company_id,
                           org_unit_path=None, before=None, after=payment_snapshot(payment), now=now)
    try:
        created = await gateway.create_payment(
            order_id=card_payments.order_id(payment.id), amount_minor=amount_minor, currency=payment.currency,
            return_url=return_url, description=f"Top-up of fuel-card account, company {company_id}")
    except GatewayUnavailable as error:
        async with unit_of_work(state.sessionmaker) as session:
            await card_payments.fail_creation(session, card_payment_id=payment.id, reason=error.detail,
                                              now=state.clock())
        raise
    async with unit_of_work(state.sessionmaker) as session:
        return await card_payments.attach_gateway_payment(
            session, card_payment_id=payment.id, gateway_payment_id=created.payment_id,
            redirect_url=created.redirect_url, now=state.clock())
