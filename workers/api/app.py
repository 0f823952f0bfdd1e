"""The HTTP API (`likeness serve`): FastAPI app factory, JSON errors and request size limits.

Routes live beside it by audience: scans (platforms), likenesses (rights holders),
jobs (both), admin (keys, health). OpenAPI at /docs and /openapi.json.
"""
from __future__ import annotations

import json
import logging

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException as StarletteHTTPException

from workers.api import admin, console, jobs, likenesses, reviews, scans, uploaders
from workers.app import sender
from workers.api.schemas import ErrorOut
from workers.service import Service
from workers.settings import Settings
from workers.data.files import UploadRefused

log = logging.getLogger(__name__)

_FORM_OVERHEAD = 1 << 20  # multipart boundaries and the small fields around the files
_SMALL_BODY = 1 << 20

DESCRIPTION = """Likeness and impersonation detection for uploaded videos.

Every call needs an API key (header `X-API-Key` or `Authorization: Bearer`), issued by an admin:
- **platform** keys submit uploads, poll their jobs and read reports;
- **rights_holder** keys register, list and remove their own likenesses and read findings about them;
- **admin** keys issue and revoke keys.

Errors are JSON: `{"error": {"status": 404, "reason": "..."}}`."""


def _error(status: int, reason: str, details: list | None = None) -> JSONResponse:
    body = {"status": status, "reason": reason}
    if details is not None:
        body["details"] = details
    return JSONResponse({"error": body}, status_code=status)


class BodyLimit:
    """Refuse request bodies over a per-route limit, before and while they arrive (413)."""

    def __init__(self, app, limits: dict[str, int]):
        self.app = app
        self.limits = limits

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = self.limits.get(scope["path"], _SMALL_BODY)
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            return await _error(413, f"request body larger than the limit of {limit} bytes")(scope, receive, send)
        received = 0

        async def counted():
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > limit:
                raise HTTPException(413, f"request body larger than the limit of {limit} bytes")
            return message

        await self.app(scope, counted, send)


class CatchAll:
    """An error no handler took becomes the JSON 500 here, and goes no further: re-raised to the
    server (as Starlette's last-resort handler does), it makes the server close a kept-alive
    connection. The full error goes to the log, never to the client."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = False

        async def tracked(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        except Exception:
            log.exception("unhandled error in %s %s", scope.get("method"), scope.get("path"))
            if started:
                raise  # half a response is out: nothing better can be sent
            await _error(500, "internal error")(scope, receive, send)


def _validation_reason(exc: RequestValidationError) -> str:
    first = exc.errors()[0] if exc.errors() else {}
    loc = list(first.get("loc", ()))
    if loc and loc[0] in ("body", "query", "header", "path", "cookie"):  # where it came from, not a field name
        loc = loc[1:]
    where = ".".join(str(p) for p in loc)
    return f"{where}: {first.get('msg', 'invalid request')}" if where else first.get("msg", "invalid request")


def create_api(settings: Settings, service: Service | None = None) -> FastAPI:
    """The API on `settings`; tasks go out through its own sender app on the same settings."""
    api = FastAPI(title="Likeness", version="1", description=DESCRIPTION,
                  responses={status: {"model": ErrorOut} for status in (400, 401, 403, 404, 413, 422)})
    api.state.service = service or Service(settings)
    api.state.sender = sender(settings)
    limits = settings.service
    api.add_middleware(BodyLimit, limits={
        "/v1/scans": limits.max_upload_bytes + _FORM_OVERHEAD,
        "/v1/likenesses": limits.max_reference_bytes * limits.max_references + _FORM_OVERHEAD,
        "/console/likenesses/new": limits.max_reference_bytes * limits.max_references + _FORM_OVERHEAD,
    })
    api.add_middleware(CatchAll)  # outermost of ours

    @api.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if console.is_console(request):
            return console.error_page(request, exc)
        return _error(exc.status_code, str(exc.detail))

    @api.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        if console.is_console(request):
            return console.error_page(request, StarletteHTTPException(400, _validation_reason(exc)))
        return _error(422, _validation_reason(exc), json.loads(json.dumps(exc.errors(), default=str)))

    @api.exception_handler(UploadRefused)
    async def refused(_: Request, exc: UploadRefused) -> JSONResponse:
        return _error(exc.status, exc.reason)

    @api.exception_handler(DataError)
    async def unstorable(_: Request, exc: DataError) -> JSONResponse:  # a field the edge checks missed
        log.warning("refused a value the database cannot store: %s", exc)
        return _error(400, "a value in the request cannot be stored (control characters or too long)")

    @api.exception_handler(Exception)
    async def internal(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return _error(500, "internal error")

    for module in (scans, likenesses, reviews, jobs, admin, uploaders):
        api.include_router(module.router)
    console.install(api, settings)  # the review console's pages, under /console/
    return api
