"""How a terminal signs a request: HMAC-SHA256 with its own key over method, path (as sent on
the request line: percent-encoded, with the query string), timestamp and the SHA-256 of the
body. Shared by the host and the reference client."""

from __future__ import annotations

import hashlib
import hmac

TERMINAL_HEADER = "X-Terminal-Id"
TIMESTAMP_HEADER = "X-Timestamp"
SIGNATURE_HEADER = "X-Signature"


def canonical_request(method: str, path: str, timestamp: str, body: bytes) -> bytes:
    return "\n".join(
        (method.upper(), path, timestamp, hashlib.sha256(body).hexdigest())
    ).encode()


def sign(key: bytes, *, method: str, path: str, timestamp: str, body: bytes) -> str:
    return hmac.new(key, canonical_request(method, path, timestamp, body), hashlib.sha256).hexdigest()


def signature_matches(key: bytes, signature: str, *, method: str, path: str, timestamp: str, body: bytes) -> bool:
    """Constant-time comparison: timing must not reveal how much of a forgery was right."""
    expected = sign(key, method=method, path=path, timestamp=timestamp, body=body)
    return hmac.compare_digest(expected.encode(), signature.strip().lower().encode())
