"""Keyset pages, newest first: an opaque cursor that carries the last id seen."""

from __future__ import annotations

import base64
from typing import Annotated

from fastapi import Query

from processing.errors import ProcessingError

PageLimit = Annotated[int, Query(ge=1, le=200, description="Items per page (at most 200).")]
Cursor = Annotated[str | None, Query(max_length=64, description="next_cursor of the previous page.")]


class InvalidCursor(ProcessingError):
    status_code = 422
    code = "invalid_cursor"
    default_detail = "The cursor is not one this API gave out."


def encode_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(f"id:{last_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int | None:
    if not cursor:
        return None
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        kind, _, value = text.partition(":")
        last_id = int(value)
    except ValueError:
        raise InvalidCursor() from None
    if kind != "id" or not 1 <= last_id <= 2**62:
        raise InvalidCursor()
    return last_id


def next_cursor(items: list, limit: int) -> str | None:
    return encode_cursor(items[-1].id) if len(items) == limit else None
