"""The gallery store: what decisions read from an identity can change after registration (its
references cannot), a character is written whole or not at all, and a process has one engine per database."""
from __future__ import annotations

import math
import os
from datetime import UTC, datetime

import pytest

from gallery.store import GalleryStore, check_match_threshold, shared_engine
from workers.data import migrate


@pytest.fixture
def store(tmp_path) -> GalleryStore:
    url = f"sqlite:///{tmp_path / 'gallery.db'}"
    migrate.upgrade(url)
    return GalleryStore.open(url)


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


def test_a_character_is_written_with_its_references_and_cast_in_one_transaction(store):
    actor, _, _ = store.add_identity("Actor", "person", "agency", "no_ai", [], [])
    other, _, _ = store.add_identity("Other", "person", "elsewhere", "no_ai", [], [])
    image = dict(source_name="art.png", sha256="ab" * 32, stored_path="art.png", region="whole", box=[0, 0, 9, 9],
                 t_s=None, embedding=bytes(2048))
    with pytest.raises(ValueError, match="no registered person"):
        store.add_character("Hero", "studio", "no_ai", [], [], [image], [actor.id, "no-such-id"])
    assert store.version() == 2 and [i.name for i, _ in store.identities()] == ["Actor", "Other"]

    hero, face_ids, image_ids, version = store.add_character("Hero", "studio", "no_ai", [], [], [image],
                                                             [actor.id, other.id, actor.id])
    assert (hero.kind, face_ids, version) == ("character", [], 3)
    assert store.character_reference_ids(hero.id) == image_ids and store.character_reference_owners() == \
        {image_ids[0]: hero.id}
    assert sorted(store.cast_pairs()) == sorted([(hero.id, actor.id), (hero.id, other.id)])
    assert store.cast_names(hero.id) == {"Actor", "Other"}
    assert store.characters_played_by(actor.id, "agency") == [hero.id]
    assert store.characters_played_by(actor.id, "elsewhere") == []  # only the actor's owner asks

    store.remove_identity(actor.id)
    assert store.cast_names(hero.id) == {"Other"} and store.characters_played_by(actor.id, "agency") == []


def test_registered_since_finds_what_an_earlier_run_registered(store):
    before = datetime.now(UTC)
    face = dict(source_name="yao.jpg", sha256="0" * 64, stored_path="yao.jpg", embedding=bytes(2048), face={})
    info, _, _ = store.add_identity("Yao Ming", "person", "nba", "no_ai", [], [face])
    assert store.registered_since("nba", "Yao Ming", {"0" * 64}, before) == info.id
    assert store.registered_since("nba", "Yao Ming", {"0" * 64, "1" * 64}, before) is None  # other references
    assert store.registered_since("nba", "Yao Ming", {"0" * 64}, datetime.now(UTC)) is None  # older
    assert store.registered_since("cba", "Yao Ming", {"0" * 64}, before) is None


def test_one_engine_per_database_and_process(tmp_path):
    url = f"sqlite:///{tmp_path / 'gallery.db'}"
    engine = shared_engine(url)
    assert shared_engine(url) is engine and GalleryStore.open(url).engine is engine
    assert shared_engine(f"sqlite:///{tmp_path / 'other.db'}") is not engine
    child = os.fork()
    if child == 0:  # a forked pool process gets its own engine, never its parent's pooled connections
        os._exit(0 if shared_engine(url) is not engine and shared_engine(url) is shared_engine(url) else 1)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
