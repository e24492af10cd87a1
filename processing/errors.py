"""Domain errors. Each expected refusal is its own class with an HTTP status, a stable
machine-readable code and, on the terminal path, the ISO 8583 response code.

One handler (processing.app) turns them into ``{"error": code, "detail": message}``.
"""

from __future__ import annotations

from typing import ClassVar


class ProcessingError(Exception):
    status_code: ClassVar[int] = 400
    code: ClassVar[str] = "processing_error"
    response_code: ClassVar[str | None] = None
    default_detail: ClassVar[str] = "The request could not be processed."

    def __init__(self, detail: str | None = None):
        self.detail = detail or self.default_detail
        super().__init__(self.detail)

    def body(self) -> dict[str, str]:
        body = {"error": self.code, "detail": self.detail}
        if self.response_code is not None:
            body["response_code"] = self.response_code
        return body


class NotFound(ProcessingError):
    status_code = 404
    code = "not_found"


class Conflict(ProcessingError):
    status_code = 409
    code = "conflict"
