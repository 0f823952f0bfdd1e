"""Alembic environment: one metadata (gallery and service tables), URL from the settings.

A caller may hand over an open connection in `config.attributes["connection"]` (workers/data/migrate.py
does, to hold its lock on the same connection); otherwise the URL comes from `sqlalchemy.url` or,
when that is unset, from the Likeness settings.
"""
from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

import workers.data.db  # noqa: F401  (registers the service tables on Base.metadata)
from gallery.store import Base, make_engine

target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata,
                      render_as_batch=connection.dialect.name == "sqlite", compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


def _url() -> str:
    url = context.config.get_main_option("sqlalchemy.url")
    if url:
        return url
    from workers.settings import Settings
    return Settings().resolved_database_url()


def run_migrations_offline() -> None:
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = make_engine(_url())
    try:
        with engine.connect() as connection:
            _run(connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
