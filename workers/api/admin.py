"""Key management (admin keys only) and a health check (no key)."""
from __future__ import annotations

import redis
from fastapi import APIRouter, Depends, HTTPException, Path, Response
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from workers.api.deps import require, service
from workers.api.fields import ID_PATTERN
from workers.data.keys import Principal
from workers.api.schemas import Health, IssuedKeyOut, KeyIn, KeyOut
from workers.service import Service

router = APIRouter()
admin = require("admin")


@router.post("/v1/keys", status_code=201, response_model=IssuedKeyOut, tags=["keys"],
             summary="Issue an API key (the secret is shown only here)")
def issue_key(body: KeyIn, _: Principal = Depends(admin), svc: Service = Depends(service)) -> IssuedKeyOut:
    issued = svc.keys.issue(body.role, body.principal, body.label)
    return IssuedKeyOut(id=issued.id, key=issued.key, role=issued.role, principal=issued.principal)


@router.get("/v1/keys", response_model=list[KeyOut], tags=["keys"], summary="List keys (never their secrets)")
def list_keys(_: Principal = Depends(admin), svc: Service = Depends(service)) -> list[KeyOut]:
    return [KeyOut(id=k.id, role=k.role, principal=k.principal, label=k.label, created_at=k.created_at,
                   revoked_at=k.revoked_at) for k in svc.keys.list()]


@router.delete("/v1/keys/{key_id}", status_code=204, tags=["keys"], summary="Revoke a key")
def revoke_key(key_id: str = Path(max_length=64, pattern=ID_PATTERN), _: Principal = Depends(admin),
               svc: Service = Depends(service)) -> Response:
    if svc.keys.revoke(key_id) is None:
        raise HTTPException(404, f"no active key {key_id}")
    return Response(status_code=204)


@router.get("/v1/health", response_model=Health, tags=["health"], responses={503: {"model": Health}},
            summary="Database and Redis reachable?")
def health(response: Response, svc: Service = Depends(service)) -> Health:
    try:
        with svc.db.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        database = "ok"
    except SQLAlchemyError:
        database = "unavailable"
    try:
        svc.redis.ping()
        broker = "ok"
    except redis.RedisError:
        broker = "unavailable"
    if "unavailable" in (database, broker):
        response.status_code = 503
    return Health(database=database, redis=broker)
