"""HTML responses of the console: Jinja2 templates (autoescaped), the security headers every page
carries, and the error pages (the API answers JSON, the console a page with the same status)."""
from __future__ import annotations

from datetime import datetime
from pathlib import Path

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from gallery.store import utc
from workers.api.console.session import Session, Viewer, sessions

HERE = Path(__file__).resolve().parent
templates = Jinja2Templates(directory=str(HERE / "templates"))
HEADERS = {
    # No script at all; styles and images from the console itself; forms post only to it; no framing.
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def _when(value: datetime | None) -> str:
    return utc(value).strftime("%Y-%m-%d %H:%M:%S UTC") if value else ""


def _seconds(value: float | None) -> str:
    if value is None:
        return ""
    minutes, seconds = divmod(float(value), 60)
    return f"{int(minutes)}:{seconds:04.1f}"


templates.env.filters["when"] = _when
templates.env.filters["mmss"] = _seconds


def page(request: Request, name: str, who: Viewer | None, session: Session | None = None, status: int = 200,
         **context) -> HTMLResponse:
    """A page; `session` (a new one) is written as the cookie when given."""
    csrf = (session or (who.session if who else None))
    response = templates.TemplateResponse(request, name, {"who": who, "csrf": csrf.csrf if csrf else "", **context},
                                           status_code=status, headers=HEADERS)
    if session is not None:
        sessions(request).write(request, response, session)
    return response


def redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303, headers=HEADERS)


def error(request: Request, status: int, reason: str) -> Response:
    return templates.TemplateResponse(request, "error.html", {"who": None, "csrf": "", "status": status,
                                                              "reason": reason}, status_code=status, headers=HEADERS)
