"""Patrol coverage per day, cell and person: what the supervisor's map and tables read.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "coverage",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("grid_code", sa.Text(), nullable=False),
        sa.Column("person_id", sa.BigInteger(), nullable=False),
        sa.Column("grid_id", sa.BigInteger(), nullable=False),
        sa.Column("area_code", sa.Text(), nullable=True),
        sa.Column("cell_m2", sa.Float(), nullable=False),
        sa.Column("covered_m2", sa.Float(), nullable=False),
        sa.Column("fraction", sa.Float(), nullable=False),
        sa.Column("visit_count", sa.Integer(), nullable=False),
        sa.Column("rule_visits", sa.Integer(), nullable=False),
        sa.Column(
            "visits", postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'[]'::jsonb"), nullable=False
        ),
        sa.Column("assigned", sa.Boolean(), nullable=False),
        sa.Column("compliant", sa.Boolean(), nullable=False),
        sa.Column("reasons", postgresql.ARRAY(sa.Text()), server_default=sa.text("'{}'::text[]"), nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("fraction >= 0 AND fraction <= 1.000001", name=op.f("ck_coverage_fraction")),
        sa.CheckConstraint("visit_count >= 0 AND rule_visits >= 0", name=op.f("ck_coverage_visits")),
        sa.ForeignKeyConstraint(["person_id"], ["people.id"], name=op.f("fk_coverage_person_id_people")),
        sa.ForeignKeyConstraint(["grid_id"], ["grids.id"], name=op.f("fk_coverage_grid_id_grids")),
        sa.PrimaryKeyConstraint("day", "grid_code", "person_id", name=op.f("pk_coverage")),
    )
    op.create_index("ix_coverage_person_id", "coverage", ["person_id", "day"])


def downgrade() -> None:
    op.drop_index("ix_coverage_person_id", table_name="coverage")
    op.drop_table("coverage")
