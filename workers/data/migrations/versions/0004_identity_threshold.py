"""Per-identity match threshold for likenesses known to be confused with look-alikes.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    columns = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("identities")}
    if "match_threshold" not in columns:
        # A plain ADD COLUMN: batch mode would rebuild the table on SQLite, and dropping the old
        # identities table would cascade-delete every reference.
        op.add_column("identities", sa.Column("match_threshold", sa.Float(), nullable=True))


def downgrade() -> None:
    op.drop_column("identities", "match_threshold")
