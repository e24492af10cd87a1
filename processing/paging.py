"""Keyset pages for every list of the HTTP surfaces (cabinet, CRM, top-ups): newest first, an
opaque cursor, at most MAX_PAGE rows."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated

from fastapi import Query

from processing.errors import ProcessingError

MAX_PAGE = 200

# A page larger than MAX_PAGE is refused (422), not silently cut: the caller would miss rows.
PageLimit = Annotated[int, Query(ge=1, le=MAX_PAGE, description=f"Rows per page, 1..{MAX_PAGE}.")]
Cursor = Annotated[str | None, Query(max_length=40, description="next_cursor of the previous page.")]


class InvalidCursor(ProcessingError):
    status_code = 422
    code = "invalid_cursor"
    default_detail = "The cursor is not one this API gave out."


def encode_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(f"id:{last_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int | None:
    """The id to continue below, or None for the first page."""
    if cursor is None:
        return None
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        prefix, _, number = text.partition(":")
        if prefix != "id" or not number.isdigit() or len(number) > 19:
            raise ValueError(cursor)
        return int(number)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidCursor() from None


def next_cursor(items: list, limit: int) -> str | None:
    """The cursor of the page after ``items`` (rows with an ``id``), or None when it was the last."""
    return encode_cursor(items[-1].id) if len(items) == limit else None
