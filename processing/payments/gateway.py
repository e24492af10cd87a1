"""The payment gateway's wire protocol, as we speak it and as the simulator answers it.

Both directions are signed with the shared secret: ``X-Gateway-Signature`` is the lowercase hex
HMAC-SHA256 of the raw request body.

* We create a payment: ``POST {gateway}/v1/payments`` with ``{order_id, amount_minor, currency,
  return_url, description}``; the gateway answers 201 ``{payment_id, status, redirect_url}``.
  ``order_id`` is ours ("cp-<card payment id>"): sending it again returns the same payment.
* The gateway calls us back: ``POST /v1/topups/gateway-callback`` with ``{payment_id, status,
  amount_minor, currency, event_id, timestamp}`` once per phase (authorized, captured, failed,
  refunded), and again whenever it is not sure we got it.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Literal

import httpx
import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from processing.payments.errors import BadSignature, GatewayUnavailable, InvalidCallback

SIGNATURE_HEADER = "X-Gateway-Signature"
# A callback is a few hundred bytes; anything far bigger is not from the gateway.
MAX_CALLBACK_BYTES = 16_384

GatewayStatus = Literal["created", "authorized", "captured", "failed", "refunded"]


def sign(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signature_matches(secret: str, body: bytes, signature: str | None) -> bool:
    """Constant-time comparison of the header with the expected signature."""
    if not signature:
        return False
    expected = sign(secret, body).encode()
    # Non-ASCII in the header must not raise before the comparison: compare bytes.
    return hmac.compare_digest(expected, signature.strip().lower().encode("utf-8", "replace"))


class GatewayCallback(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)

    payment_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")
    status: GatewayStatus
    amount_minor: int = Field(ge=0, le=10**15)
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    event_id: str = Field(min_length=1, max_length=64)
    timestamp: int = Field(ge=0, le=2**40)


def verify_callback(secret: str, body: bytes, signature: str | None) -> GatewayCallback:
    """The callback, if its signature is the gateway's; BadSignature before anything is parsed."""
    if len(body) > MAX_CALLBACK_BYTES or not signature_matches(secret, body, signature):
        raise BadSignature()
    try:
        return GatewayCallback.model_validate_json(body)
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, p['loc'])) or 'body'}: {p['msg']}"
                             for p in error.errors()[:5])
        raise InvalidCallback(f"the callback body is not valid: {problems}") from None


@dataclass(frozen=True)
class CreatedGatewayPayment:
    payment_id: str
    status: str
    redirect_url: str


class GatewayClient:
    """Creates payments at the gateway. ``transport`` lets tests talk to the simulator in-process."""

    def __init__(self, *, base_url: str, secret: str, timeout_seconds: float = 10.0,
                 transport: httpx.AsyncBaseTransport | None = None):
        self.base_url = base_url.rstrip("/")
        self.secret = secret
        self.timeout_seconds = timeout_seconds
        self.transport = transport

    async def create_payment(self, *, order_id: str, amount_minor: int, currency: str, return_url: str,
                             description: str) -> CreatedGatewayPayment:
        body = orjson.dumps({"order_id": order_id, "amount_minor": amount_minor, "currency": currency,
                             "return_url": return_url, "description": description})
        headers = {"Content-Type": "application/json", SIGNATURE_HEADER: sign(self.secret, body)}
        try:
            async with httpx.AsyncClient(base_url=self.base_url, timeout=self.timeout_seconds,
                                         transport=self.transport) as client:
                response = await client.post("/v1/payments", content=body, headers=headers)
        except httpx.HTTPError as error:
            raise GatewayUnavailable(f"the payment gateway cannot be reached: {type(error).__name__}") from None
        if response.status_code not in (200, 201):
            raise GatewayUnavailable(f"the payment gateway refused the payment (HTTP {response.status_code})")
        try:
            answer = response.json()
            return CreatedGatewayPayment(payment_id=str(answer["payment_id"]), status=str(answer["status"]),
                                         redirect_url=str(answer["redirect_url"]))
        except (ValueError, KeyError, TypeError):
            raise GatewayUnavailable("the payment gateway answered something we cannot read") from None
