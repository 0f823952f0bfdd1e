"""Signing in (an API key exchanged for a session cookie) and out."""
from __future__ import annotations

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import Response

from workers.api.console.render import page, redirect
from workers.api.console.session import SignInRequired, Viewer, check_csrf, sessions, viewer
from workers.data.files import CONTROL

router = APIRouter()
HOME = {"platform": "/console/queue", "rights_holder": "/console/likenesses"}


@router.get("/console", include_in_schema=False)
@router.get("/console/", include_in_schema=False)
def home(request: Request) -> Response:
    try:
        who = viewer(request)
    except SignInRequired:
        return redirect("/console/sign-in")
    return redirect(HOME[who.role])


@router.get("/console/sign-in", include_in_schema=False)
def sign_in_form(request: Request) -> Response:
    """The form, with an anonymous session carrying its CSRF token (so sign-in is CSRF-safe too)."""
    return page(request, "sign_in.html", None, session=sessions(request).new())


@router.post("/console/sign-in", include_in_schema=False)
def sign_in(request: Request, api_key: str = Form("", max_length=300), csrf_token: str = Form("", max_length=100)
            ) -> Response:
    store = sessions(request)
    check_csrf(store.read(request), csrf_token)
    key = api_key.strip()
    found = request.app.state.service.keys.authenticate(key) if key and not CONTROL.search(key) else None
    if found is None or found.role not in HOME:
        reason = ("this is an admin key: the console is for platform and rights holder keys" if found
                  else "that key is not valid (mistyped, or revoked)")
        return page(request, "sign_in.html", None, session=store.new(), status=401, error=reason)
    response = redirect(HOME[found.role])
    store.write(request, response, store.new(found.key_id))
    return response


@router.post("/console/sign-out", include_in_schema=False)
def sign_out(request: Request, csrf_token: str = Form("", max_length=100), who: Viewer = Depends(viewer)) -> Response:
    check_csrf(who.session, csrf_token)
    response = redirect("/console/sign-in")
    sessions(request).clear(request, response)
    return response
