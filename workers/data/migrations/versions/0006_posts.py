"""Uploader history (one row of counts per finished scan) and the perceptual hashes of posts' pictures.

Both hold ids, counts and hashes only (no face, no embedding) and go with their scan: deleting a scan
(the platform's DELETE, retention's purge) deletes them by the foreign key.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def _scan() -> sa.Column:
    return sa.Column("scan_id", sa.String(64), sa.ForeignKey("scans.id", ondelete="CASCADE"), nullable=False)


def upgrade() -> None:
    op.create_table(
        "uploader_scans",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        _scan(),
        sa.Column("platform", sa.String(200), nullable=False),
        sa.Column("uploader", sa.String(200), nullable=False),
        sa.Column("items", sa.Integer(), nullable=False),
        sa.Column("ai_declared", sa.Boolean(), nullable=False),
        sa.Column("ai_undeclared", sa.Boolean(), nullable=False),
        sa.Column("impersonation", sa.Integer(), nullable=False),
        sa.Column("portrait_rights", sa.Integer(), nullable=False),
        sa.Column("reposts", sa.Integer(), nullable=False),
        sa.Column("verdict", sa.String(20), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("scan_id", name="uq_uploader_scans_scan_id"),
    )
    op.create_index("ix_uploader_scans_account", "uploader_scans", ["platform", "uploader", "created_at"])
    op.create_table(
        "content_hashes",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        _scan(),
        sa.Column("item", sa.Integer(), nullable=False),
        sa.Column("platform", sa.String(200), nullable=False),
        sa.Column("uploader", sa.String(200), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("variants", sa.Text(), nullable=False),
        sa.Column("quality", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("scan_id", "item", name="uq_content_hashes_scan_item"),
    )
    op.create_index("ix_content_hashes_platform", "content_hashes", ["platform", "created_at"])


def downgrade() -> None:
    op.drop_table("content_hashes")
    op.drop_table("uploader_scans")
