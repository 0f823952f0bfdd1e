"""Callback to the platform when a scan ends with a verdict other than allow.

The body is signed (HMAC-SHA256 of the exact bytes) so the receiver can trust it, and carries the
job id as event id: delivery is at least once, so a receiver drops repeats by that id.
"""
from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import socket
from urllib.parse import urlsplit

import httpx

SIGNATURE_HEADER = "X-Likeness-Signature"
EVENT_HEADER = "X-Likeness-Event-Id"


class WebhookError(Exception):
    """A delivery that failed but may work later (network, 5xx, 429)."""


class WebhookRefused(Exception):
    """A delivery that can never work (bad URL, a private address, a 4xx answer)."""


def check_url(url: str) -> str:
    """Scheme and host checks done when the URL is submitted; address checks happen at delivery."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise WebhookRefused(f"callback URL must be http(s)://host/..., not {url!r}")
    return url


def _check_address(url: str, allow_private: bool) -> None:
    """Refuse loopback, private and link-local targets: a callback must not reach inside."""
    if allow_private:
        return
    host = urlsplit(url).hostname
    try:
        infos = socket.getaddrinfo(host, None)
    except socket.gaierror as exc:
        raise WebhookError(f"cannot resolve {host}: {exc}") from exc
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if not address.is_global:
            raise WebhookRefused(f"callback host {host} resolves to non-public address {address}")


def body(job_id: str, uploader: str | None, report: dict) -> bytes:
    payload = {
        "event": "scan.finished", "job_id": job_id, "uploader": uploader,
        "verdict": report["verdict"],
        "findings": [{"identity_id": f["identity"]["id"], "name": f["identity"]["name"], "category": f["category"],
                      "action": f["action"], "start_s": f["start_s"], "end_s": f["end_s"]}
                     for f in report["findings"]],
        "report": f"/v1/scans/{job_id}/report",
    }
    return json.dumps(payload, sort_keys=True).encode()


def sign(data: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), data, hashlib.sha256).hexdigest()


def deliver(url: str, data: bytes, event_id: str, secret: str | None, timeout_s: float,
            allow_private: bool) -> int:
    """POST once; returns the status code or raises WebhookError / WebhookRefused."""
    check_url(url)
    _check_address(url, allow_private)
    headers = {"Content-Type": "application/json", EVENT_HEADER: event_id}
    if secret:
        headers[SIGNATURE_HEADER] = sign(data, secret)
    try:
        response = httpx.post(url, content=data, headers=headers, timeout=timeout_s, follow_redirects=False)
    except httpx.HTTPError as exc:
        raise WebhookError(f"{type(exc).__name__}: {exc}") from exc
    if response.status_code >= 500 or response.status_code in (408, 429):
        raise WebhookError(f"receiver answered {response.status_code}")
    if response.status_code >= 300:
        raise WebhookRefused(f"receiver answered {response.status_code}")
    return response.status_code
