"""The standard case flow (CJ/T 315, GB/T 30428): 立案 (accepted) or 不予立案 (rejected), 返工
(rework after a failed check), 挂账 (pending, with a review date) and 缓办 (postponed); a case
dispatched to a person; existing incidents and events keep their states, which all stay valid.

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

OLD = ("reported", "dispatched", "in_progress", "resolved", "closed", "escalated", "reopened", "handled_on_spot")
NEW = (*OLD, "accepted", "rejected", "rework", "pending", "postponed")


def _known(column: str, states: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(s) for s in states)})"


def _constraints(states: tuple[str, ...]) -> None:
    op.drop_constraint(op.f("ck_incidents_status_known"), "incidents", type_="check")
    op.create_check_constraint(op.f("ck_incidents_status_known"), "incidents", _known("status", states))
    op.drop_constraint(op.f("ck_incident_events_to_status_known"), "incident_events", type_="check")
    op.create_check_constraint(
        op.f("ck_incident_events_to_status_known"), "incident_events", _known("to_status", states)
    )
    op.drop_constraint(op.f("ck_incident_events_from_status_known"), "incident_events", type_="check")
    op.create_check_constraint(op.f("ck_incident_events_from_status_known"), "incident_events",
                               f"from_status IS NULL OR {_known('from_status', states)}")  # fmt: skip


def upgrade() -> None:
    _constraints(NEW)
    op.add_column("incidents", sa.Column("handler_person_id", sa.BigInteger(), nullable=True))
    op.create_foreign_key(
        op.f("fk_incidents_handler_person_id_people"), "incidents", "people", ["handler_person_id"], ["id"]
    )
    op.add_column("incidents", sa.Column("review_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_column("incidents", "review_at")
    op.drop_constraint(op.f("fk_incidents_handler_person_id_people"), "incidents", type_="foreignkey")
    op.drop_column("incidents", "handler_person_id")
    _constraints(OLD)
