"""A home made by any earlier release opens with a later one: the embedded CLI upgrades its database to
the newest schema first, keeping identities, references and their vectors.

Every revision in the migration scripts is tried as Alembic left it, and each revision up to 0004 also
as the embedded CLI made it before it ran Alembic (the gallery tables of that revision, no service
tables, no version table). A database at 0003 without the version table is the home that failed with "no such column
identities.match_threshold" before.
"""
from __future__ import annotations

import json

import numpy as np
import pytest
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text

from gallery.store import (Base, CharacterCastRow, CharacterReferenceRow, GalleryStateRow, GalleryStore, IdentityRow,
                           ReferenceRow, make_engine)
from workers.cli.main import main as likeness
from workers.data import migrate
from workers.data.db import ScanRow
from workers.runtime import Runtime
from workers.settings import Settings

SCRIPTS = ScriptDirectory.from_config(migrate.alembic_config())
REVISIONS = [script.revision for script in reversed(list(SCRIPTS.walk_revisions()))]
HEAD = SCRIPTS.get_current_head()
# The embedded CLI has migrated with Alembic since 0004: no home of a later revision lacks the version table.
LAST_BEFORE_ALEMBIC = "0004"
HOMES = [(revision, True) for revision in REVISIONS] + \
    [(revision, False) for revision in REVISIONS[:REVISIONS.index(LAST_BEFORE_ALEMBIC) + 1]]
SERVICE_ONLY = ("findings", "scan_segments", "jobs", "api_keys", "owners")  # never in an embedded home
WHEN = "2025-01-02 03:04:05.000000"


def unit(axis: int) -> np.ndarray:
    v = np.zeros(512, np.float32)
    v[axis] = 1.0
    return v


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.delenv("LIKENESS_DATABASE_URL", raising=False)  # the home's own SQLite database
    return tmp_path / "home"


def url_of(home) -> str:
    return f"sqlite:///{home / 'likeness.db'}"


def make_home(home, revision: str, versioned: bool) -> None:
    home.mkdir()
    assert migrate.upgrade(url_of(home), revision) == revision
    if versioned:
        return
    engine = make_engine(url_of(home))
    with engine.begin() as connection:
        tables = set(inspect(connection).get_table_names())
        for table in ("alembic_version", *SERVICE_ONLY):
            if table in tables:
                connection.execute(text(f"DROP TABLE {table}"))
    engine.dispose()


def write_raw(home) -> dict:
    """One person with a face reference, and a character with a CLIP reference where the schema has
    the table; plain SQL, with only the columns the database has. Returns what the CLI should list."""
    engine = make_engine(url_of(home))
    with engine.begin() as connection:
        schema = inspect(connection)
        has_threshold = "match_threshold" in {c["name"] for c in schema.get_columns("identities")}
        has_characters = "character_references" in schema.get_table_names()
        identity = text("INSERT INTO identities (id, name, kind, owner, policy, authorized_uploaders, created_at"
                        + (", match_threshold" if has_threshold else "") + ") VALUES (:id, :name, :kind, :owner, "
                        ":policy, :uploaders, :at" + (", :threshold" if has_threshold else "") + ")")
        connection.execute(identity, dict(id="p1", name="Yao Ming", kind="person", owner="nba", policy="no_ai",
                                           uploaders='["tube"]', at=WHEN, threshold=0.6))
        connection.execute(text("INSERT INTO reference_images (identity_id, source_name, sha256, stored_path, "
                                "embedding, face, created_at) VALUES ('p1', 'yao.jpg', :sha, 'yao.jpg', :emb, '{}', "
                                ":at)"), dict(sha="0" * 64, emb=unit(7).tobytes(), at=WHEN))
        if has_characters:
            connection.execute(identity, dict(id="c1", name="Hero", kind="character", owner="studio", policy="no_use",
                                               uploaders="[]", at=WHEN.replace("05.", "06."), threshold=None))
            connection.execute(text("INSERT INTO character_references (identity_id, source_name, sha256, "
                                    "stored_path, region, box, t_s, embedding, created_at) VALUES ('c1', 'art.png', "
                                    ":sha, 'art.png', 'whole', '[0, 0, 10, 10]', NULL, :emb, :at)"),
                               dict(sha="1" * 64, emb=unit(3).tobytes(), at=WHEN))
        connection.execute(text("INSERT INTO gallery_state (id, version) VALUES (1, 2)"))
    engine.dispose()
    listed = [{"id": "p1", "name": "Yao Ming", "kind": "person", "owner": "nba", "policy": "no_ai",
               "authorized_uploaders": ["tube"], "match_threshold": 0.6 if has_threshold else None, "references": 1}]
    if has_characters:
        listed.append({"id": "c1", "name": "Hero", "kind": "character", "owner": "studio", "policy": "no_use",
                       "authorized_uploaders": [], "match_threshold": None, "references": 0})
    return listed


def revision_of(home) -> str | None:
    engine = make_engine(url_of(home))
    with engine.connect() as connection:
        revision = MigrationContext.configure(connection).get_current_revision()
    engine.dispose()
    return revision


def test_the_scripts_have_earlier_revisions():
    assert len(REVISIONS) >= 4 and REVISIONS[0] == "0001" and REVISIONS[-1] == HEAD


@pytest.mark.parametrize("revision, versioned", HOMES,
                         ids=[f"{r}-{'alembic' if v else 'before-alembic'}" for r, v in HOMES])
def test_a_home_at_an_earlier_revision_opens_with_its_data(home, revision, versioned, capsys):
    make_home(home, revision, versioned)
    expected = write_raw(home)

    assert likeness(["--home", str(home), "gallery", "list", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == expected
    assert revision_of(home) == HEAD

    runtime = Runtime(Settings(home=home))
    hits = runtime.gallery.search(unit(7)[None], 1)[0]
    assert [(h.identity_id, round(h.similarity, 4)) for h in hits] == [("p1", 1.0)]
    assert len(runtime.character_gallery) == len(expected) - 1


def test_a_home_made_by_create_all_is_adopted(home, capsys):
    """The last embedded shape before Alembic: the gallery tables by create_all, no version table."""
    home.mkdir()
    engine = make_engine(url_of(home))
    Base.metadata.create_all(engine, tables=[IdentityRow.__table__, ReferenceRow.__table__, GalleryStateRow.__table__,
                                             ScanRow.__table__, CharacterReferenceRow.__table__,
                                             CharacterCastRow.__table__])
    info, _, _ = GalleryStore(engine).add_identity("Yao Ming", "person", "nba", "no_ai", ["tube"], [dict(
        source_name="yao.jpg", sha256="0" * 64, stored_path="yao.jpg", embedding=unit(7).tobytes(), face={})], 0.6)
    engine.dispose()

    assert likeness(["--home", str(home), "gallery", "list", "--json"]) == 0
    assert [(i["id"], i["match_threshold"], i["references"]) for i in json.loads(capsys.readouterr().out)] == \
        [(info.id, 0.6, 1)]
    assert revision_of(home) == HEAD
    assert Runtime(Settings(home=home)).gallery.search(unit(7)[None], 1)[0][0].identity_id == info.id
