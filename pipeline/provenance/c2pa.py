"""C2PA manifests read and validated offline with c2pa-python.

Offline there is no trust list, so the best a valid signature can reach is "Valid" (signature and
hashes check out) with signingCredential.untrusted among the failures: the signer's identity is
not established. Both are reported as they come; network fetches (remote manifests, OCSP) are
switched off so a scan never leaves the machine.
"""
from __future__ import annotations

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
    try:
        context = c2pa.Context(c2pa.Settings.from_dict(_OFFLINE))
        reader = (c2pa.Reader.try_create(mime, f, context=context) if mime
                  else c2pa.Reader.try_create(f, context=context))
        if reader is None:
            if where is None:
                return None, []
            return (_unread(where, "Unreadable", "no manifest"),
                    [f"C2PA data in {where} holds no readable manifest"])
        with reader:
            store = json.loads(reader.json())
    except (c2pa.C2paError, OSError, ValueError) as exc:
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
    return _summary(store, where), []


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
