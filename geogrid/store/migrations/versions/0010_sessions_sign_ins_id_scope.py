"""Server-side sessions, the sign-in record (and its throttle), external ids scoped by their system.

``sessions``: a page session lives here, not only in a signed cookie, so signing out,
a password change or disabling the user ends it (a copied cookie stops working), with
an absolute lifetime and an idle timeout. Only the token's SHA-256 is stored. Not
audited: it changes on every minute of use; what matters is in ``sign_in_events``.

``sign_in_events``: every sign-in, failed attempt, lockout and sign-out, with the name
tried and the address; the login throttle counts failures here; audited.

``incidents.id_scope``: an external id means something within the system it came from
(a hotline, an app, a worker's terminal): unique per (scope, id) instead of everywhere.
Existing ids are scoped by their incident's source, as new ones are by default.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

EVENTS = ("signed_in", "failed", "locked", "signed_out")


def upgrade() -> None:
    op.create_table(
        "sessions",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("token_sha256", sa.Text(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_reason", sa.Text(), nullable=True),
        sa.Column("address", sa.Text(), nullable=True),
        sa.CheckConstraint("token_sha256 ~ '^[0-9a-f]{64}$'", name=op.f("ck_sessions_sha256_hex")),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_sessions_user_id_users"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sessions")),
        sa.UniqueConstraint("token_sha256", name=op.f("uq_sessions_token_sha256")),
    )
    op.create_index("ix_sessions_user_id", "sessions", ["user_id"], unique=False,
                    postgresql_where=sa.text("ended_at IS NULL"))  # fmt: skip
    op.create_table(
        "sign_in_events",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("address", sa.Text(), nullable=True),
        sa.Column("event", sa.Text(), nullable=False),
        sa.CheckConstraint(
            f"event IN ({', '.join(repr(e) for e in EVENTS)})", name=op.f("ck_sign_in_events_event_known")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sign_in_events")),
    )
    op.create_index("ix_sign_in_events_name", "sign_in_events", ["name", "at"], unique=False)
    op.create_index("ix_sign_in_events_address", "sign_in_events", ["address", "at"], unique=False)
    op.execute(
        """
        CREATE TRIGGER sign_in_events_audit_insert AFTER INSERT ON sign_in_events REFERENCING NEW TABLE AS changed
            FOR EACH STATEMENT EXECUTE FUNCTION geogrid_audit('id', 'changed');
        CREATE TRIGGER sign_in_events_audit_update AFTER UPDATE ON sign_in_events REFERENCING NEW TABLE AS changed
            FOR EACH STATEMENT EXECUTE FUNCTION geogrid_audit('id', 'changed');
        CREATE TRIGGER sign_in_events_audit_delete AFTER DELETE ON sign_in_events REFERENCING OLD TABLE AS changed
            FOR EACH STATEMENT EXECUTE FUNCTION geogrid_audit('id', 'changed');
        CREATE TRIGGER sign_in_events_audit_truncate AFTER TRUNCATE ON sign_in_events
            FOR EACH STATEMENT EXECUTE FUNCTION geogrid_audit_truncate();
        """
    )
    op.add_column("incidents", sa.Column("id_scope", sa.Text(), server_default="", nullable=False))
    op.execute("UPDATE incidents SET id_scope = source WHERE external_id IS NOT NULL")
    op.drop_constraint("uq_incidents_external_id", "incidents", type_="unique")
    op.create_unique_constraint(op.f("uq_incidents_id_scope_external_id"), "incidents", ["id_scope", "external_id"])


def downgrade() -> None:
    op.drop_constraint(op.f("uq_incidents_id_scope_external_id"), "incidents", type_="unique")
    op.create_unique_constraint("uq_incidents_external_id", "incidents", ["external_id"])
    op.drop_column("incidents", "id_scope")
    for event in ("insert", "update", "delete", "truncate"):
        op.execute(f"DROP TRIGGER sign_in_events_audit_{event} ON sign_in_events")
    op.drop_table("sign_in_events")
    op.drop_table("sessions")
