"""C2PA manifests read and validated offline with c2pa-python.

Offline there is no trust list, so the best a valid signature can reach is "Valid" (signature and
hashes check out) with signingCredential.untrusted among the failures: the signer's identity is
not established. Both are reported as they come; network fetches (remote manifests, OCSP) are
switched off so a scan never leaves the machine.

c2pa-rs walks every box of a BMFF file and its time grows with the square of their number (10,000
empty boxes: about 1 s of CPU, 20,000: 6 s, 100,000: minutes), so it reads the file through a
stream that refuses every operation after `MAX_STREAM_OPS` reads and seeks: a file built of tiny
boxes is reported as not validated instead of holding a worker.
"""
from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import BinaryIO

import c2pa

AI_SOURCE_TYPES = frozenset({
    "trainedalgorithmicmedia", "compositewithtrainedalgorithmicmedia", "algorithmicmedia",
    "compositesynthetic",
})
TRUST_NOTE = ("read offline without a trust list: 'Valid' means the signature and hashes check "
              "out, not that the signer is known")
_OFFLINE = {"verify": {"remote_manifest_fetch": False, "ocsp_fetch": False}}
MAX_STREAM_OPS = 100_000   # a signed 7.5 MB phone video takes about 500; 100,000 is ~10,000 boxes, ~1 s


class _Budgeted(io.RawIOBase):
    """A read-only view of the file that fails every read and seek past its budget."""

    def __init__(self, f: BinaryIO, ops: int):
        super().__init__()
        self._f, self.left = f, ops

    @property
    def exhausted(self) -> bool:
        return self.left < 0

    def _spend(self) -> None:
        self.left -= 1
        if self.left < 0:
            raise OSError("C2PA stream budget exhausted")

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
        self._spend()
        return self._f.readinto(buffer)  # type: ignore[attr-defined]

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        self._spend()
        return self._f.seek(offset, whence)

    def tell(self) -> int:
        return self._f.tell()


def source_type_code(value: str) -> str:
    """The code at the end of a source-type URI: '.../digitalsourcetype/trainedAlgorithmicMedia'."""
    return value.rstrip("/").replace("#", "/").replace(":", "/").rsplit("/", 1)[-1]


def is_ai_source_type(value: str) -> bool:
    return source_type_code(value).lower() in AI_SOURCE_TYPES


def read_c2pa(f: BinaryIO, mime: str | None, located: list[tuple[str, int]],
              limit: int) -> tuple[dict | None, list[str]]:
    """(summary, errors). `located` lists C2PA stores our own walkers saw, with sizes."""
    where = located[0][0] if located else None
    for loc, size in located:
        if size > limit:
            return (_unread(where, "NotValidated", f"store of {size} bytes not read"),
                    [f"C2PA store in {loc} is {size} bytes, over the {limit}-byte limit; not validated"])
    stream = _Budgeted(f, MAX_STREAM_OPS)
    store: dict | None = None
    try:
        context = c2pa.Context(c2pa.Settings.from_dict(_OFFLINE))
        reader = (c2pa.Reader.try_create(mime, stream, context=context) if mime
                  else c2pa.Reader.try_create(stream, context=context))
        if reader is not None:
            with reader:
                store = json.loads(reader.json())
    except (c2pa.C2paError, OSError, ValueError) as exc:
        if stream.exhausted:
            return _over_budget(where)
        message = " ".join(str(exc).split())[:300]
        if message.startswith("Remote:"):   # the file points at a manifest on a server
            return (_unread(where or "remote", "NotFetched", message),
                    [f"C2PA manifest is stored remotely and was not fetched offline: {message}"])
        if where:
            return (_unread(where, "Unreadable", message),
                    [f"C2PA manifest in {where} could not be read: {message}"])
        if mime is None or isinstance(exc, c2pa.C2paError.NotSupported):
            return None, []   # nothing located, in a format C2PA cannot live in or we do not know
        return None, [f"C2PA reader could not parse the file: {message}"]
    if stream.exhausted:
        return _over_budget(where)
    if store is None:
        if where is None:
            return None, []
        return (_unread(where, "Unreadable", "no manifest"),
                [f"C2PA data in {where} holds no readable manifest"])
    return _summary(store, where), []


