"""Platform route: one of its uploaders as an account (history counts, near-duplicate clusters, and the
ladder's recommendation with the findings it rests on). Ids and counts only, never a face."""
from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Path

from workers.api import fields
from workers.api.deps import require, service
from workers.data.keys import Principal
from workers.scans import accounts
from workers.service import Service

router = APIRouter(tags=["uploaders"])


@router.get("/v1/uploaders/{uploader_id}", response_model=dict[str, Any],
            summary="An uploader's history and the account-level recommendation")
def get_uploader(uploader_id: str = Path(min_length=1, max_length=200,
                                         description="Your id of the user, as sent with its scans."),
                 who: Principal = Depends(require("platform")), svc: Service = Depends(service)) -> dict:
    """Counts of the scans still kept (all, within the ladder's window, and per week): AI declared and
    undeclared, impersonation and portrait-rights findings acted on, findings reviewers confirmed;
    clusters of near-duplicate pictures among its posts; the recommendation (none, warn,
    restrict_distribution, suspend) with its reasons and what it rests on. An uploader this platform
    never sent is an empty history, not an error: ids are the platform's own."""
    fields.text("uploader_id", uploader_id)
    return accounts.history(svc, who.name, uploader_id, svc.settings.ladder)
