"""Bring a database to the newest schema, keeping its data; safe to run from many processes at once.

This is the only code that creates or changes tables. Every worker and API server calls `upgrade` on
start, and the embedded CLI when it opens a home (workers/runtime.py), so a home made by an earlier
release gets the newest schema in place. A database made before Alembic (by `create_all`: tables, no
`alembic_version`) is first stamped with the revision its tables match. PostgreSQL serialises
concurrent upgrades with an advisory lock, SQLite with a file lock.
"""
from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, inspect, text
from sqlalchemy.engine import make_url

from gallery.store import make_engine

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
_PG_LOCK_ID = 0x4C494B45  # "LIKE"
# Tables that exist only from a revision on: adopting a pre-Alembic database picks the newest matched.
_ADOPT = (("0002", "jobs"), ("0001", "identities"))


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()  # no alembic.ini: the scripts ship inside the package, the URL comes from the caller
    config.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def upgrade(url: str, revision: str = "head") -> str | None:
    """Migrate to `revision`; returns the revision the database is at afterwards."""
    return _migrate(url, lambda config: command.upgrade(config, revision))


def downgrade(url: str, revision: str) -> str | None:
    return _migrate(url, lambda config: command.downgrade(config, revision))


def _migrate(url: str, step) -> str | None:
    engine = make_engine(url)
    try:
        with _locked(url, engine) as connection:
            _adopt_unversioned(connection)
            step(alembic_config(connection))
            connection.commit()
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()


@contextmanager
def _locked(url: str, engine) -> Iterator[Connection]:
    parsed = make_url(url)
    if parsed.get_backend_name() == "postgresql":
        with engine.connect() as connection:
            connection.execute(text("SELECT pg_advisory_lock(:id)"), {"id": _PG_LOCK_ID})
            connection.commit()
            try:
                yield connection
            finally:
                connection.rollback()
                connection.execute(text("SELECT pg_advisory_unlock(:id)"), {"id": _PG_LOCK_ID})
                connection.commit()
        return
    lock_path = Path(f"{parsed.database}.migrate.lock") if parsed.database else None
    if lock_path is None or parsed.database == ":memory:":
        with engine.connect() as connection:
            yield connection
        return
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            with engine.connect() as connection:
                yield connection
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _adopt_unversioned(connection: Connection) -> None:
    """Stamp a database whose tables were made by create_all, so its data is kept, not re-created."""
    if MigrationContext.configure(connection).get_current_revision() is not None:
        return
    tables = set(inspect(connection).get_table_names())
    for revision, marker in _ADOPT:
        if marker in tables:
            command.stamp(alembic_config(connection), revision)
            connection.commit()
            return
