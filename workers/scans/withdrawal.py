"""Withdrawing evidence images when the person they may show is removed from the gallery.

Biometric data of a person goes with their registration: the images of findings about them, and
the images of findings about the characters they play (a character's evidence may be the actor's
face). The findings themselves (times, boxes, similarities) stay; their images are deleted and the
findings say why. Every function here is safe to repeat.
"""
from __future__ import annotations

from workers.scans import evidence
from workers.service import Service

REMOVED = "the likeness was removed; its evidence images were deleted"
ACTOR_REMOVED = ("a person who plays this character was removed; evidence images that may show their face "
                 "were deleted")


def withdraw(service: Service, identity_id: str, reason: str) -> set[str]:
    """Delete the images of every finding about `identity_id` and say so in those findings (rows
    and reports); returns the scans that had such findings."""
    scans = service.jobs.withdraw_images(identity_id, reason)
    for scan_id in scans:
        evidence.delete_images(service.media_root, scan_id, identity_id)
    return set(scans)


def withdraw_characters(service: Service, characters: list[str]) -> set[str]:
    """Withdraw the images of every finding about these characters; returns the scans concerned."""
    return set().union(*(withdraw(service, character, ACTOR_REMOVED) for character in characters))


def lost_an_actor(service: Service, finding: dict) -> bool:
    """Whether the finding names an actor (report's `played_by`, by name) the character's cast no longer
    has: one removed while the scan was being decided, whose removal may have missed this finding."""
    named = set(finding["identity"].get("played_by") or ())
    if not named:
        return False
    return not named <= service.gallery_store.cast_names(finding["identity"]["id"])
