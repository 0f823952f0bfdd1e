"""Deleting scans for good: on the platform's request (`DELETE /v1/scans/{id}`) and once they are
older than the retention period (`likeness purge`, run from cron).

The database goes first, in one transaction (report, findings, segment embeddings; the job row
becomes a tombstone), then the files (the API's copy of the upload, the evidence images). A failure
between the two is repaired by deleting again: a tombstone's files are removed every time.
"""
from __future__ import annotations

from datetime import timedelta

from workers.scans.evidence import scan_dir
from workers.service import Service
from workers.data.files import remove_tree, upload_dir

PURGE_BATCH = 200  # scans read per query: a long backlog is purged in bounded transactions


def delete_scan(service: Service, job_id: str) -> bool:
    """Delete a finished scan's data; False (nothing deleted) while it is queued or running."""
    if not service.jobs.delete_scan(job_id):
        return False
    remove_tree(upload_dir(service.media_root, job_id))
    remove_tree(scan_dir(service.media_root, job_id))
    return True


def purge(service: Service, older_than: timedelta) -> list[str]:
    """Delete every scan that finished more than `older_than` ago; returns their ids."""
    deleted: list[str] = []
    while batch := service.jobs.expired_scans(older_than, PURGE_BATCH):
        done = [job_id for job_id in batch if delete_scan(service, job_id)]
        if not done:  # cannot happen (finished scans stay finished), but must never loop forever
            break
        deleted += done
    return deleted
