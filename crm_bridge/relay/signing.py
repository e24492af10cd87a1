"""Webhook signatures: HMAC-SHA256 over "<timestamp>.<body>" with the endpoint's secret.

Headers sent with every POST:

- ``X-Fuelcard-Event-Id``: the event id (de-duplicate on it: a delivery may repeat);
- ``X-Fuelcard-Timestamp``: Unix seconds when the request was signed;
- ``X-Fuelcard-Signature``: ``v1=<hex>``, hex of HMAC-SHA256(secret, timestamp + "." + raw body).

``verify`` is what a receiver does (and what the tests do): recompute over the raw bytes it
received, compare in constant time, and refuse a timestamp outside the replay window.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

SIGNATURE_VERSION = "v1"
DEFAULT_TOLERANCE_SECONDS = 300
EVENT_ID_HEADER = "X-Fuelcard-Event-Id"
TIMESTAMP_HEADER = "X-Fuelcard-Timestamp"
SIGNATURE_HEADER = "X-Fuelcard-Signature"


def new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


def signature(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"{SIGNATURE_VERSION}={mac.hexdigest()}"


def signed_headers(secret: str, *, event_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        EVENT_ID_HEADER: event_id,
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: signature(secret, timestamp, body),
    }


def verify(secret: str, *, timestamp_header: str | None, signature_header: str | None, body: bytes,
           now: float, tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS) -> bool:
    """True if the body was signed with ``secret`` within ``tolerance_seconds`` of ``now``."""
    if not timestamp_header or not signature_header or not timestamp_header.isdigit():
        return False
    timestamp = int(timestamp_header)
    if abs(now - timestamp) > tolerance_seconds:
        return False
    # The header may carry several signatures (e.g. during a secret rotation): "v1=..., v1=..."
    expected = signature(secret, timestamp, body)
    return any(hmac.compare_digest(candidate.strip(), expected) for candidate in signature_header.split(","))
