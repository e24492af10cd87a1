"""The payment gateway simulator: the same wire behaviour as the real gateway, for tests and the demo.

* ``POST /v1/payments`` (signed by the merchant with the shared secret): creates a payment and
  answers ``{payment_id, status: "created", redirect_url}``; the same ``order_id`` again returns
  the same payment.
* ``GET /pay/{payment_id}``: the hosted payment page, a form with "Pay" and "Decline".
  Paying sends the signed callbacks ``authorized`` then ``captured`` to the callback URL and
  redirects the payer to the payment's return URL; declining sends ``failed``.
* ``POST /v1/payments/{payment_id}/refund`` (merchant-signed): sends ``refunded``.
* For tests: ``POST /sim/payments/{payment_id}/resend`` re-sends a phase's callback N times
  (optionally all at once), ``POST /sim/payments/{payment_id}/bad-signature`` sends one with a
  wrong signature, ``GET /sim/deliveries`` lists every callback sent and the answer it got.

Payments live in memory: the simulator is for tests and demos, not for keeping money.
"""

from __future__ import annotations

import asyncio
import html
import itertools
import time
import uuid
from dataclasses import dataclass, field
from typing import Annotated, Literal

import httpx
import orjson
from fastapi import FastAPI, Header, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from pydantic import BaseModel, ConfigDict, Field

from processing.payments.gateway import SIGNATURE_HEADER, sign, signature_matches


@dataclass
class SimPayment:
    payment_id: str
    order_id: str
    amount_minor: int
    currency: str
    return_url: str
    description: str
    status: str = "created"
    # status -> the event id of that phase's callback (re-sent with the same id)
    events: dict[str, str] = field(default_factory=dict)


@dataclass
class Delivery:
    payment_id: str
    status: str
    event_id: str
    signature_valid: bool
    http_status: int | None
    error: str | None = None


class CreatePayment(BaseModel):
    model_config = ConfigDict(extra="forbid")

    order_id: str = Field(min_length=1, max_length=64)
    amount_minor: int = Field(ge=1, le=10**12)
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    return_url: str = Field(max_length=2000)
    description: str = Field(default="", max_length=500)


