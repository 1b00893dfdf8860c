"""A user's language for the pages and messages (Simplified Chinese or English).

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("users", sa.Column("language", sa.Text(), nullable=True))
    op.create_check_constraint(
        op.f("ck_users_language_known"), "users", "language IS NULL OR language IN ('zh_CN', 'en')"
    )


def downgrade() -> None:
    op.drop_constraint(op.f("ck_users_language_known"), "users", type_="check")
    op.drop_column("users", "language")
