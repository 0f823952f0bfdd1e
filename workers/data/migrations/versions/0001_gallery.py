"""Gallery tables as first released (identities, reference images, gallery state, scans).

Databases made before Alembic (by the create_all that `GalleryStore.open` once ran) hold these
tables; `migrate.upgrade` stamps them with this revision instead of creating them again.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "identities",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("owner", sa.String(200), nullable=False),
        sa.Column("policy", sa.String(40), nullable=False),
        sa.Column("authorized_uploaders", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_identities_owner", "identities", ["owner"])
    op.create_table(
        "reference_images",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("identity_id", sa.String(36), sa.ForeignKey("identities.id", ondelete="CASCADE"), nullable=False),
        sa.Column("source_name", sa.String(500), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("stored_path", sa.Text(), nullable=False),
        sa.Column("embedding", sa.LargeBinary(), nullable=False),
        sa.Column("face", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_reference_images_identity_id", "reference_images", ["identity_id"])
    op.create_table(
        "gallery_state",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("version", sa.Integer(), nullable=False),
    )
    op.create_table(
        "scans",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("video", sa.Text(), nullable=False),
        sa.Column("uploader", sa.String(200), nullable=True),
        sa.Column("gallery_version", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(20), nullable=False),
        sa.Column("report", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("scans")
    op.drop_table("gallery_state")
    op.drop_index("ix_reference_images_identity_id", "reference_images")
    op.drop_table("reference_images")
    op.drop_index("ix_identities_owner", "identities")
    op.drop_table("identities")