class Resend(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: Literal["authorized", "captured", "failed", "refunded"] | None = None
    times: int = Field(default=1, ge=1, le=100)
    concurrently: bool = False


class GatewaySimulator:
    """The simulator's state and its outgoing callbacks."""

    def __init__(self, *, callback_url: str, secret: str, public_url: str = "",
                 callback_transport: httpx.AsyncBaseTransport | None = None, retries: int = 3):
        self.callback_url = callback_url
        self.secret = secret
        self.public_url = public_url.rstrip("/")
        self.callback_transport = callback_transport
        self.retries = retries
        self.payments: dict[str, SimPayment] = {}
        self.by_order: dict[str, str] = {}
        self.deliveries: list[Delivery] = []
        self._ids = itertools.count(1)

    def create(self, request: CreatePayment) -> SimPayment:
        if request.order_id in self.by_order:
            return self.payments[self.by_order[request.order_id]]
        payment_id = f"gw_{next(self._ids):06d}_{uuid.uuid4().hex[:8]}"
        payment = SimPayment(payment_id=payment_id, order_id=request.order_id, amount_minor=request.amount_minor,
                             currency=request.currency, return_url=request.return_url,
                             description=request.description)
        self.payments[payment_id] = payment
        self.by_order[request.order_id] = payment_id
        return payment

    def callback_body(self, payment: SimPayment, status: str) -> bytes:
        event_id = payment.events.setdefault(status, f"evt_{uuid.uuid4().hex}")
        return orjson.dumps({"payment_id": payment.payment_id, "status": status,
                             "amount_minor": payment.amount_minor, "currency": payment.currency,
                             "event_id": event_id, "timestamp": int(time.time())})

    async def send(self, payment: SimPayment, status: str, *, bad_signature: bool = False,
                   retry: bool = True) -> Delivery:
        """POST one signed callback; retried a few times while the merchant answers 5xx or not at all."""
        body = self.callback_body(payment, status)
        signature = sign("not the secret" if bad_signature else self.secret, body)
        delivery = Delivery(payment.payment_id, status, payment.events[status], not bad_signature, None)
        attempts = self.retries if retry else 1
        async with httpx.AsyncClient(transport=self.callback_transport, timeout=10) as client:
            for attempt in range(attempts):
                try:
                    response = await client.post(self.callback_url, content=body, headers={
                        "Content-Type": "application/json", SIGNATURE_HEADER: signature})
                    delivery.http_status, delivery.error = response.status_code, None
                    if response.status_code < 500:
                        break
                except httpx.HTTPError as error:
                    delivery.error = f"{type(error).__name__}: {error}"
                if attempt + 1 < attempts:
                    await asyncio.sleep(0.2 * 2**attempt)
        self.deliveries.append(delivery)
        return delivery

    async def pay(self, payment: SimPayment) -> list[Delivery]:
        if payment.status != "created":
            return []
        payment.status = "authorized"
        deliveries = [await self.send(payment, "authorized")]
        payment.status = "captured"
        deliveries.append(await self.send(payment, "captured"))
        return deliveries

    async def decline(self, payment: SimPayment) -> list[Delivery]:
        if payment.status not in ("created", "authorized"):
            return []
        payment.status = "failed"
        return [await self.send(payment, "failed")]

    async def refund(self, payment: SimPayment) -> list[Delivery]:
        if payment.status != "captured":
            return []
        payment.status = "refunded"
        return [await self.send(payment, "refunded")]


def create_gateway_app(*, callback_url: str, secret: str, public_url: str = "",
                       callback_transport: httpx.AsyncBaseTransport | None = None) -> FastAPI:
    """The simulator as an ASGI app. ``public_url`` is where payers reach it (for redirect URLs);
    empty = the base URL of each incoming request."""
    simulator = GatewaySimulator(callback_url=callback_url, secret=secret, public_url=public_url,
                                 callback_transport=callback_transport)
    app = FastAPI(title="Payment gateway simulator", version="1.0")
    app.state.simulator = simulator

    def found(payment_id: str) -> SimPayment:
        if payment_id not in simulator.payments:
            raise HTTPException(404, f"no payment {payment_id}")
        return simulator.payments[payment_id]

    def merchant_signed(body: bytes, signature: str | None) -> None:
        if not signature_matches(simulator.secret, body, signature):
            raise HTTPException(401, "bad merchant signature")

    def base_url(request: Request) -> str:
        return simulator.public_url or str(request.base_url).rstrip("/")

    @app.post("/v1/payments", status_code=201)
    async def create_payment(request: Request,
                             signature: Annotated[str | None, Header(alias=SIGNATURE_HEADER)] = None) -> dict:
        body = await request.body()
        merchant_signed(body, signature)
        payment = simulator.create(CreatePayment.model_validate_json(body))
        return {"payment_id": payment.payment_id, "status": payment.status,
                "redirect_url": f"{base_url(request)}/pay/{payment.payment_id}"}

    @app.get("/v1/payments/{payment_id}")
    async def payment_status(payment_id: str) -> dict:
        payment = found(payment_id)
        return {"payment_id": payment.payment_id, "order_id": payment.order_id, "status": payment.status,
                "amount_minor": payment.amount_minor, "currency": payment.currency}

    @app.post("/v1/payments/{payment_id}/refund")
    async def refund(payment_id: str, request: Request,
                     signature: Annotated[str | None, Header(alias=SIGNATURE_HEADER)] = None) -> dict:
        merchant_signed(await request.body(), signature)
        payment = found(payment_id)
        deliveries = await simulator.refund(payment)
        return {"status": payment.status, "callbacks": [d.http_status for d in deliveries]}

    @app.get("/pay/{payment_id}", response_class=HTMLResponse)
    async def payment_page(payment_id: str) -> str:
        payment = found(payment_id)
        amount = f"{payment.amount_minor // 100:,}.{payment.amount_minor % 100:02d} {payment.currency}"
        state = "" if payment.status == "created" else f"<p>This payment is {html.escape(payment.status)}.</p>"
        return f"""<!doctype html><html><head><meta charset="utf-8"><title>Pay {amount}</title></head>
<body><h1>Payment gateway (simulator)</h1><p>{html.escape(payment.description)}</p>
<p>Amount: <strong>{amount}</strong></p>{state}
<form method="post" action="/pay/{payment.payment_id}/pay"><button type="submit">Pay</button></form>
<form method="post" action="/pay/{payment.payment_id}/decline"><button type="submit">Decline</button></form>
</body></html>"""

    @app.post("/pay/{payment_id}/pay")
    async def pay(payment_id: str) -> RedirectResponse:
        payment = found(payment_id)
        await simulator.pay(payment)
        return RedirectResponse(_with_query(payment.return_url, payment), status_code=303)

    @app.post("/pay/{payment_id}/decline")
    async def decline(payment_id: str) -> RedirectResponse:
        payment = found(payment_id)
        await simulator.decline(payment)
        return RedirectResponse(_with_query(payment.return_url, payment), status_code=303)

    @app.post("/sim/payments/{payment_id}/resend")
    async def resend(payment_id: str, body: Resend) -> dict:
        """Send the callback of a phase (default: the current one) again, ``times`` times."""
        payment = found(payment_id)
        status = body.status or payment.status
        if status == "created":
            raise HTTPException(409, "a payment in created has sent no callback yet")
        sends = [simulator.send(payment, status, retry=False) for _ in range(body.times)]
        if body.concurrently:
            deliveries = await asyncio.gather(*sends)
        else:
            deliveries = [await send for send in sends]
        return {"status": status, "http_statuses": [d.http_status for d in deliveries]}

    @app.post("/sim/payments/{payment_id}/bad-signature")
    async def bad_signature(payment_id: str, body: Resend) -> dict:
        payment = found(payment_id)
        delivery = await simulator.send(payment, body.status or "captured", bad_signature=True, retry=False)
        return {"http_status": delivery.http_status}

    @app.get("/sim/deliveries")
    async def deliveries() -> JSONResponse:
        return JSONResponse([d.__dict__ for d in simulator.deliveries])

    return app


def _with_query(url: str, payment: SimPayment) -> str:
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}payment_id={payment.payment_id}&status={payment.status}"
