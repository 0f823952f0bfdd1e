"""Character tables (gallery/store.py): CLIP references of characters, and who plays whom.

Homes made by the embedded CLI before it ran Alembic may have these already (it created them
itself), so each table is created only where it is missing.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def _missing(table: str) -> bool:
    return table not in sa.inspect(op.get_bind()).get_table_names()


def upgrade() -> None:
    if _missing("character_references"):
        op.create_table(
            "character_references",
            sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
            sa.Column("identity_id", sa.String(36), sa.ForeignKey("identities.id", ondelete="CASCADE"),
                      nullable=False),
            sa.Column("source_name", sa.String(500), nullable=False),
            sa.Column("sha256", sa.String(64), nullable=False),
            sa.Column("stored_path", sa.Text(), nullable=False),
            sa.Column("region", sa.String(20), nullable=False),
            sa.Column("box", sa.JSON(), nullable=False),
            sa.Column("t_s", sa.Float(), nullable=True),
            sa.Column("embedding", sa.LargeBinary(), nullable=False),
            sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        )
        op.create_index("ix_character_references_identity_id", "character_references", ["identity_id"])
    if _missing("character_cast"):
        op.create_table(
            "character_cast",
            sa.Column("character_id", sa.String(36), sa.ForeignKey("identities.id", ondelete="CASCADE"),
                      primary_key=True),
            sa.Column("actor_id", sa.String(36), sa.ForeignKey("identities.id", ondelete="CASCADE"),
                      primary_key=True),
        )
        op.create_index("ix_character_cast_actor_id", "character_cast", ["actor_id"])


def downgrade() -> None:
    op.drop_table("character_cast")
    op.drop_table("character_references")
