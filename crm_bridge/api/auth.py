"""Service credentials of the fuel company's CRM.

A CRM client has a public key id ("crm_5f0c2a9e41d7b388") and a secret of 32 random bytes
(base64url, 43 characters), shown once when the client is created (``fuelcard crm add-client``).
Every request carries ``Authorization: Bearer <key id>.<secret>`` over TLS. The host stores only
the SHA-256 of the secret: the secret has 256 bits of entropy, so a plain hash cannot be
reversed by guessing, and it does not depend on the master key (rotating that key leaves CRM
credentials valid). The hash is compared in constant time; an unknown key id costs the same
comparison. Anything wrong (no header, another scheme, a garbled token, an unknown key id, a wrong
secret, a revoked client) gets the same 401 ``invalid_client``.

A CRM client acts for the whole platform (every company): it is the fuel company's own CRM.
Credentials are read on every request (no cache), so a revoked client is refused at once.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from processing.api import StateDep
from processing.db.engine import unit_of_work
from processing.errors import NotFound, ProcessingError
from processing.service_clients.models import ClientStatus, CrmClient

KEY_ID_PREFIX = "crm_"
SECRET_BYTES = 32
_TOKEN = re.compile(r"(crm_[0-9a-f]{16})\.([A-Za-z0-9_-]{43})")
_NAME = re.compile(r"[^\x00-\x1f\x7f]{1,100}")
_NO_SECRET = hashlib.sha256(b"no such client").digest()

_bearer = HTTPBearer(auto_error=False, scheme_name="CrmServiceKey",
                     description="`Bearer <key id>.<secret>` as printed once by `fuelcard crm add-client`.")


class InvalidClient(ProcessingError):
    status_code = 401
    code = "invalid_client"
    default_detail = ("Send Authorization: Bearer <key id>.<secret> with the credentials of an "
                      "active CRM client.")
    headers = {"WWW-Authenticate": 'Bearer realm="crm"'}


class ClientNotFound(NotFound):
    code = "client_not_found"


class InvalidClientName(ProcessingError):
    status_code = 422
    code = "invalid_client_name"
    default_detail = "A client name is 1 to 100 characters without control characters."


@dataclass(frozen=True, slots=True)
class CrmClientIdentity:
    client_id: int
    name: str
    key_id: str


@dataclass(frozen=True, slots=True)
class NewClient:
    client: CrmClient
    token: str  # "<key id>.<secret>": shown once, never stored


def secret_digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


async def create_client(session: AsyncSession, *, name: str, now: datetime) -> NewClient:
    """A new active client and its bearer token (the only time the secret exists in clear)."""
    if not _NAME.fullmatch(name):
        raise InvalidClientName()
    key_id = KEY_ID_PREFIX + secrets.token_hex(8)
    secret = secrets.token_urlsafe(SECRET_BYTES)
    client = CrmClient(name=name, key_id=key_id, secret_hash=secret_digest(secret),
                       status=ClientStatus.ACTIVE, created_at=now)
    session.add(client)
    await session.flush()
    return NewClient(client=client, token=f"{key_id}.{secret}")


async def revoke_client(session: AsyncSession, *, key_id: str, now: datetime) -> CrmClient:
    """The client's requests are refused from the next one on (401). Revoking twice is harmless."""
    client = (await session.execute(
        select(CrmClient).where(CrmClient.key_id == key_id).with_for_update()
    )).scalar_one_or_none()
    if client is None:
        raise ClientNotFound(f"no CRM client with key id {key_id!r}")
    if client.status != ClientStatus.REVOKED:
        client.status = ClientStatus.REVOKED
        client.revoked_at = now
    await session.flush()
    return client


async def list_clients(session: AsyncSession) -> list[CrmClient]:
    return list((await session.execute(select(CrmClient).order_by(CrmClient.id))).scalars())


async def authenticate(session: AsyncSession, token: str | None) -> CrmClientIdentity:
    match = _TOKEN.fullmatch(token or "")
    key_id, secret = match.groups() if match else (None, "")
    row = None
    if key_id is not None:
        row = (await session.execute(
            select(CrmClient.id, CrmClient.name, CrmClient.secret_hash, CrmClient.status)
            .where(CrmClient.key_id == key_id)
        )).first()
    # The same hashing and comparison whatever was wrong: no timing tells them apart.
    matches = hmac.compare_digest(secret_digest(secret), row.secret_hash if row is not None else _NO_SECRET)
    if row is None or not matches or row.status != ClientStatus.ACTIVE:
        raise InvalidClient()
    return CrmClientIdentity(client_id=row.id, name=row.name, key_id=key_id)


async def crm_client(
    state: StateDep, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> CrmClientIdentity:
    """Every /v1/crm route: an active CRM client, or 401 invalid_client."""
    async with unit_of_work(state.readonly_sessionmaker) as session:
        return await authenticate(session, None if credentials is None else credentials.credentials)


CrmClientDep = Annotated[CrmClientIdentity, Depends(crm_client)]
