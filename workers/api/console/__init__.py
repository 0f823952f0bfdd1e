"""The review console: server-rendered pages under /console/ for platform reviewers and rights
holders, on the same app and the same rules as the API (docs/console.md)."""
from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request

from workers.api.console import auth, owner, review
from workers.api.console.render import HERE, error, redirect
from workers.api.console.session import Sessions, SignInRequired
from workers.settings import Settings

_CSS = (HERE / "static" / "console.css").read_bytes()


def install(api: FastAPI, settings: Settings) -> None:
    config = settings.service
    secret = config.console_secret.get_secret_value() if config.console_secret else None
    api.state.console_sessions = Sessions(secret, config.console_session_s)
    for module in (auth, review, owner):
        api.include_router(module.router)

    @api.get("/console/static/console.css", include_in_schema=False)
    def stylesheet() -> Response:
        return Response(_CSS, media_type="text/css", headers={"Cache-Control": "public, max-age=3600"})

    @api.exception_handler(SignInRequired)
    async def sign_in_first(_: Request, __: SignInRequired) -> Response:
        return redirect("/console/sign-in")


def is_console(request: Request) -> bool:
    return request.url.path == "/console" or request.url.path.startswith("/console/")


def error_page(request: Request, exc: StarletteHTTPException) -> Response:
    """The console's errors are pages (the API's are JSON): same status, the reason in words."""
    reasons = {404: "Not found: there is nothing here, or nothing you may see.",
               405: "That action is not available here."}
    return error(request, exc.status_code, reasons.get(exc.status_code, str(exc.detail)))
