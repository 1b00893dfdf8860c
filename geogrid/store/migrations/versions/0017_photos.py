"""Photos: taken on site by grid workers and attached to a case (an incident) or to a 补签 request, with the
position and time their EXIF carries, and a small copy for lists; an index of who registered each case. And ``patrol_tracks.updated_at``: when a
track last got fixes (a phone sending its track as it goes extends one track), which is what makes a day's
coverage stale.

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("patrol_tracks", sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"),
                                             nullable=False))  # fmt: skip
    op.execute("UPDATE patrol_tracks SET updated_at = created_at")
    op.create_table(
        "photos",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("incident_id", sa.BigInteger(), nullable=True),
        sa.Column("repair_id", sa.BigInteger(), nullable=True),
        sa.Column("content_type", sa.Text(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.Text(), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("thumb", sa.LargeBinary(), nullable=False),
        sa.Column("taken_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("geom", Geometry("POINT", srid=4326, spatial_index=False), nullable=True),
        sa.Column("note", sa.Text(), server_default="", nullable=False),
        sa.Column("uploaded_by", sa.Text(), nullable=False),
        sa.Column("uploaded_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("(incident_id IS NULL) <> (repair_id IS NULL)", name=op.f("ck_photos_one_owner")),
        sa.CheckConstraint(
            "content_type IN ('image/jpeg', 'image/png', 'image/webp')", name=op.f("ck_photos_type_known")
        ),  # fmt: skip
        sa.ForeignKeyConstraint(
            ["incident_id"], ["incidents.id"], name=op.f("fk_photos_incident_id_incidents"), ondelete="CASCADE"
        ),  # fmt: skip
        sa.ForeignKeyConstraint(
            ["repair_id"], ["patrol_repairs.id"], name=op.f("fk_photos_repair_id_patrol_repairs"), ondelete="CASCADE"
        ),  # fmt: skip
        sa.PrimaryKeyConstraint("id", name=op.f("pk_photos")),
    )
    op.create_index("idx_photos_geom", "photos", ["geom"], postgresql_using="gist")
    op.create_index(
        "ix_photos_incident_id", "photos", ["incident_id"], postgresql_where=sa.text("incident_id IS NOT NULL")
    )
    op.create_index("ix_photos_repair_id", "photos", ["repair_id"], postgresql_where=sa.text("repair_id IS NOT NULL"))
    # Who registered a case: a grid worker's page lists the cases they reported.
    op.create_index(
        "ix_incident_events_registered_by",
        "incident_events",
        ["actor", "incident_id"],
        postgresql_where=sa.text("from_status IS NULL"),
    )
    # Audited as the other tables of record (migration 0007).
    op.execute(
        """
        CREATE TRIGGER photos_audit_insert AFTER INSERT ON photos REFERENCING NEW TABLE AS changed
            FOR EACH STATEMENT EXECUTE FUNCTION geogrid_audit('id', 'changed');
        CREATE TRIGGER photos_audit_update AFTER UPDATE ON photos REFERENCING NEW TABLE AS changed
            FOR EACH STATEMENT EXECUTE FUNCTION geogrid_audit('id', 'changed');
        CREATE TRIGGER photos_audit_delete AFTER DELETE ON photos REFERENCING OLD TABLE AS changed
            FOR EACH STATEMENT EXECUTE FUNCTION geogrid_audit('id', 'changed');
        CREATE TRIGGER photos_audit_truncate AFTER TRUNCATE ON photos
            FOR EACH STATEMENT EXECUTE FUNCTION geogrid_audit_truncate();
        """
    )


def downgrade() -> None:
    for event in ("insert", "update", "delete", "truncate"):
        op.execute(f"DROP TRIGGER photos_audit_{event} ON photos")
    op.drop_index("ix_incident_events_registered_by", table_name="incident_events")
    op.drop_index("ix_photos_repair_id", table_name="photos")
    op.drop_index("idx_photos_geom", table_name="photos", postgresql_using="gist")
    op.drop_index("ix_photos_incident_id", table_name="photos")
    op.drop_table("photos")
    op.drop_column("patrol_tracks", "updated_at")
