"""Initial schema: grids, people and assignments, incidents and their events, patrols, users.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


APPEND_ONLY = """
CREATE FUNCTION refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'restrict_violation';
END $$;
CREATE TRIGGER incident_events_append_only BEFORE UPDATE OR DELETE ON incident_events
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER incident_events_no_truncate BEFORE TRUNCATE ON incident_events
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();
"""


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    # btree_gist lets one exclusion constraint mix text equality with range overlap.
    op.execute("CREATE EXTENSION IF NOT EXISTS btree_gist")
    op.create_geospatial_table(
        "grids",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("code", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("level", sa.Text(), nullable=False),
        sa.Column("parent_code", sa.Text(), nullable=True),
        sa.Column(
            "geom",
            Geometry(
                geometry_type="MULTIPOLYGON",
                srid=4326,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
                nullable=False,
            ),
            nullable=False,
        ),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.Column(
            "valid_from",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("valid_to", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "attributes",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        postgresql.ExcludeConstraint(
            (sa.column("code"), "="),
            (sa.text("tstzrange(valid_from, valid_to)"), "&&"),
            using="gist",
            name="ex_grids_one_version_at_a_time",
        ),
        sa.CheckConstraint("code ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$'", name=op.f("ck_grids_code_format")),
        sa.CheckConstraint("jsonb_typeof(attributes) = 'object'", name=op.f("ck_grids_attributes_object")),
        sa.CheckConstraint("ST_IsValid(geom) AND NOT ST_IsEmpty(geom)", name=op.f("ck_grids_geom_valid")),
        sa.CheckConstraint("length(btrim(level)) > 0", name=op.f("ck_grids_level_not_blank")),
        sa.CheckConstraint("length(btrim(name)) > 0", name=op.f("ck_grids_name_not_blank")),
        sa.CheckConstraint("parent_code IS NULL OR parent_code <> code", name=op.f("ck_grids_not_own_parent")),
        sa.CheckConstraint("valid_to IS NULL OR valid_to >= valid_from", name=op.f("ck_grids_valid_period")),
        sa.CheckConstraint("version >= 1", name=op.f("ck_grids_version_positive")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_grids")),
        sa.UniqueConstraint("code", "version", name=op.f("uq_grids_code_version")),
    )
    op.create_geospatial_index(
        "idx_grids_geom",
        "grids",
        ["geom"],
        unique=False,
        postgresql_using="gist",
        postgresql_ops={},
    )
    op.create_index(
        "ix_grids_current_parent",
        "grids",
        ["parent_code"],
        unique=False,
        postgresql_where=sa.text("valid_to IS NULL"),
    )
    op.create_index(
        "uq_grids_current_code",
        "grids",
        ["code"],
        unique=True,
        postgresql_where=sa.text("valid_to IS NULL"),
    )
    op.create_table(
        "people",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("phone", sa.Text(), nullable=True),
        sa.Column("external_id", sa.Text(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("length(btrim(name)) > 0", name=op.f("ck_people_name_not_blank")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_people")),
        sa.UniqueConstraint("external_id", name=op.f("uq_people_external_id")),
    )
    op.create_table(
        "assignments",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("person_id", sa.BigInteger(), nullable=False),
        sa.Column("grid_code", sa.Text(), nullable=False),
        sa.Column("duty", sa.Text(), nullable=False),
        sa.Column("department", sa.Text(), nullable=True),
        sa.Column(
            "valid_from",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("valid_to", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "duty <> 'department_handler' OR department IS NOT NULL",
            name=op.f("ck_assignments_department_named"),
        ),
        sa.CheckConstraint(
            "duty IN ('grid_chief', 'grid_manager', 'grid_helper', 'adopting_cadre', 'department_handler')",
            name=op.f("ck_assignments_duty_known"),
        ),
        sa.CheckConstraint("valid_to IS NULL OR valid_to >= valid_from", name=op.f("ck_assignments_valid_period")),
        sa.ForeignKeyConstraint(
            ["person_id"],
            ["people.id"],
            name=op.f("fk_assignments_person_id_people"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_assignments")),
    )
    op.create_index("ix_assignments_grid_code", "assignments", ["grid_code"], unique=False)
    op.create_index(
        "uq_assignments_current",
        "assignments",
        ["person_id", "grid_code", "duty"],
        unique=True,
        postgresql_where=sa.text("valid_to IS NULL"),
    )
    op.create_geospatial_table(
        "incidents",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("external_id", sa.Text(), nullable=True),
        sa.Column("area_code", sa.Text(), nullable=True),
        sa.Column(
            "location",
            Geometry(
                geometry_type="POINT",
                srid=4326,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
                nullable=False,
            ),
            nullable=False,
        ),
        sa.Column("gps_accuracy_m", sa.Float(), nullable=True),
        sa.Column("category", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), server_default="", nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("reporter", sa.Text(), nullable=True),
        sa.Column("reported_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("grid_id", sa.BigInteger(), nullable=True),
        sa.Column("assignment", sa.Text(), server_default="unassigned", nullable=False),
        sa.Column("snap_distance_m", sa.Float(), nullable=True),
        sa.Column("status", sa.Text(), server_default="reported", nullable=False),
        sa.Column("escalation_level", sa.Text(), nullable=True),
        sa.Column("department", sa.Text(), nullable=True),
        sa.Column("deadline", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "(assignment = 'snapped') = (snap_distance_m IS NOT NULL)",
            name=op.f("ck_incidents_snap_distance"),
        ),
        sa.CheckConstraint(
            "(assignment = 'unassigned') = (grid_id IS NULL)",
            name=op.f("ck_incidents_assignment_matches_grid"),
        ),
        sa.CheckConstraint(
            "assignment IN ('inside', 'snapped', 'unassigned')",
            name=op.f("ck_incidents_assignment_known"),
        ),
        sa.CheckConstraint(
            "source IN ('patrol', 'home_visit', 'reception', 'phone', 'hotline', 'app')",
            name=op.f("ck_incidents_source_known"),
        ),
        sa.CheckConstraint(
            "status IN ('reported', 'dispatched', 'in_progress', 'resolved', 'closed', 'escalated', 'reopened', 'handled_on_spot')",
            name=op.f("ck_incidents_status_known"),
        ),
        sa.CheckConstraint(
            "ST_X(location) BETWEEN -180 AND 180 AND ST_Y(location) BETWEEN -90 AND 90",
            name=op.f("ck_incidents_location_in_range"),
        ),
        sa.CheckConstraint("gps_accuracy_m IS NULL OR gps_accuracy_m >= 0", name=op.f("ck_incidents_accuracy")),
        sa.ForeignKeyConstraint(["grid_id"], ["grids.id"], name=op.f("fk_incidents_grid_id_grids")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_incidents")),
        sa.UniqueConstraint("external_id", name=op.f("uq_incidents_external_id")),
    )
    op.create_geospatial_index(
        "idx_incidents_location",
        "incidents",
        ["location"],
        unique=False,
        postgresql_using="gist",
        postgresql_ops={},
    )
    op.create_index("ix_incidents_area_code", "incidents", ["area_code"], unique=False)
    op.create_index("ix_incidents_grid_id", "incidents", ["grid_id"], unique=False)
    op.create_index("ix_incidents_reported_at", "incidents", ["reported_at"], unique=False)
    op.create_index("ix_incidents_status", "incidents", ["status"], unique=False)
    op.create_geospatial_table(
        "patrol_tracks",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("person_id", sa.BigInteger(), nullable=False),
        sa.Column("area_code", sa.Text(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("fix_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column("source", sa.Text(), nullable=True),
        sa.Column(
            "geom",
            Geometry(
                geometry_type="MULTILINESTRING",
                srid=4326,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
            ),
            nullable=True,
        ),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("ended_at >= started_at", name=op.f("ck_patrol_tracks_period")),
        sa.CheckConstraint("fix_count >= 0", name=op.f("ck_patrol_tracks_fix_count")),
        sa.ForeignKeyConstraint(["person_id"], ["people.id"], name=op.f("fk_patrol_tracks_person_id_people")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_patrol_tracks")),
    )
    op.create_geospatial_index(
        "idx_patrol_tracks_geom",
        "patrol_tracks",
        ["geom"],
        unique=False,
        postgresql_using="gist",
        postgresql_ops={},
    )
    op.create_index("ix_patrol_tracks_person_id", "patrol_tracks", ["person_id", "started_at"], unique=False)
    op.create_table(
        "users",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("role", sa.Text(), nullable=False),
        sa.Column("person_id", sa.BigInteger(), nullable=True),
        sa.Column("password_hash", sa.Text(), nullable=True),
        sa.Column("active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("name ~ '^[A-Za-z0-9_.@-]{1,64}$'", name=op.f("ck_users_name_format")),
        sa.CheckConstraint("role <> 'worker' OR person_id IS NOT NULL", name=op.f("ck_users_worker_is_person")),
        sa.CheckConstraint(
            "role IN ('admin', 'planner', 'supervisor', 'operator', 'worker')",
            name=op.f("ck_users_role_known"),
        ),
        sa.ForeignKeyConstraint(["person_id"], ["people.id"], name=op.f("fk_users_person_id_people")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("name", name=op.f("uq_users_name")),
    )
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("token_sha256", sa.Text(), nullable=False),
        sa.Column("label", sa.Text(), server_default="", nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("token_sha256 ~ '^[0-9a-f]{64}$'", name=op.f("ck_api_tokens_sha256_hex")),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_api_tokens_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_tokens")),
        sa.UniqueConstraint("token_sha256", name=op.f("uq_api_tokens_token_sha256")),
    )
    op.create_index("ix_api_tokens_user_id", "api_tokens", ["user_id"], unique=False)
    op.create_geospatial_table(
        "gps_fixes",
        sa.Column("person_id", sa.BigInteger(), nullable=False),
        sa.Column("fixed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "geom",
            Geometry(
                geometry_type="POINT",
                srid=4326,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
                nullable=False,
            ),
            nullable=False,
        ),
        sa.Column("accuracy_m", sa.Float(), nullable=True),
        sa.Column("track_id", sa.BigInteger(), nullable=True),
        sa.Column("area_code", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "ST_X(geom) BETWEEN -180 AND 180 AND ST_Y(geom) BETWEEN -90 AND 90",
            name=op.f("ck_gps_fixes_geom_in_range"),
        ),
        sa.CheckConstraint("accuracy_m IS NULL OR accuracy_m >= 0", name=op.f("ck_gps_fixes_accuracy")),
        sa.ForeignKeyConstraint(["person_id"], ["people.id"], name=op.f("fk_gps_fixes_person_id_people")),
        sa.ForeignKeyConstraint(["track_id"], ["patrol_tracks.id"], name=op.f("fk_gps_fixes_track_id_patrol_tracks")),
        sa.PrimaryKeyConstraint("person_id", "fixed_at", name=op.f("pk_gps_fixes")),
        postgresql_partition_by="RANGE (fixed_at)",
    )
    op.create_geospatial_index(
        "idx_gps_fixes_geom",
        "gps_fixes",
        ["geom"],
        unique=False,
        postgresql_using="gist",
        postgresql_ops={},
    )
    op.create_index("ix_gps_fixes_track_id", "gps_fixes", ["track_id"], unique=False)
    # Day partitions are added by the patrol import; the default one catches the rest.
    op.execute("CREATE TABLE gps_fixes_default PARTITION OF gps_fixes DEFAULT")
    op.create_table(
        "incident_events",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("incident_id", sa.BigInteger(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("from_status", sa.Text(), nullable=True),
        sa.Column("to_status", sa.Text(), nullable=False),
        sa.Column("note", sa.Text(), server_default="", nullable=False),
        sa.Column(
            "details",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "from_status IS NULL OR from_status IN ('reported', 'dispatched', 'in_progress', 'resolved', 'closed', 'escalated', 'reopened', 'handled_on_spot')",
            name=op.f("ck_incident_events_from_status_known"),
        ),
        sa.CheckConstraint(
            "to_status IN ('reported', 'dispatched', 'in_progress', 'resolved', 'closed', 'escalated', 'reopened', 'handled_on_spot')",
            name=op.f("ck_incident_events_to_status_known"),
        ),
        sa.ForeignKeyConstraint(
            ["incident_id"], ["incidents.id"], name=op.f("fk_incident_events_incident_id_incidents")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_incident_events")),
    )
    op.create_index("ix_incident_events_incident_id", "incident_events", ["incident_id", "at"], unique=False)
    op.execute(APPEND_ONLY)


def downgrade() -> None:
    op.execute("DROP TRIGGER incident_events_no_truncate ON incident_events")
    op.execute("DROP TRIGGER incident_events_append_only ON incident_events")
    op.execute("DROP FUNCTION refuse_change()")
    op.drop_index("ix_incident_events_incident_id", table_name="incident_events")
    op.drop_table("incident_events")
    op.drop_index("ix_gps_fixes_track_id", table_name="gps_fixes")
    op.drop_geospatial_index("idx_gps_fixes_geom", table_name="gps_fixes", postgresql_using="gist", column_name="geom")
    op.drop_geospatial_table("gps_fixes")
    op.drop_index("ix_api_tokens_user_id", table_name="api_tokens")
    op.drop_table("api_tokens")
    op.drop_table("users")
    op.drop_index("ix_patrol_tracks_person_id", table_name="patrol_tracks")
    op.drop_geospatial_index(
        "idx_patrol_tracks_geom",
        table_name="patrol_tracks",
        postgresql_using="gist",
        column_name="geom",
    )
    op.drop_geospatial_table("patrol_tracks")
    op.drop_index("ix_incidents_status", table_name="incidents")
    op.drop_index("ix_incidents_reported_at", table_name="incidents")
    op.drop_index("ix_incidents_grid_id", table_name="incidents")
    op.drop_index("ix_incidents_area_code", table_name="incidents")
    op.drop_geospatial_index(
        "idx_incidents_location",
        table_name="incidents",
        postgresql_using="gist",
        column_name="location",
    )
    op.drop_geospatial_table("incidents")
    op.drop_index(
        "uq_assignments_current",
        table_name="assignments",
        postgresql_where=sa.text("valid_to IS NULL"),
    )
    op.drop_index("ix_assignments_grid_code", table_name="assignments")
    op.drop_table("assignments")
    op.drop_table("people")
    op.drop_index("uq_grids_current_code", table_name="grids", postgresql_where=sa.text("valid_to IS NULL"))
    op.drop_index("ix_grids_current_parent", table_name="grids", postgresql_where=sa.text("valid_to IS NULL"))
    op.drop_geospatial_index("idx_grids_geom", table_name="grids", postgresql_using="gist", column_name="geom")
    op.drop_geospatial_table("grids")
