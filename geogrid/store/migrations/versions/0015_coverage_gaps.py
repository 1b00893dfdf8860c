"""The uncovered parts of cells, stored with the coverage of their day (computed once, read by the pages).

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "coverage_gaps",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("grid_code", sa.Text(), nullable=False),
        sa.Column("grid_id", sa.BigInteger(), nullable=False),
        sa.Column("cell_m2", sa.Float(), nullable=False),
        sa.Column("uncovered_m2", sa.Float(), nullable=False),
        sa.Column("geom", Geometry("MULTIPOLYGON", srid=4326, spatial_index=False), nullable=True),
        sa.Column("computed_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("uncovered_m2 >= 0", name=op.f("ck_coverage_gaps_uncovered")),
        sa.ForeignKeyConstraint(["grid_id"], ["grids.id"], name=op.f("fk_coverage_gaps_grid_id_grids")),
        sa.PrimaryKeyConstraint("day", "grid_code", name=op.f("pk_coverage_gaps")),
    )
    op.create_index("idx_coverage_gaps_geom", "coverage_gaps", ["geom"], postgresql_using="gist")
    # Days computed before this migration get their gaps when they are next brought up to date.
    op.execute("UPDATE coverage SET computed_at = '-infinity'")


def downgrade() -> None:
    op.drop_index("idx_coverage_gaps_geom", table_name="coverage_gaps", postgresql_using="gist")
    op.drop_table("coverage_gaps")
