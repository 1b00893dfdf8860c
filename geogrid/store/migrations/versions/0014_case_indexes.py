"""Indexes for the command center's board and indicators: the rare events that move a case to another
cell (looked up for every case of a period), and the person a case is dispatched to.

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_incident_events_moves", "incident_events", ["incident_id", "at"],
                    postgresql_where=sa.text("details ? 'from_grid'"))  # fmt: skip
    op.create_index("ix_incidents_handler_person_id", "incidents", ["handler_person_id"],
                    postgresql_where=sa.text("handler_person_id IS NOT NULL"))  # fmt: skip


def downgrade() -> None:
    op.drop_index("ix_incidents_handler_person_id", table_name="incidents")
    op.drop_index("ix_incident_events_moves", table_name="incident_events")
