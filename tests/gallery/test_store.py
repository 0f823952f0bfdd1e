"""What decisions read from an identity can change after registration; its references cannot."""
from __future__ import annotations

import math

import pytest

from gallery.store import GalleryStore, check_match_threshold


@pytest.fixture
def store(tmp_path) -> GalleryStore:
    return GalleryStore.open(f"sqlite:///{tmp_path / 'gallery.db'}")


def test_match_threshold_is_a_cosine_similarity():
    assert check_match_threshold(None) is None
    assert check_match_threshold(-1.0) == -1.0 and check_match_threshold(1.0) == 1.0
    for nonsense in (1.01, -1.5, math.nan, math.inf):
        with pytest.raises(ValueError, match="from -1 to 1"):
            check_match_threshold(nonsense)


def test_add_refuses_a_threshold_out_of_range(store):
    with pytest.raises(ValueError, match="from -1 to 1"):
        store.add_identity("Yao Ming", "person", "nba", "no_use", [], [], match_threshold=7.0)
    assert store.identities() == [] and store.version() == 0


def test_update_changes_decision_fields_for_the_owner_and_moves_the_version(store):
    info, _, version = store.add_identity("Yao Ming", "person", "nba", "no_use", ["user-17"], [])
    changed, new_version = store.update_identity(info.id, "nba", {"authorized_uploaders": ("tube:user-17",),
                                                                  "match_threshold": 0.5})
    assert new_version == version + 1 == store.version()
    assert (changed.policy, changed.authorized_uploaders, changed.match_threshold) == \
        ("no_use", ("tube:user-17",), 0.5)
    assert store.identity(info.id) == changed

    with pytest.raises(KeyError):
        store.update_identity(info.id, "studio", {"policy": "allow"})
    with pytest.raises(ValueError, match="cannot change name"):
        store.update_identity(info.id, "nba", {"name": "Someone"})
    with pytest.raises(ValueError, match="from -1 to 1"):
        store.update_identity(info.id, "nba", {"match_threshold": -2.0})
    assert store.identity(info.id) == changed and store.version() == new_version
    assert store.reference_count(info.id) == 0
