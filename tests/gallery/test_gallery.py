"""Registering copies the reference files into the identity's private folder only once its rows are in:
a registration the database refuses leaves no copy behind, and nothing of it reaches the next one."""
from __future__ import annotations

import hashlib

import numpy as np
import pytest
from sqlalchemy import text

from gallery.characters import CharacterEnrollment, CharacterReference, ReferenceImage
from gallery.enroll import AcceptedReference, EnrollmentResult
from gallery.gallery import CharacterGallery, Gallery
from gallery.store import GalleryStore
from workers.data import migrate


def unit(axis: int) -> np.ndarray:
    v = np.zeros(512, np.float32)
    v[axis] = 1.0
    return v


@pytest.fixture
def home(tmp_path):
    url = f"sqlite:///{tmp_path / 'likeness.db'}"
    migrate.upgrade(url)
    return tmp_path, GalleryStore.open(url)


def photo(home_dir, name: str) -> AcceptedReference:
    """A reference file with its own content (so its own sha256 and stored name)."""
    path = home_dir / "photos" / name
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(name.encode() * 100)
    return AcceptedReference(path, hashlib.sha256(path.read_bytes()).hexdigest(), unit(len(name)),
                             [0, 0, 10, 10], 0.9, 50.0, 0.0, 0.0)


def refuse_identities(store: GalleryStore, refuse: bool) -> None:
    """A real database failure on the identity insert (as a full disk or a lost connection would be)."""
    with store.engine.begin() as connection:
        if refuse:
            connection.execute(text("CREATE TRIGGER refuse BEFORE INSERT ON identities "
                                    "BEGIN SELECT RAISE(ABORT, 'insert refused'); END"))
        else:
            connection.execute(text("DROP TRIGGER refuse"))


def test_a_refused_insert_leaves_no_copy_and_the_next_add_holds_only_its_own(home):
    home_dir, store = home
    gallery = Gallery(home_dir, store)
    first, second = photo(home_dir, "first.jpg"), photo(home_dir, "second.jpg")

    refuse_identities(store, True)
    with pytest.raises(Exception, match="insert refused"):
        gallery.add("First", "person", "agency", "no_ai", [], EnrollmentResult([first], []))
    assert list((home_dir / "references").iterdir()) == []  # no staging folder, no copy
    assert store.identities() == [] and store.version() == 0

    refuse_identities(store, False)
    info = gallery.add("Second", "person", "agency", "no_ai", [], EnrollmentResult([second], []))
    assert [p.name for p in (home_dir / "references").iterdir()] == [info.id]
    assert [p.name for p in (home_dir / "references" / info.id).iterdir()] == [f"{second.sha256}.jpg"]
    assert len(gallery) == 1 and gallery.search(unit(len("second.jpg"))[None], 1)[0][0].identity_id == info.id


def test_a_refused_character_leaves_no_copy(home):
    home_dir, store = home
    gallery, characters = Gallery(home_dir, store), CharacterGallery(home_dir, store)
    art = photo(home_dir, "art.png")
    images = CharacterEnrollment([CharacterReference(ReferenceImage(art.path, art.path), art.sha256, "whole",
                                                     (0, 0, 10, 10), unit(3))], [])

    refuse_identities(store, True)
    with pytest.raises(Exception, match="insert refused"):
        characters.add(gallery, "Hero", "studio", "no_ai", [], EnrollmentResult([art], []), images)
    assert list((home_dir / "references").iterdir()) == []

    refuse_identities(store, False)
    hero = characters.add(gallery, "Hero", "studio", "no_ai", [], EnrollmentResult([art], []), images)
    assert [p.name for p in (home_dir / "references" / hero.id).iterdir()] == [f"{art.sha256}.png"]
    assert len(characters) == 1 and len(gallery) == 1
