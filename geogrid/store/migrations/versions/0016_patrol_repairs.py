"""补签: requests that a missed patrol be counted (a reason, the time the worker says they were there), decided
by their supervisor; approved ones are counted for the patrol rule (``coverage.repairs``), never as visits.

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "patrol_repairs",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("person_id", sa.BigInteger(), nullable=False),
        sa.Column("grid_code", sa.Text(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), server_default="pending", nullable=False),
        sa.Column("requested_by", sa.Text(), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("decided_by", sa.Text(), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("note", sa.Text(), server_default="", nullable=False),
        sa.CheckConstraint("status IN ('pending', 'approved', 'refused')", name=op.f("ck_patrol_repairs_status_known")),
        sa.CheckConstraint("length(trim(reason)) > 0", name=op.f("ck_patrol_repairs_reason")),
        sa.ForeignKeyConstraint(["person_id"], ["people.id"], name=op.f("fk_patrol_repairs_person_id_people")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_patrol_repairs")),
        sa.UniqueConstraint("person_id", "grid_code", "day", name=op.f("uq_patrol_repairs_person_id_grid_code_day")),
    )
    op.create_index("ix_patrol_repairs_day", "patrol_repairs", ["day"])
    op.add_column("coverage", sa.Column("repairs", sa.Integer(), server_default="0", nullable=False))
    # Every step audited, as the other tables of record (migration 0007).
    op.execute(
        """
        CREATE TRIGGER patrol_repairs_audit_insert AFTER INSERT ON patrol_repairs REFERENCING NEW TABLE AS changed
            FOR EACH STATEMENT EXECUTE FUNCTION geogrid_audit('id', 'changed');
        CREATE TRIGGER patrol_repairs_audit_update AFTER UPDATE ON patrol_repairs REFERENCING NEW TABLE AS changed
            FOR EACH STATEMENT EXECUTE FUNCTION geogrid_audit('id', 'changed');
        CREATE TRIGGER patrol_repairs_audit_delete AFTER DELETE ON patrol_repairs REFERENCING OLD TABLE AS changed
            FOR EACH STATEMENT EXECUTE FUNCTION geogrid_audit('id', 'changed');
        CREATE TRIGGER patrol_repairs_audit_truncate AFTER TRUNCATE ON patrol_repairs
            FOR EACH STATEMENT EXECUTE FUNCTION geogrid_audit_truncate();
        """
    )


def downgrade() -> None:
    for event in ("insert", "update", "delete", "truncate"):
        op.execute(f"DROP TRIGGER patrol_repairs_audit_{event} ON patrol_repairs")
    op.drop_column("coverage", "repairs")
    op.drop_index("ix_patrol_repairs_day", table_name="patrol_repairs")
    op.drop_table("patrol_repairs")