def _over_budget(where: str | None) -> tuple[dict | None, list[str]]:
    why = f"the file needs more than {MAX_STREAM_OPS} reads and seeks to validate (too many boxes)"
    return (_unread(where, "NotValidated", why) if where else None,
            [f"C2PA {'manifest in ' + where if where else 'check'} stopped: {why}; not validated"])


def _unread(where: str | None, state: str, why: str) -> dict:
    return {"claim_generator": None, "actions": [], "digital_source_types": [],
            "validation_state": state, "validation_errors": [why], "trusted": False,
            "trust_note": TRUST_NOTE, "signer": None, "manifest_count": 0, "location": where}


def _summary(store: dict, where: str | None) -> dict:
    manifests = store.get("manifests") or {}
    active = manifests.get(store.get("active_manifest")) or {}
    state = store.get("validation_state") or "Unknown"
    signature = active.get("signature_info") or {}
    return {
        "claim_generator": _claim_generator(active),
        "actions": [_action(a) for a in _actions(active)],
        "digital_source_types": sorted({v for m in manifests.values() for v in _source_types(m)}),
        "validation_state": state,
        "validation_errors": _failures(store),
        "trusted": state == "Trusted",
        "trust_note": TRUST_NOTE,
        "signer": {k: signature[k] for k in ("issuer", "common_name", "alg", "time")
                   if k in signature} or None,
        "manifest_count": len(manifests),
        "location": where,
    }


def _claim_generator(manifest: dict) -> str | None:
    if isinstance(manifest.get("claim_generator"), str):
        return manifest["claim_generator"]
    infos = [i for i in manifest.get("claim_generator_info") or [] if isinstance(i, dict)]
    names = [" ".join(str(i[k]) for k in ("name", "version") if i.get(k)) for i in infos]
    return "; ".join(n for n in names if n) or None


def _actions(manifest: dict) -> Iterator[dict]:
    for assertion in manifest.get("assertions") or []:
        if str(assertion.get("label", "")).startswith("c2pa.actions"):
            yield from (a for a in (assertion.get("data") or {}).get("actions") or [] if isinstance(a, dict))


def _action(action: dict) -> dict:
    agent = action.get("softwareAgent")
    if isinstance(agent, dict):
        agent = " ".join(str(agent[k]) for k in ("name", "version") if agent.get(k)) or None
    out = {"action": str(action.get("action", ""))}
    if action.get("digitalSourceType"):
        out["digitalSourceType"] = str(action["digitalSourceType"])
    if agent:
        out["softwareAgent"] = str(agent)
    return out


def _source_types(node: object, depth: int = 0) -> Iterator[str]:
    """Every digitalSourceType value anywhere in a manifest: actions, IPTC assertions, ingredients."""
    if depth > 32:
        return
    if isinstance(node, dict):
        for key, value in node.items():
            if str(key).lower().endswith("digitalsourcetype") and isinstance(value, str):
                yield value
            else:
                yield from _source_types(value, depth + 1)
    elif isinstance(node, list):
        for value in node:
            yield from _source_types(value, depth + 1)


def _failures(store: dict) -> list[str]:
    results = store.get("validation_results") or {}
    entries = list((results.get("activeManifest") or {}).get("failure") or [])
    for delta in results.get("ingredientDeltas") or []:
        entries += (delta.get("validationDeltas") or {}).get("failure") or []
    if not results:
        entries = list(store.get("validation_status") or [])
    seen: dict[str, None] = {}
    for entry in entries:
        seen[f"{entry.get('code')}: {entry.get('explanation', '')}".rstrip(": ")] = None
    return list(seen)
