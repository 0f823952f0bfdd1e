"""Callback to the platform when a scan ends: `scan.finished` with any verdict, `scan.failed` with
the error as clients see it; and when a reviewer decides one of its findings: `finding.decided`.

Every delivery attempt carries its time (`X-Likeness-Timestamp`, unix seconds) and, with a secret,
the HMAC-SHA256 of `f"{timestamp}.{body}"` (the exact bytes), so a receiver can trust the body and
refuse a replay: `verify` rejects timestamps older than REPLAY_WINDOW_S. The job id is the event id:
delivery is at least once, so a receiver drops repeats by that id.
"""
from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import socket
import time
from urllib.parse import urlsplit

import httpx

SIGNATURE_HEADER = "X-Likeness-Signature"
EVENT_HEADER = "X-Likeness-Event-Id"
TIMESTAMP_HEADER = "X-Likeness-Timestamp"
REPLAY_WINDOW_S = 300  # receivers reject a delivery whose timestamp is older than this (5 minutes)


class WebhookError(Exception):
    """A delivery that failed but may work later (network, 5xx, 429)."""


class WebhookRefused(Exception):
    """A delivery that can never work (bad URL, a private address, a 4xx answer)."""


def check_url(url: str) -> str:
    """Scheme and host checks. The API also resolves the host at submit (`resolve`) to refuse a private
    address at once; delivery resolves and checks again, and connects to an address it checked."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise WebhookRefused(f"callback URL must be http(s)://host/..., not {url!r}")
    return url


def _target(url: str) -> tuple[str, int]:
    """(host name as it is sent on the wire, i.e. IDNA-encoded; port) of a callback URL."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise WebhookRefused(f"bad callback URL {url!r}: {exc}") from exc
    port = parsed.port if parsed.port is not None else (443 if parsed.scheme == "https" else 80)
    return parsed.raw_host.decode("ascii"), port


def resolve(url: str, allow_private: bool) -> list[str]:
    """The callback host's addresses, resolved once; every one must be public (unless allow_private):
    loopback, private and link-local targets are refused, so a callback cannot reach inside."""
    host, port = _target(url)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise WebhookError(f"cannot resolve {host}: {exc}") from exc
    addresses: list[str] = []
    for info in infos:
        address: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.ip_address(
            str(info[4][0]).split("%", 1)[0])
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        if not allow_private and not address.is_global:
            raise WebhookRefused(f"callback host {host} resolves to non-public address {address}")
        if str(address) not in addresses:
            addresses.append(str(address))
    if not addresses:
        raise WebhookError(f"cannot resolve {host}: no addresses")
    return addresses


def body(job_id: str, uploader: str | None, report: dict, account: dict | None = None) -> bytes:
    """`account`: the uploader's recent counts and the ladder's recommendation (scans/accounts.py), ids
    and counts only."""
    payload = {
        "event": "scan.finished", "job_id": job_id, "uploader": uploader,
        "verdict": report["verdict"],
        "findings": [{"identity_id": f["identity"]["id"], "name": f["identity"]["name"], "category": f["category"],
                      "action": f["action"], "start_s": f["start_s"], "end_s": f["end_s"],
                      **({"item": f["item"]} if "item" in f else {})}  # a post's: which of its items
                     for f in report["findings"]],
        "report": f"/v1/scans/{job_id}/report",
        **({"uploader_history": account} if account is not None else {}),
    }
    return json.dumps(payload, sort_keys=True).encode()


def failed_body(job_id: str, uploader: str | None, error: str) -> bytes:
    """`error` as clients see it (already scrubbed of server paths and database details)."""
    payload = {"event": "scan.failed", "job_id": job_id, "uploader": uploader, "error": error,
               "job": f"/v1/jobs/{job_id}"}
    return json.dumps(payload, sort_keys=True).encode()


def decision_body(decision, uploader: str | None) -> bytes:
    """`finding.decided`: a reviewer confirmed or dismissed a finding of the scan (`decision` is a
    workers.data.reviews.Decision; its id is the event id, `decision-<id>`)."""
    payload = {"event": "finding.decided", "job_id": decision.scan_id, "uploader": uploader,
               "finding_id": decision.finding_id, "identity_id": decision.identity_id,
               "decision": decision.decision, "reason": decision.reason, "comment": decision.comment,
               "decided_by": decision.decided_by, "decided_at": decision.decided_at.isoformat(),
               "decision_id": decision.id, "finding": f"/v1/findings/{decision.finding_id}"}
    return json.dumps(payload, sort_keys=True).encode()


def sign(data: bytes, secret: str, timestamp: int) -> str:
    """`sha256=` and the HMAC-SHA256 of `f"{timestamp}.{body}"`."""
    return "sha256=" + hmac.new(secret.encode(), str(timestamp).encode() + b"." + data, hashlib.sha256).hexdigest()


def verify(data: bytes, signature: str | None, timestamp: str | None, secret: str, now: float | None = None,
           window_s: float = REPLAY_WINDOW_S) -> bool:
    """What a receiver does: the signature matches the timestamp and body, and the timestamp is at
    most `window_s` old (and not from the future beyond that)."""
    if not signature or not timestamp or not (timestamp.isascii() and timestamp.isdigit()):
        return False
    if abs((time.time() if now is None else now) - int(timestamp)) > window_s:
        return False
    return hmac.compare_digest(signature, sign(data, secret, int(timestamp)))


def deliver(url: str, data: bytes, event_id: str, secret: str | None, timeout_s: float,
            allow_private: bool) -> int:
    """POST once; returns the status code or raises WebhookError / WebhookRefused.

    The host name is resolved once (`resolve`), and the request goes to an address that was checked,
    with the URL's Host header and, for https, SNI and certificate verification for the URL's host
    name: a DNS answer that changes between the check and the connection (rebinding) cannot send the
    callback elsewhere. Environment proxies are not used, for the same reason.
    """
    check_url(url)
    addresses = resolve(url, allow_private)
    timestamp = int(time.time())  # each attempt's own: a retry an hour later is not a replay
    headers = {"Content-Type": "application/json", EVENT_HEADER: event_id, TIMESTAMP_HEADER: str(timestamp)}
    if secret:
        headers[SIGNATURE_HEADER] = sign(data, secret, timestamp)
    # An explicit transport: no proxies from the environment (SSL_CERT_FILE/DIR still apply).
    with httpx.Client(transport=httpx.HTTPTransport(), timeout=timeout_s, follow_redirects=False) as client:
        request = client.build_request("POST", url, content=data, headers=headers)  # Host: the URL's host
        if request.url.scheme == "https":
            request.extensions["sni_hostname"] = request.url.raw_host.decode("ascii")
        original = request.url
        for i, address in enumerate(addresses):
            request.url = original.copy_with(host=address)
            try:
                response = client.send(request)
                break
            except httpx.ConnectError as exc:  # refused or unreachable: nothing was sent, try the next one
                if i + 1 < len(addresses):
                    continue
                raise WebhookError(f"{type(exc).__name__}: {exc}") from exc
            except httpx.HTTPError as exc:
                raise WebhookError(f"{type(exc).__name__}: {exc}") from exc
    if response.status_code >= 500 or response.status_code in (408, 429):
        raise WebhookError(f"receiver answered {response.status_code}")
    if response.status_code >= 300:
        raise WebhookRefused(f"receiver answered {response.status_code}")
    return response.status_code
