"""The audit trail: every change to the center's records, with who made it.

One row per statement and table: when, who (``geogrid.actor``, set per transaction by
the API to the signed-in user and per session by the CLI to ``cli:<os user>``; a
change made straight in SQL is ``db:<role>``), the table, the operation, how many
rows and the keys of the first 100 of them (TRUNCATE: how many is not known).
Written by statement-level triggers with transition tables, so no code path can
change a record without leaving a row here,
and a bulk import of a million rows leaves one row, not a million. The trail is
append-only, like the incident history. ``coverage`` is not audited: it is derived
from the tracks and boundaries (which are) and recomputed from them.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

#: Audited tables and the column naming each row in the trail.
AUDITED = {
    "grids": "id",
    "people": "id",
    "assignments": "id",
    "users": "name",
    "api_tokens": "id",
    "incidents": "id",
    "incident_events": "id",
    "patrol_tracks": "id",
    "gps_fixes": "track_id",
}


def upgrade() -> None:
    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), server_default=sa.text("clock_timestamp()"), nullable=False),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("table_name", sa.Text(), nullable=False),
        sa.Column("operation", sa.Text(), nullable=False),
        sa.Column("row_count", sa.BigInteger(), nullable=True),
        sa.Column("keys", postgresql.ARRAY(sa.Text()), server_default=sa.text("'{}'::text[]"), nullable=False),
        sa.CheckConstraint(
            "operation IN ('INSERT', 'UPDATE', 'DELETE', 'TRUNCATE')", name=op.f("ck_audit_log_operation_known")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    op.create_index("ix_audit_log_at", "audit_log", ["at"], unique=False)
    op.create_index("ix_audit_log_actor", "audit_log", ["actor", "at"], unique=False)
    op.execute(
        """
        CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
            FOR EACH ROW EXECUTE FUNCTION refuse_change();
        CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
            FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();

        CREATE FUNCTION geogrid_audit() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE
            n bigint;
            sample text[];
        BEGIN
            -- The rows this statement changed are in its transition table (TG_ARGV[1]).
            EXECUTE format(
                'SELECT count(*), (SELECT array_agg(DISTINCT k) FROM (SELECT to_jsonb(t) ->> %L AS k FROM %I t LIMIT 100) s) FROM %I',
                TG_ARGV[0], TG_ARGV[1], TG_ARGV[1])
            INTO n, sample;
            IF n > 0 THEN
                INSERT INTO audit_log (actor, table_name, operation, row_count, keys)
                VALUES (coalesce(nullif(current_setting('geogrid.actor', true), ''), 'db:' || session_user),
                        TG_TABLE_NAME, TG_OP, n, coalesce(sample, '{}'));
            END IF;
            RETURN NULL;
        END $$;

        -- TRUNCATE has no transition table: how many rows went is not known (NULL).
        CREATE FUNCTION geogrid_audit_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO audit_log (actor, table_name, operation, row_count)
            VALUES (coalesce(nullif(current_setting('geogrid.actor', true), ''), 'db:' || session_user),
                    TG_TABLE_NAME, TG_OP, NULL);
            RETURN NULL;
        END $$;
        """
    )
    for table, key in AUDITED.items():
        op.execute(
            f"""
            CREATE TRIGGER {table}_audit_insert AFTER INSERT ON {table} REFERENCING NEW TABLE AS changed
                FOR EACH STATEMENT EXECUTE FUNCTION geogrid_audit('{key}', 'changed');
            CREATE TRIGGER {table}_audit_update AFTER UPDATE ON {table} REFERENCING NEW TABLE AS changed
                FOR EACH STATEMENT EXECUTE FUNCTION geogrid_audit('{key}', 'changed');
            CREATE TRIGGER {table}_audit_delete AFTER DELETE ON {table} REFERENCING OLD TABLE AS changed
                FOR EACH STATEMENT EXECUTE FUNCTION geogrid_audit('{key}', 'changed');
            CREATE TRIGGER {table}_audit_truncate AFTER TRUNCATE ON {table}
                FOR EACH STATEMENT EXECUTE FUNCTION geogrid_audit_truncate();
            """
        )


def downgrade() -> None:
    for table in AUDITED:
        for event in ("insert", "update", "delete", "truncate"):
            op.execute(f"DROP TRIGGER {table}_audit_{event} ON {table}")
    op.execute("DROP FUNCTION geogrid_audit(), geogrid_audit_truncate()")
    op.drop_table("audit_log")
