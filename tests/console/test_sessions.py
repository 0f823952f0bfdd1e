"""The console's session cookie over HTTP against the real server: its attributes, that it holds
neither the key nor its hash, that a tampered, foreign or expired cookie is no session, and that the
sign-in form itself needs its CSRF token."""
from __future__ import annotations

import hashlib
import re
import time

import httpx
from itsdangerous import TimestampSigner, URLSafeTimedSerializer

from workers.api.console.session import COOKIE
from workers.data.db import Database
from workers.data.keys import KeyStore

SECRET = "console-cookie-secret"  # the stack's LIKENESS_SERVICE__CONSOLE_SECRET (tests/console/conftest.py)


class _OldSigner(TimestampSigner):
    def get_timestamp(self) -> int:
        return int(time.time()) - 9 * 3600  # signed 9 hours ago: past the 8-hour session


def _csrf(page: httpx.Response) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)


def _sign_in(http: httpx.Client, key: str) -> httpx.Response:
    form = http.get("/console/sign-in")
    return http.post("/console/sign-in", data={"api_key": key, "csrf_token": _csrf(form)})


def test_the_session_cookie(console_stack):
    env = console_stack
    key = env.keys["tube"]
    with httpx.Client(base_url=env.url) as http:
        form = http.get("/console/sign-in")
        cookie = form.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/console" in cookie
        assert "Secure" not in cookie  # served over http here
        assert http.post("/console/sign-in", data={"api_key": key}).status_code == 403  # no CSRF token
        signed_in = http.post("/console/sign-in", data={"api_key": key, "csrf_token": _csrf(form)})
        assert signed_in.status_code == 303 and signed_in.headers["location"] == "/console/queue"
        value = http.cookies[COOKIE]
        assert key not in value and hashlib.sha256(key.encode()).hexdigest() not in value
        assert http.get("/console/queue").status_code == 200
        assert "Content-Security-Policy" in http.get("/console/queue").headers

        key_id = KeyStore(Database.open(env.stack.database_url)).authenticate(key).key_id
        forged = {
            "tampered": value[:-2] + ("AA" if not value.endswith("AA") else "BB"),
            "another secret": URLSafeTimedSerializer("not-the-secret", salt="likeness-console").dumps(
                {"c": "x", "k": key_id}),
            "expired": URLSafeTimedSerializer(SECRET, salt="likeness-console", signer=_OldSigner).dumps(
                {"c": "x", "k": key_id}),
        }
        fresh = URLSafeTimedSerializer(SECRET, salt="likeness-console").dumps({"c": "x", "k": key_id})
    for what, cookie in {**forged, "fresh (control)": fresh}.items():
        with httpx.Client(base_url=env.url, cookies={COOKIE: cookie}) as http:
            answer = http.get("/console/queue")
            expected = (200, None) if what == "fresh (control)" else (303, "/console/sign-in")
            assert (answer.status_code, answer.headers.get("location")) == expected, what

    # Behind a proxy that says https (uvicorn trusts 127.0.0.1's X-Forwarded-Proto): the cookie is Secure.
    with httpx.Client(base_url=env.url, headers={"X-Forwarded-Proto": "https"}) as http:
        assert "Secure" in http.get("/console/sign-in").headers["set-cookie"]
