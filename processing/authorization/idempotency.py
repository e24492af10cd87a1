"""Claiming a terminal message before answering it, and replaying the first answer.

The claim is an INSERT on the unique (terminal, transaction id, message type) key. On
PostgreSQL a second copy that arrives while the first is being answered blocks on that key
until the first commits, then sees the stored answer; on SQLite the write lock taken at BEGIN
serialises the two copies. Either way the message is answered once.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass

import orjson
from pydantic import BaseModel
from sqlalchemy import bindparam, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from processing.authorization.models import MessageType, TerminalMessage
from processing.db import fastpath


@dataclass(frozen=True, slots=True)
class StoredAnswer:
    http_status: int
    body: bytes


@dataclass(frozen=True, slots=True)
class PriorMessage:
    request_digest: str | None
    answer: StoredAnswer


def request_digest(*parts: str | BaseModel) -> str:
    """SHA-256 over the canonical JSON of the request (whitespace and key order do not matter)."""
    hasher = hashlib.sha256()
    for part in parts:
        hasher.update(part.model_dump_json().encode() if isinstance(part, BaseModel) else part.encode())
        hasher.update(b"\x00")
    return hasher.hexdigest()


async def claim(
    session: AsyncSession, *, terminal_id: int, transaction_id: str, message_type: MessageType,
    digest: str | None, placeholder: StoredAnswer | None = None,
) -> PriorMessage | None:
    """Claim the message slot. None: this call answers it. Otherwise: the earlier message.

    ``placeholder`` fills the slot at once (used to void an authorization slot).
    """
    claimed = await session.execute(_claim_statement(session.bind.dialect.name), {
        "slot_terminal": terminal_id, "slot_transaction": transaction_id, "slot_type": message_type.value,
        "digest": digest, "new_status": placeholder.http_status if placeholder else 0,
        "body": placeholder.body.decode() if placeholder else "",
    })
    if claimed.first() is not None:
        return None
    prior = (await fastpath.execute(session, _PRIOR_MESSAGE, {
        "slot_terminal": terminal_id, "slot_transaction": transaction_id, "slot_type": message_type.value,
    })).one()
    return PriorMessage(prior.request_digest, StoredAnswer(prior.http_status, prior.response_body.encode()))


_messages = TerminalMessage.__table__
# (Bind names differ from the column names: SQLAlchemy keeps those for the SET clause.)
_SLOT = (_messages.c.terminal_id == bindparam("slot_terminal"),
         _messages.c.terminal_transaction_id == bindparam("slot_transaction"),
         _messages.c.message_type == bindparam("slot_type"))
_PRIOR_MESSAGE = select(_messages.c.request_digest, _messages.c.http_status, _messages.c.response_body).where(*_SLOT)
_STORE_ANSWER = update(_messages).where(*_SLOT).values(http_status=bindparam("new_status"),
                                                       response_body=bindparam("body"))


@functools.lru_cache(maxsize=4)
def _claim_statement(dialect_name: str):
    insert = postgresql.insert if dialect_name == "postgresql" else sqlite.insert
    return (
        insert(_messages)
        .values(terminal_id=bindparam("slot_terminal"), terminal_transaction_id=bindparam("slot_transaction"),
                message_type=bindparam("slot_type"), request_digest=bindparam("digest"),
                http_status=bindparam("new_status"), response_body=bindparam("body"))
        .on_conflict_do_nothing(index_elements=["terminal_id", "terminal_transaction_id", "message_type"])
        .returning(_messages.c.id)
    )


async def store_answer(
    session: AsyncSession, *, terminal_id: int, transaction_id: str, message_type: MessageType,
    answer: BaseModel, http_status: int = 200,
) -> StoredAnswer:
    """Serialise the answer once and keep those bytes: a repeat gets exactly them."""
    body = serialize(answer)
    await fastpath.execute(session, _STORE_ANSWER, {
        "slot_terminal": terminal_id, "slot_transaction": transaction_id, "slot_type": message_type.value,
        "new_status": http_status, "body": body.decode(),
    })
    return StoredAnswer(http_status, body)


def serialize(answer: BaseModel) -> bytes:
    return orjson.dumps(answer.model_dump(mode="json"))
