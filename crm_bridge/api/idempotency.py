"""Idempotent writes: every POST/PUT/PATCH of the CRM API carries an ``Idempotency-Key``.

- The key (1 to 100 printable ASCII characters, e.g. a UUID) is scoped to the CRM client.
- The first request with a key runs; its answer (status and body bytes) is stored in the same
  transaction as its effect. A later request with the same key, method, path and body gets those
  bytes again, with ``Idempotent-Replayed: true``, and changes nothing.
- The same key with another method, path or body: 422 ``idempotency_key_reused``, nothing changes.
- Two requests with one key at once: the key row is claimed (INSERT ... ON CONFLICT DO NOTHING)
  first thing in the transaction. On PostgreSQL the second INSERT waits on the unique key until
  the first commits, then finds its answer and replays it; on SQLite the write lock taken at
  BEGIN serialises them the same way. Either way there is one effect and two equal answers.
- Refusals by the business rules (404 unknown company, 409 phone taken, 422 driver name
  required...) are stored like successes: the same key gets the same refusal again; send a new
  key once the cause is fixed. The operation runs in a savepoint, so its partial changes are undone
  while the key and the refusal are kept.
- Never stored: 5xx (the whole transaction rolls back and the key stays free for a retry), and
  requests refused before they run: 401 (credentials), 400/422 ``invalid_request`` (the body does
  not parse or fails the schema), 422 on the key itself.

The body's digest is SHA-256 over its canonical JSON (keys sorted, no whitespace), so a retry that
re-serialises the same JSON differently still matches.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

import orjson
from fastapi import Depends, Header, Request, Response
from pydantic import BaseModel
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from crm_bridge.api.auth import CrmClientDep, CrmClientIdentity
from processing.api import StateDep
from processing.audit.service import AuditActor
from processing.db.dialect import insert_for
from processing.db.engine import unit_of_work
from processing.errors import ProcessingError
from processing.service_clients.models import CrmIdempotencyKey
from processing.state import PlatformState

IDEMPOTENCY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
MAX_KEY_LENGTH = 100
_KEY = re.compile(rf"[\x20-\x7e]{{1,{MAX_KEY_LENGTH}}}")
AUDIT_ROLE = "crm"
_AUDIT_REQUEST_ID_LENGTH = 64  # audit_log.request_id

Operation = Callable[[AsyncSession, AuditActor, datetime], Awaitable[BaseModel]]


class IdempotencyKeyRequired(ProcessingError):
    status_code = 422
    code = "idempotency_key_required"
    default_detail = (f"Every write needs an {IDEMPOTENCY_HEADER} header (1 to {MAX_KEY_LENGTH} printable "
                      "ASCII characters, e.g. a UUID); a retry sends the same key.")


class InvalidIdempotencyKey(IdempotencyKeyRequired):
    code = "invalid_idempotency_key"
    default_detail = f"{IDEMPOTENCY_HEADER} must be 1 to {MAX_KEY_LENGTH} printable ASCII characters."


class IdempotencyKeyReused(ProcessingError):
    status_code = 422
    code = "idempotency_key_reused"


def body_digest(body: bytes) -> str:
    """SHA-256 hex of the body's canonical JSON (or of the bytes, if they are not JSON)."""
    try:
        canonical = orjson.dumps(orjson.loads(body), option=orjson.OPT_SORT_KEYS) if body else b""
    except orjson.JSONDecodeError:
        canonical = body
    return hashlib.sha256(canonical).hexdigest()


def audit_request_id(key: str) -> str:
    """The key itself, or its hash when it is longer than the audit log's request id column."""
    if len(key) <= _AUDIT_REQUEST_ID_LENGTH:
        return key
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()[: _AUDIT_REQUEST_ID_LENGTH - 7]


def _send(status: int, body: bytes, *, replayed: bool) -> Response:
    return Response(content=body, status_code=status, media_type="application/json",
                    headers={REPLAYED_HEADER: "true" if replayed else "false"})


