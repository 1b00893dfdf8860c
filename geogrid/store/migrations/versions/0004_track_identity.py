"""A patrol track is identified by its person and start time, so uploading it twice stores it once.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_unique_constraint("uq_patrol_tracks_person_id_started_at", "patrol_tracks", ["person_id", "started_at"])


def downgrade() -> None:
    op.drop_constraint("uq_patrol_tracks_person_id_started_at", "patrol_tracks")
