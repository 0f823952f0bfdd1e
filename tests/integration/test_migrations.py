"""Schema migrations on the real database (PostgreSQL when LIKENESS_DATABASE_URL points at one):
the migrated schema is exactly the models', an upgrade keeps existing data, and many processes may
upgrade at once."""
from __future__ import annotations

import threading

import numpy as np
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect

from gallery.store import (Base, CharacterCastRow, CharacterReferenceRow, GalleryStateRow, GalleryStore, IdentityRow,
                           ReferenceRow, make_engine)
from samples.services import ScratchPostgres, is_postgres
from workers.data import migrate
from workers.data.db import Database, ScanRow

# What the embedded CLI made before it ran Alembic: the gallery tables (GalleryStore.open's create_all)
# and the character tables (gallery.characters.ensure_tables).
EMBEDDED_TABLES = [IdentityRow.__table__, ReferenceRow.__table__, GalleryStateRow.__table__, ScanRow.__table__,
                   CharacterReferenceRow.__table__, CharacterCastRow.__table__]
HEAD = ScriptDirectory.from_config(migrate.alembic_config()).get_current_head()


def _fresh_url(tmp_path, machine_settings, request) -> str:
    if is_postgres(machine_settings.database_url):
        scratch = ScratchPostgres(machine_settings.database_url)
        request.addfinalizer(scratch.drop)
        return scratch.create()
    return f"sqlite:///{tmp_path / 'likeness.db'}"


def test_migrated_schema_matches_the_models(tmp_path, machine_settings, request):
    url = _fresh_url(tmp_path, machine_settings, request)
    assert migrate.upgrade(url) == HEAD
    engine = make_engine(url)
    with engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection, opts={"compare_type": True}),
                                Base.metadata) == []
    engine.dispose()


def test_upgrade_keeps_a_pre_alembic_database(tmp_path, machine_settings, request):
    """A gallery made by the embedded CLI (create_all, no version table) is adopted, not re-created."""
    url = _fresh_url(tmp_path, machine_settings, request)
    engine = make_engine(url)
    Base.metadata.create_all(engine, tables=EMBEDDED_TABLES)
    store = GalleryStore(engine)
    embedding = np.full(512, 1 / np.sqrt(512), dtype=np.float32)
    info, ids, version = store.add_identity("Yao Ming", "person", "nba", "no_ai", ["tube"], [dict(
        source_name="yao.jpg", sha256="0" * 64, stored_path="yao.jpg", embedding=embedding.tobytes(), face={})])
    with Database(engine).transaction() as s:
        s.add(ScanRow(id="scan-1", video=str(tmp_path / "clip.mp4"), uploader="u", gallery_version=version,
                      action="review", report={"findings": []}))

    assert migrate.upgrade(url) == HEAD
    assert migrate.downgrade(url, "0001") == "0001"
    assert migrate.upgrade(url) == HEAD

    assert {"jobs", "findings", "api_keys", "owners", "scan_segments", "character_cast"} <= \
        set(inspect(engine).get_table_names())
    assert store.identities() == [(info, 1)] and store.version() == version == 1
    assert [r.id for r in store.references()] == ids
    np.testing.assert_array_equal(store.references()[0].embedding, embedding)
    with store.session() as s:
        assert s.get(ScanRow, "scan-1").report == {"findings": []}
    engine.dispose()


def test_concurrent_upgrades_serialise(tmp_path, machine_settings, request):
    url = _fresh_url(tmp_path, machine_settings, request)
    results, errors = [], []

    def upgrade():
        try:
            results.append(migrate.upgrade(url))
        except Exception as exc:  # collected and reported below
            errors.append(exc)

    threads = [threading.Thread(target=upgrade) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and results == [HEAD] * 4
