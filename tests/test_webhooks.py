"""Webhook delivery connects to the address it checked: the callback host is resolved once, every
address is checked, and the request goes to that address with the URL's Host header (and, for https,
SNI and certificate verification for the URL's host name)."""
from __future__ import annotations

import datetime
import hashlib
import hmac
import ipaddress
import json
import socket
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from workers.scans import webhooks
from workers.scans.webhooks import (EVENT_HEADER, REPLAY_WINDOW_S, SIGNATURE_HEADER, TIMESTAMP_HEADER, WebhookError,
                                    WebhookRefused, body, deliver, failed_body, sign, verify)

HOST = "hooks.likeness-test.invalid"  # .invalid never resolves for real (RFC 6761)
DATA = json.dumps({"event": "scan.finished", "job_id": "job-1"}).encode()
REAL_GETADDRINFO = socket.getaddrinfo


class Receiver(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 (http.server's name)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.calls.append({"headers": dict(self.headers), "body": body, "path": self.path})
        self.send_response(self.server.status)
        self.end_headers()

    def log_message(self, *args):
        pass


def serve(tls: ssl.SSLContext | None = None) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    server.calls, server.status, server.sni = [], 200, []
    if tls is not None:
        tls.sni_callback = lambda sock, name, ctx: server.sni.append(name)
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def server():
    server = serve()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def resolver(monkeypatch):
    """socket.getaddrinfo, process-wide, answering `answers[HOST]` for the made-up host and counting
    every lookup of a name (IP literals, which need no DNS, are passed through)."""
    state = {"answers": {}, "lookups": []}

    def getaddrinfo(host, port, *args, **kwargs):
        name = host.decode() if isinstance(host, bytes) else host
        try:
            ipaddress.ip_address(name)
        except ValueError:
            state["lookups"].append(name)
            if name in state["answers"]:
                return [(socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "",
                         (a, port or 0)) for a in state["answers"][name]]
        return REAL_GETADDRINFO(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return state


@pytest.fixture
def no_connections(monkeypatch):
    """Record (and refuse) every outgoing TCP connection attempt."""
    attempts = []

    def refuse(*args, **kwargs):
        attempts.append(args)
        raise AssertionError("no connection may be attempted")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    return attempts


def test_delivery_goes_to_the_resolved_address_with_the_urls_host(server, resolver):
    port = server.server_address[1]
    resolver["answers"][HOST] = ["127.0.0.1"]
    status = deliver(f"http://{HOST}:{port}/hooks/likeness?x=1", DATA, "job-1", "s3cret", 5.0, allow_private=True)
    assert status == 200
    assert len(server.calls) == 1
    call = server.calls[0]
    assert call["headers"]["Host"] == f"{HOST}:{port}"
    assert call["path"] == "/hooks/likeness?x=1"
    assert call["body"] == DATA
    assert call["headers"][EVENT_HEADER] == "job-1"
    timestamp = int(call["headers"][TIMESTAMP_HEADER])
    assert abs(time.time() - timestamp) < 60
    assert call["headers"][SIGNATURE_HEADER] == sign(DATA, "s3cret", timestamp)
    assert call["headers"][SIGNATURE_HEADER] == "sha256=" + hmac.new(
        b"s3cret", f"{timestamp}.".encode() + DATA, hashlib.sha256).hexdigest()
    assert verify(DATA, call["headers"][SIGNATURE_HEADER], call["headers"][TIMESTAMP_HEADER], "s3cret")
    assert resolver["lookups"] == [HOST]  # resolved exactly once, and nothing else resolved it again


def test_the_connection_goes_to_the_checked_address_when_the_answer_changes(resolver, monkeypatch):
    """DNS rebinding: the name answers a public address to the check and a loopback one to any later
    lookup; there is no later lookup, and the only address connected to is the checked one."""
    answers = iter([["93.184.215.14"], ["127.0.0.1"]])
    counting = socket.getaddrinfo

    def rebinding(host, *args, **kwargs):
        if host == HOST:
            resolver["answers"][HOST] = next(answers)
        return counting(host, *args, **kwargs)

    connected = []

    def create_connection(address, *args, **kwargs):
        connected.append(address)
        raise ConnectionRefusedError(111, "refused by the test")  # no traffic leaves the machine

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    monkeypatch.setattr(socket, "create_connection", create_connection)
    with pytest.raises(WebhookError, match="refused by the test"):
        deliver(f"http://{HOST}:8080/hook", DATA, "job-2", None, 5.0, allow_private=False)
    assert connected == [("93.184.215.14", 8080)]
    assert resolver["lookups"] == [HOST]


@pytest.mark.parametrize("address", ["127.0.0.1", "10.1.2.3", "169.254.169.254", "::1", "::ffff:192.168.1.1"])
def test_a_name_resolving_to_a_private_address_is_refused_without_connecting(resolver, no_connections, address):
    resolver["answers"][HOST] = ["93.184.215.14", address]  # one public address is not enough
    with pytest.raises(WebhookRefused, match="non-public address"):
        deliver(f"https://{HOST}/hook", DATA, "job-3", None, 5.0, allow_private=False)
    assert no_connections == []
    assert resolver["lookups"] == [HOST]


def test_an_unresolvable_name_may_work_later(resolver, no_connections):
    with pytest.raises(WebhookError, match="cannot resolve"):
        deliver(f"http://{HOST}/hook", DATA, "job-4", None, 5.0, allow_private=True)
    assert no_connections == [] and resolver["lookups"] == [HOST]


def test_an_unreachable_first_address_falls_back_to_the_next(server, resolver):
    port = server.server_address[1]
    resolver["answers"][HOST] = ["127.0.0.2", "127.0.0.1"]  # the server listens on 127.0.0.1 only
    assert deliver(f"http://{HOST}:{port}/", DATA, "job-5", None, 5.0, allow_private=True) == 200
    assert len(server.calls) == 1 and resolver["lookups"] == [HOST]


@pytest.mark.parametrize("status, error", [(500, WebhookError), (429, WebhookError), (404, WebhookRefused)])
def test_receiver_answers_keep_their_meaning(server, resolver, status, error):
    server.status = status
    resolver["answers"][HOST] = ["127.0.0.1"]
    with pytest.raises(error, match=str(status)):
        deliver(f"http://{HOST}:{server.server_address[1]}/", DATA, "job-6", None, 5.0, allow_private=True)


def _certificates(tmp_path, server_name: str):
    """A CA (written to ca.pem) and a server certificate for `server_name` signed by it."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "likeness test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(hours=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    leaf = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, server_name)]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(server_name)]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    (tmp_path / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "server.pem").write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "server.key").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(tmp_path / "server.pem", tmp_path / "server.key")
    return tmp_path / "ca.pem", tls


def test_https_sends_sni_and_verifies_the_certificate_for_the_urls_host(tmp_path, resolver, monkeypatch):
    ca, tls = _certificates(tmp_path, HOST)
    monkeypatch.setenv("SSL_CERT_FILE", str(ca))
    server = serve(tls)
    try:
        port = server.server_address[1]
        resolver["answers"][HOST] = ["127.0.0.1"]
        assert deliver(f"https://{HOST}:{port}/hook", DATA, "job-7", None, 5.0, allow_private=True) == 200
        assert server.sni == [HOST]
        assert server.calls[0]["headers"]["Host"] == f"{HOST}:{port}"
        assert resolver["lookups"] == [HOST]
    finally:
        server.shutdown()
        server.server_close()


def test_https_refuses_a_certificate_for_another_name(tmp_path, resolver, monkeypatch):
    ca, tls = _certificates(tmp_path, "someone-else.likeness-test.invalid")
    monkeypatch.setenv("SSL_CERT_FILE", str(ca))
    server = serve(tls)
    try:
        resolver["answers"][HOST] = ["127.0.0.1"]
        with pytest.raises(WebhookError, match="CERTIFICATE_VERIFY_FAILED|certificate"):
            deliver(f"https://{HOST}:{server.server_address[1]}/hook", DATA, "job-8", None, 5.0, allow_private=True)
        assert server.calls == []
    finally:
        server.shutdown()
        server.server_close()


def test_the_delivery_uses_no_proxy_from_the_environment(server, resolver, monkeypatch):
    """A proxy would resolve the name itself, after our check."""
    for variable in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.setenv(variable, "http://192.0.2.1:3128")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    resolver["answers"][HOST] = ["127.0.0.1"]
    assert deliver(f"http://{HOST}:{server.server_address[1]}/", DATA, "job-9", None, 5.0, allow_private=True) == 200
    assert len(server.calls) == 1


def test_the_public_address_check_itself(resolver):
    resolver["answers"][HOST] = ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"]
    assert webhooks.resolve(f"https://{HOST}/", allow_private=False) == [
        "93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"]


def test_a_receiver_refuses_replays_and_tampering():
    """verify: the signature covers the timestamp and the body; timestamps past the window are refused."""
    at = 1_800_000_000
    signature = sign(DATA, "s3cret", at)
    assert verify(DATA, signature, str(at), "s3cret", now=at + REPLAY_WINDOW_S)
    assert REPLAY_WINDOW_S == 300
    assert not verify(DATA, signature, str(at), "s3cret", now=at + REPLAY_WINDOW_S + 1)  # a replay, too late
    assert not verify(DATA, signature, str(at + 1), "s3cret", now=at)  # another timestamp: another signature
    assert not verify(DATA + b" ", signature, str(at), "s3cret", now=at)
    assert not verify(DATA, signature, str(at), "other", now=at)
    assert not verify(DATA, signature, None, "s3cret", now=at) and not verify(DATA, None, str(at), "s3cret", now=at)
    assert not verify(DATA, signature, "-1", "s3cret", now=at) and not verify(DATA, signature, "\u00b2", "s3cret")


def test_bodies_of_both_terminal_events():
    report = {"verdict": {"action": "allow", "reasons": []}, "findings": []}
    assert json.loads(body("job-1", "user-17", report)) == {
        "event": "scan.finished", "job_id": "job-1", "uploader": "user-17", "verdict": report["verdict"],
        "findings": [], "report": "/v1/scans/job-1/report"}
    assert json.loads(failed_body("job-2", "user-17", "not a video")) == {
        "event": "scan.failed", "job_id": "job-2", "uploader": "user-17", "error": "not a video",
        "job": "/v1/jobs/job-2"}