@dataclass(frozen=True, slots=True)
class WriteCall:
    """One authenticated write with its idempotency key, ready to run once."""

    state: PlatformState
    client: CrmClientIdentity
    key: str
    method: str
    path: str
    digest: str

    @property
    def actor(self) -> AuditActor:
        return AuditActor(user_id=None, role=AUDIT_ROLE, login=self.client.name,
                          request_id=audit_request_id(self.key))

    async def run(self, operation: Operation, *, status_code: int = 200) -> Response:
        """Run ``operation(session, actor, now)`` once per key; answer with its model (or its
        4xx refusal), stored byte for byte, or replay the stored answer."""
        now = self.state.clock()
        async with unit_of_work(self.state.sessionmaker) as session:
            prior = await self._claim(session, now)
            if prior is not None:
                if (prior.request_method, prior.request_path, prior.request_digest) != (
                        self.method, self.path, self.digest):
                    raise IdempotencyKeyReused(
                        f"the {IDEMPOTENCY_HEADER} {self.key!r} was used for another request "
                        f"({prior.request_method} {prior.request_path} with another body); use a new key")
                return _send(prior.response_status, prior.response_body.encode(), replayed=True)
            try:
                async with session.begin_nested():
                    answer = await operation(session, self.actor, now)
                status, body = status_code, orjson.dumps(answer.model_dump(mode="json"))
            except ProcessingError as refusal:
                if refusal.status_code >= 500:
                    raise
                status, body = refusal.status_code, orjson.dumps(refusal.body())
            await session.execute(
                update(CrmIdempotencyKey)
                .where(CrmIdempotencyKey.client_id == self.client.client_id, CrmIdempotencyKey.key == self.key)
                .values(response_status=status, response_body=body.decode())
            )
        return _send(status, body, replayed=False)

    async def _claim(self, session: AsyncSession, now: datetime) -> CrmIdempotencyKey | None:
        """None: this request owns the key now. Otherwise the earlier request's row."""
        insert = insert_for(session)
        claimed = await session.execute(
            insert(CrmIdempotencyKey)
            .values(client_id=self.client.client_id, key=self.key, request_method=self.method,
                    request_path=self.path, request_digest=self.digest, response_status=0,
                    response_body="", created_at=now)
            .on_conflict_do_nothing(index_elements=["client_id", "key"])
            .returning(CrmIdempotencyKey.id)
        )
        if claimed.first() is not None:
            return None
        return (await session.execute(
            select(CrmIdempotencyKey)
            .where(CrmIdempotencyKey.client_id == self.client.client_id, CrmIdempotencyKey.key == self.key)
        )).scalar_one()


async def write_call(
    request: Request, client: CrmClientDep, state: StateDep,
    idempotency_key: Annotated[str | None, Header(
        alias=IDEMPOTENCY_HEADER,
        description=f"1 to {MAX_KEY_LENGTH} printable ASCII characters (a UUID is good), new for every "
                    "write and the same for its retries: a retry gets the first answer again.",
    )] = None,
) -> WriteCall:
    """Credentials first (401), then the key (422), then FastAPI validates the body."""
    if idempotency_key is None or idempotency_key == "":
        raise IdempotencyKeyRequired()
    if not _KEY.fullmatch(idempotency_key):
        raise InvalidIdempotencyKey()
    # Writes take no query parameters: the path names the request.
    return WriteCall(state=state, client=client, key=idempotency_key, method=request.method,
                     path=request.url.path[:500], digest=body_digest(await request.body()))


WriteDep = Annotated[WriteCall, Depends(write_call)]


async def prune_keys(session: AsyncSession, *, older_than: datetime) -> int:
    """Forget keys stored before ``older_than``; a later request with such a key runs again."""
    result = await session.execute(delete(CrmIdempotencyKey).where(CrmIdempotencyKey.created_at < older_than))
    return result.rowcount
