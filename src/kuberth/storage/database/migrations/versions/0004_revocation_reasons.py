"""why a user was revoked, and when the sign-up rules were last checked for them

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("revoked_reason", sa.String(length=32), nullable=True))
        batch_op.add_column(
            sa.Column("signup_checked_at", sa.DateTime(timezone=True), nullable=True)
        )
    # Every revoke before this revision was an operator's.
    op.execute("UPDATE users SET revoked_reason = 'operator' WHERE revoked_at IS NOT NULL")


def downgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("signup_checked_at")
        batch_op.drop_column("revoked_reason")
