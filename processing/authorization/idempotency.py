"""Claiming a terminal message before answering it, and replaying the first answer.

The claim is an INSERT on the unique (terminal, transaction id, message type) key. On
PostgreSQL a second copy that arrives while the first is being answered blocks on that key
until the first commits, then sees the stored answer; on SQLite the write lock taken at BEGIN
serialises the two copies. Either way the message is answered once.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import orjson
from pydantic import BaseModel
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from processing.authorization.models import MessageType, TerminalMessage
from processing.db.dialect import insert_for


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
    insert = insert_for(session)
    claimed = await session.execute(
        insert(TerminalMessage)
        .values(
            terminal_id=terminal_id, terminal_transaction_id=transaction_id,
            message_type=message_type.value, request_digest=digest,
            http_status=placeholder.http_status if placeholder else 0,
            response_body=placeholder.body.decode() if placeholder else "",
        )
        .on_conflict_do_nothing(
            index_elements=["terminal_id", "terminal_transaction_id", "message_type"]
        )
        .returning(TerminalMessage.id)
    )
    if claimed.first() is not None:
        return None
    prior = (
        await session.execute(
            select(TerminalMessage.request_digest, TerminalMessage.http_status,
                   TerminalMessage.response_body)
            .where(
                TerminalMessage.terminal_id == terminal_id,
                TerminalMessage.terminal_transaction_id == transaction_id,
                TerminalMessage.message_type == message_type.value,
            )
        )
    ).one()
    return PriorMessage(prior.request_digest, StoredAnswer(prior.http_status, prior.response_body.encode()))


async def store_answer(
    session: AsyncSession, *, terminal_id: int, transaction_id: str, message_type: MessageType,
    answer: BaseModel, http_status: int = 200,
) -> StoredAnswer:
    """Serialise the answer once and keep those bytes: a repeat gets exactly them."""
    body = serialize(answer)
    await session.execute(
        update(TerminalMessage)
        .where(
            TerminalMessage.terminal_id == terminal_id,
            TerminalMessage.terminal_transaction_id == transaction_id,
            TerminalMessage.message_type == message_type.value,
        )
        .values(http_status=http_status, response_body=body.decode())
    )
    return StoredAnswer(http_status, body)


def serialize(answer: BaseModel) -> bytes:
    return orjson.dumps(answer.model_dump(mode="json"))
