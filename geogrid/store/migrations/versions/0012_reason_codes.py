"""Coverage reasons are codes (``not_patrolled``, ``visits_counted:1:2``...), named on the pages in
the reader's language; stored coverage is derived, so it is dropped and recomputed on demand.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-30
"""

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("DELETE FROM coverage")


def downgrade() -> None:
    op.execute("DELETE FROM coverage")
