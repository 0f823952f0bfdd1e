"""Review decisions on findings (the audit trail) and their webhooks' delivery state.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def _when(name: str) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=False)


def upgrade() -> None:
    op.create_table(
        "finding_decisions",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("finding_id", sa.Integer(), nullable=False),
        sa.Column("scan_id", sa.String(64), nullable=False),
        sa.Column("identity_id", sa.String(36), nullable=False),
        sa.Column("owner", sa.String(200), nullable=False),
        sa.Column("platform", sa.String(200), nullable=False),
        sa.Column("decision", sa.String(20), nullable=False),
        sa.Column("reason", sa.String(40), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("decided_by", sa.String(200), nullable=False),
        sa.Column("key_id", sa.String(32), nullable=False),
        _when("decided_at"),
    )
    for column in ("finding_id", "scan_id", "identity_id", "owner", "platform"):
        op.create_index(f"ix_finding_decisions_{column}", "finding_decisions", [column])
    op.create_table(
        "decision_webhooks",
        sa.Column("decision_id", sa.Integer(), sa.ForeignKey("finding_decisions.id"), primary_key=True),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        _when("updated_at"),
    )
    op.create_index("ix_decision_webhooks_status", "decision_webhooks", ["status"])
    op.create_index("ix_decision_webhooks_updated_at", "decision_webhooks", ["updated_at"])


def downgrade() -> None:
    op.drop_table("decision_webhooks")
    op.drop_table("finding_decisions")
