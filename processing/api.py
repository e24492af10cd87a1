"""HTTP plumbing shared by every surface: state access, the error shape, error handlers."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from processing.errors import ProcessingError
from processing.state import PlatformState

logger = logging.getLogger(__name__)


def get_state(request: Request) -> PlatformState:
    return request.app.state.platform


StateDep = Annotated[PlatformState, Depends(get_state)]


def _error(status_code: int, code: str, detail: str, **extra) -> JSONResponse:
    return JSONResponse({"error": code, "detail": detail, **extra}, status_code=status_code)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ProcessingError)
    async def _processing_error(request: Request, error: ProcessingError) -> JSONResponse:
        # An error may carry headers (WWW-Authenticate on a 401, Retry-After on a 429).
        return JSONResponse(error.body(), status_code=error.status_code,
                            headers=getattr(error, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, error: RequestValidationError) -> JSONResponse:
        problems = error.errors()
        if any(problem.get("type") == "json_invalid" for problem in problems):
            return _error(400, "malformed_json", "The request body is not valid JSON.")
        fields = [
            {"field": ".".join(str(part) for part in problem.get("loc", ())[1:]),
             "problem": problem.get("msg", "invalid")}
            for problem in problems
        ]
        summary = "; ".join(f"{f['field'] or 'body'}: {f['problem']}" for f in fields[:5])
        return _error(422, "invalid_request", summary, fields=fields)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        if error.status_code == 400:
            # FastAPI's own 400: a body json.loads cannot read at all (not UTF-8, nested too
            # deeply, an integer too long); the same refusal as any other unreadable body.
            return _error(400, "malformed_json", "The request body could not be parsed as JSON "
                          "(invalid encoding, nested too deeply or a number too long).")
        code = {404: "not_found", 405: "method_not_allowed"}.get(error.status_code, "http_error")
        return _error(error.status_code, code, str(error.detail))

    @app.exception_handler(OperationalError)
    @app.exception_handler(DBAPIError)
    async def _database_unavailable(request: Request, error: DBAPIError) -> JSONResponse:
        if not error.connection_invalidated and not isinstance(error, OperationalError):
            raise error
        logger.error("database unavailable on %s %s: %s", request.method, request.url.path, type(error.orig).__name__)
        return _error(503, "database_unavailable", "The database cannot be reached; retry shortly.",
                      response_code="96")

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, error: Exception) -> JSONResponse:
        logger.exception("unexpected error on %s %s", request.method, request.url.path)
        return _error(500, "internal_error", "An unexpected error occurred; it has been logged.",
                      response_code="96")
