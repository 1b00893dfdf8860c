"""The schema in one readable file: GeoAlchemy2 tables with the constraints that keep data honest.

Geometry is stored in EPSG:4326 (what GPS gives); areas and distances are computed in
metres by the domain code. Migrations (``geogrid/store/migrations``) create this schema;
a test checks the two agree.
"""

from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa
from geoalchemy2 import Geometry
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, ExcludeConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

SRID = 4326

#: Duties a person can hold on a grid (定人、定责).
DUTIES = ("grid_chief", "grid_manager", "grid_helper", "adopting_cadre", "department_handler")
#: User roles, each with its own view of the system.
ROLES = ("admin", "planner", "supervisor", "operator", "worker")
#: Where an incident was found or reported.
SOURCES = ("patrol", "home_visit", "reception", "phone", "hotline", "app")
#: Incident workflow states.
INCIDENT_STATUSES = (
    "reported", "dispatched", "in_progress", "resolved", "closed",
    "escalated", "reopened", "handled_on_spot",
    "accepted", "rejected", "rework", "pending", "postponed",
)  # fmt: skip
#: How an incident's cell was found: inside a cell, snapped to the nearest, or none.
ASSIGNMENTS = ("inside", "snapped", "unassigned")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def _tstz(**kw) -> Mapped:
    return mapped_column(sa.DateTime(timezone=True), **kw)


class Base(DeclarativeBase):
    """Declarative base with predictable constraint and index names."""

    metadata = sa.MetaData(
        naming_convention={
            "ix": "ix_%(table_name)s_%(column_0_N_name)s",
            "uq": "uq_%(table_name)s_%(column_0_N_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )


class Grid(Base):
    """One version of a grid boundary; ``valid_to IS NULL`` marks the current one.

    ``code`` is stable across versions; the hierarchy links by ``parent_code`` to the
    parent's current version, so reshaping a parent does not orphan its children.
    """

    __tablename__ = "grids"

    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    code: Mapped[str] = mapped_column(sa.Text)
    name: Mapped[str] = mapped_column(sa.Text)
    level: Mapped[str] = mapped_column(sa.Text)
    parent_code: Mapped[str | None] = mapped_column(sa.Text)
    geom = mapped_column(Geometry("MULTIPOLYGON", srid=SRID, spatial_index=True), nullable=False)
    version: Mapped[int] = mapped_column(sa.Integer, server_default="1")
    valid_from: Mapped[datetime] = _tstz(server_default=sa.func.now())
    valid_to: Mapped[datetime | None] = _tstz()
    #: When the row was written (``valid_from`` may be earlier: a backdated import).
    recorded_at: Mapped[datetime] = _tstz(server_default=sa.func.now())
    attributes: Mapped[dict] = mapped_column(JSONB, server_default=sa.text("'{}'::jsonb"))

    __table_args__ = (
        sa.UniqueConstraint("code", "version"),
        sa.Index(
            "uq_grids_current_code", "code", unique=True,
            postgresql_where=sa.text("valid_to IS NULL"),
        ),
        sa.Index(
            "ix_grids_current_parent", "parent_code",
            postgresql_where=sa.text("valid_to IS NULL"),
        ),
        sa.CheckConstraint(r"code ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$'", name="code_format"),
        sa.CheckConstraint("length(btrim(name)) > 0", name="name_not_blank"),
        sa.CheckConstraint("length(btrim(level)) > 0", name="level_not_blank"),
        sa.CheckConstraint("parent_code IS NULL OR parent_code <> code", name="not_own_parent"),
        sa.CheckConstraint("version >= 1", name="version_positive"),
        sa.CheckConstraint("valid_to IS NULL OR valid_to >= valid_from", name="valid_period"),
        sa.CheckConstraint("ST_IsValid(geom) AND NOT ST_IsEmpty(geom)", name="geom_valid"),
        sa.CheckConstraint("jsonb_typeof(attributes) = 'object'", name="attributes_object"),
        # Two versions of one code never claim the same moment.
        ExcludeConstraint(
            (sa.column("code"), "="),
            (sa.func.tstzrange(sa.column("valid_from"), sa.column("valid_to")), "&&"),
            using="gist", name="ex_grids_one_version_at_a_time",
        ),
    )  # fmt: skip


class Person(Base):
    """Someone who works on the grid: manager, helper, cadre, department staff."""

    __tablename__ = "people"

    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    name: Mapped[str] = mapped_column(sa.Text)
    phone: Mapped[str | None] = mapped_column(sa.Text)
    #: Staff or terminal number, when the center has one.
    external_id: Mapped[str | None] = mapped_column(sa.Text, unique=True)
    created_at: Mapped[datetime] = _tstz(server_default=sa.func.now())

    __table_args__ = (sa.CheckConstraint("length(btrim(name)) > 0", name="name_not_blank"),)


class Assignment(Base):
    """A person's duty on a grid (by code, so it survives boundary versions)."""

    __tablename__ = "assignments"

    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    person_id: Mapped[int] = mapped_column(sa.BigInteger, sa.ForeignKey("people.id", ondelete="CASCADE"))
    grid_code: Mapped[str] = mapped_column(sa.Text)
    duty: Mapped[str] = mapped_column(sa.Text)
    department: Mapped[str | None] = mapped_column(sa.Text)
    valid_from: Mapped[datetime] = _tstz(server_default=sa.func.now())
    valid_to: Mapped[datetime | None] = _tstz()
    #: Where the duty came from when a boundary change carried it ("split of XWZ001002").
    note: Mapped[str | None] = mapped_column(sa.Text)
    #: When the row was written (``valid_from`` may be earlier: a backdated duty).
    recorded_at: Mapped[datetime] = _tstz(server_default=sa.func.now())

    __table_args__ = (
        sa.CheckConstraint(_in("duty", DUTIES), name="duty_known"),
        sa.CheckConstraint(
            "duty <> 'department_handler' OR department IS NOT NULL", name="department_named"
        ),
        sa.CheckConstraint("valid_to IS NULL OR valid_to >= valid_from", name="valid_period"),
        sa.Index(
            "uq_assignments_current", "person_id", "grid_code", "duty", unique=True,
            postgresql_where=sa.text("valid_to IS NULL"),
        ),
        sa.Index("ix_assignments_grid_code", "grid_code"),
    )  # fmt: skip


class Incident(Base):
    """A resident's request or a grid event, located by GPS and followed to closure."""

    __tablename__ = "incidents"

    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    #: Id in the system it came from (hotline, app); makes bulk imports idempotent.
    external_id: Mapped[str | None] = mapped_column(sa.Text)
    #: The system the external id belongs to (its source, a named system, or a worker's
    #: own terminal): an id is unique within its scope, not across every system.
    id_scope: Mapped[str] = mapped_column(sa.Text, server_default="")
    #: Code of the top-level area, the key a distributed setup shards by.
    area_code: Mapped[str | None] = mapped_column(sa.Text)
    location = mapped_column(Geometry("POINT", srid=SRID, spatial_index=True), nullable=False)
    gps_accuracy_m: Mapped[float | None] = mapped_column(sa.Float)
    category: Mapped[str] = mapped_column(sa.Text)
    description: Mapped[str] = mapped_column(sa.Text, server_default="")
    source: Mapped[str] = mapped_column(sa.Text)
    reporter: Mapped[str | None] = mapped_column(sa.Text)
    reported_at: Mapped[datetime] = _tstz()
    created_at: Mapped[datetime] = _tstz(server_default=sa.func.now())
    #: The grid *version* the incident was assigned to when it was reported.
    grid_id: Mapped[int | None] = mapped_column(sa.BigInteger, sa.ForeignKey("grids.id"))
    assignment: Mapped[str] = mapped_column(sa.Text, server_default="unassigned")
    snap_distance_m: Mapped[float | None] = mapped_column(sa.Float)
    status: Mapped[str] = mapped_column(sa.Text, server_default="reported")
    escalation_level: Mapped[str | None] = mapped_column(sa.Text)
    department: Mapped[str | None] = mapped_column(sa.Text)
    #: The person it is dispatched to (派遣 to a person; a department is ``department``).
    handler_person_id: Mapped[int | None] = mapped_column(sa.BigInteger, sa.ForeignKey("people.id"))
    deadline: Mapped[datetime | None] = _tstz()
    closed_at: Mapped[datetime | None] = _tstz()
    #: When a case on the pending list (挂账) is looked at again, or a postponed one (缓办) resumes.
    review_at: Mapped[datetime | None] = _tstz()

    __table_args__ = (
        sa.CheckConstraint(_in("status", INCIDENT_STATUSES), name="status_known"),
        sa.CheckConstraint(_in("source", SOURCES), name="source_known"),
        sa.CheckConstraint(_in("assignment", ASSIGNMENTS), name="assignment_known"),
        sa.CheckConstraint("(assignment = 'unassigned') = (grid_id IS NULL)", name="assignment_matches_grid"),
        sa.CheckConstraint("(assignment = 'snapped') = (snap_distance_m IS NOT NULL)", name="snap_distance"),
        sa.CheckConstraint("gps_accuracy_m IS NULL OR gps_accuracy_m >= 0", name="accuracy"),
        sa.CheckConstraint(
            "ST_X(location) BETWEEN -180 AND 180 AND ST_Y(location) BETWEEN -90 AND 90",
            name="location_in_range",
        ),
        sa.UniqueConstraint("id_scope", "external_id"),
        sa.Index("ix_incidents_status", "status"),
        sa.Index("ix_incidents_grid_id", "grid_id"),
        sa.Index("ix_incidents_reported_at", "reported_at"),
        sa.Index("ix_incidents_area_code", "area_code"),
        sa.Index(
            "ix_incidents_handler_person_id",
            "handler_person_id",
            postgresql_where=sa.text("handler_person_id IS NOT NULL"),
        ),
    )


class IncidentEvent(Base):
    """One step of an incident's workflow; append-only (a trigger refuses changes)."""

    __tablename__ = "incident_events"

    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    incident_id: Mapped[int] = mapped_column(sa.BigInteger, sa.ForeignKey("incidents.id"))
    at: Mapped[datetime] = _tstz(server_default=sa.func.now())
    actor: Mapped[str] = mapped_column(sa.Text)
    from_status: Mapped[str | None] = mapped_column(sa.Text)
    to_status: Mapped[str] = mapped_column(sa.Text)
    note: Mapped[str] = mapped_column(sa.Text, server_default="")
    #: Step-specific facts, e.g. a return visit's method and whether the resident was satisfied.
    details: Mapped[dict] = mapped_column(JSONB, server_default=sa.text("'{}'::jsonb"))

    __table_args__ = (
        sa.CheckConstraint(_in("to_status", INCIDENT_STATUSES), name="to_status_known"),
        sa.CheckConstraint(
            f"from_status IS NULL OR {_in('from_status', INCIDENT_STATUSES)}",
            name="from_status_known",
        ),
        sa.Index("ix_incident_events_incident_id", "incident_id", "at"),
        # Moves between cells are rare: the indicators look them up for every case of a period.
        sa.Index("ix_incident_events_moves", "incident_id", "at", postgresql_where=sa.text("details ? 'from_grid'")),
        # Who registered a case (a grid worker's page lists what they reported).
        sa.Index(
            "ix_incident_events_registered_by", "actor", "incident_id", postgresql_where=sa.text("from_status IS NULL")
        ),
    )


class PatrolTrack(Base):
    """One continuous patrol by one person, made of GPS fixes."""

    __tablename__ = "patrol_tracks"

    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    person_id: Mapped[int] = mapped_column(sa.BigInteger, sa.ForeignKey("people.id"))
    area_code: Mapped[str | None] = mapped_column(sa.Text)
    started_at: Mapped[datetime] = _tstz()
    ended_at: Mapped[datetime] = _tstz()
    fix_count: Mapped[int] = mapped_column(sa.Integer, server_default="0")
    #: Where the fixes came from (file name, device), for the supervisor's eyes.
    source: Mapped[str | None] = mapped_column(sa.Text)
    geom = mapped_column(Geometry("MULTILINESTRING", srid=SRID, spatial_index=True))
    created_at: Mapped[datetime] = _tstz(server_default=sa.func.now())
    #: When fixes were last added (an upload that extends the track): a day's coverage is stale after it.
    updated_at: Mapped[datetime] = _tstz(server_default=sa.func.now())

    __table_args__ = (
        sa.CheckConstraint("ended_at >= started_at", name="period"),
        sa.CheckConstraint("fix_count >= 0", name="fix_count"),
        sa.UniqueConstraint("person_id", "started_at"),
        sa.Index("ix_patrol_tracks_person_id", "person_id", "started_at"),
    )


class GpsFix(Base):
    """One GPS fix of a patrol terminal. Partitioned by time (a day per partition).

    The primary key (person, time) is what makes uploading the same fixes twice
    store them once.
    """

    __tablename__ = "gps_fixes"

    person_id: Mapped[int] = mapped_column(sa.BigInteger, sa.ForeignKey("people.id"), primary_key=True)
    fixed_at: Mapped[datetime] = _tstz(primary_key=True)
    geom = mapped_column(Geometry("POINT", srid=SRID, spatial_index=True), nullable=False)
    accuracy_m: Mapped[float | None] = mapped_column(sa.Float)
    track_id: Mapped[int | None] = mapped_column(sa.BigInteger, sa.ForeignKey("patrol_tracks.id"))
    area_code: Mapped[str | None] = mapped_column(sa.Text)

    __table_args__ = (
        sa.CheckConstraint("accuracy_m IS NULL OR accuracy_m >= 0", name="accuracy"),
        sa.CheckConstraint(
            "ST_X(geom) BETWEEN -180 AND 180 AND ST_Y(geom) BETWEEN -90 AND 90",
            name="geom_in_range",
        ),
        sa.Index("ix_gps_fixes_track_id", "track_id"),
        {"postgresql_partition_by": "RANGE (fixed_at)"},
    )


class Coverage(Base):
    """How one person patrolled one cell on one day, and whether that met the patrol rule."""

    __tablename__ = "coverage"

    day: Mapped[date] = mapped_column(sa.Date, primary_key=True)
    grid_code: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    person_id: Mapped[int] = mapped_column(sa.BigInteger, sa.ForeignKey("people.id"), primary_key=True)
    #: The cell version the coverage was computed against.
    grid_id: Mapped[int] = mapped_column(sa.BigInteger, sa.ForeignKey("grids.id"))
    area_code: Mapped[str | None] = mapped_column(sa.Text)
    cell_m2: Mapped[float] = mapped_column(sa.Float)
    covered_m2: Mapped[float] = mapped_column(sa.Float)
    fraction: Mapped[float] = mapped_column(sa.Float)
    visit_count: Mapped[int] = mapped_column(sa.Integer)
    #: Visits that count for the rule: far enough apart, each covering enough of the cell.
    rule_visits: Mapped[int] = mapped_column(sa.Integer)
    visits: Mapped[list] = mapped_column(JSONB, server_default=sa.text("'[]'::jsonb"))
    #: True when the cell is one of the person's assigned cells (else they passed through).
    assigned: Mapped[bool] = mapped_column(sa.Boolean)
    compliant: Mapped[bool] = mapped_column(sa.Boolean)
    reasons: Mapped[list[str]] = mapped_column(ARRAY(sa.Text), server_default=sa.text("'{}'::text[]"))
    #: Approved 补签 (repaired patrols) counted for the rule: never visits, never in the fraction.
    repairs: Mapped[int] = mapped_column(sa.Integer, server_default="0")
    computed_at: Mapped[datetime] = _tstz(server_default=sa.func.now())

    __table_args__ = (
        sa.CheckConstraint("fraction >= 0 AND fraction <= 1.000001", name="fraction"),
        sa.CheckConstraint("visit_count >= 0 AND rule_visits >= 0", name="visits"),
        sa.Index("ix_coverage_person_id", "person_id", "day"),
    )


REPAIR_STATES = ("pending", "approved", "refused")


class PatrolRepair(Base):
    """补签: a worker's request that a patrol of one of their cells on one day be counted, with a reason and the
    time they say they were there; their supervisor approves or refuses it with a note."""

    __tablename__ = "patrol_repairs"

    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    person_id: Mapped[int] = mapped_column(sa.BigInteger, sa.ForeignKey("people.id"))
    grid_code: Mapped[str] = mapped_column(sa.Text)
    day: Mapped[date] = mapped_column(sa.Date)
    claimed_at: Mapped[datetime] = _tstz()
    reason: Mapped[str] = mapped_column(sa.Text)
    status: Mapped[str] = mapped_column(sa.Text, server_default="pending")
    requested_by: Mapped[str] = mapped_column(sa.Text)
    requested_at: Mapped[datetime] = _tstz(server_default=sa.func.now())
    decided_by: Mapped[str | None] = mapped_column(sa.Text)
    decided_at: Mapped[datetime | None] = _tstz(nullable=True)
    note: Mapped[str] = mapped_column(sa.Text, server_default="")

    __table_args__ = (
        sa.CheckConstraint(_in("status", REPAIR_STATES), name="status_known"),
        sa.CheckConstraint("length(trim(reason)) > 0", name="reason"),
        sa.UniqueConstraint("person_id", "grid_code", "day"),
        sa.Index("ix_patrol_repairs_day", "day"),
    )


class CoverageGap(Base):
    """The part of one leaf cell nobody came within sight of on one day (empty when all of it was seen).

    Computed with the coverage, in the same transaction (geogrid.patrols.compute), so that
    the supervisor's pages and tiles only read it.
    """

    __tablename__ = "coverage_gaps"

    day: Mapped[date] = mapped_column(sa.Date, primary_key=True)
    grid_code: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    grid_id: Mapped[int] = mapped_column(sa.BigInteger, sa.ForeignKey("grids.id"))
    cell_m2: Mapped[float] = mapped_column(sa.Float)
    uncovered_m2: Mapped[float] = mapped_column(sa.Float)
    #: None when nothing of the cell is left uncovered (or only slivers under GEOGRID_SLIVER_M2).
    geom = mapped_column(Geometry("MULTIPOLYGON", srid=SRID, spatial_index=True), nullable=True)
    computed_at: Mapped[datetime] = _tstz(server_default=sa.func.now())

    __table_args__ = (sa.CheckConstraint("uncovered_m2 >= 0", name="uncovered"),)


PHOTO_TYPES = ("image/jpeg", "image/png", "image/webp")


class Photo(Base):
    """A photo taken on site, attached to a case or to a 补签 request (one of the two), with what its EXIF says.

    The file is kept as sent (``data``), with a small JPEG copy for lists (``thumb``); ``geom``
    and ``taken_at`` come from its EXIF when it has them (geogrid.photos).
    """

    __tablename__ = "photos"

    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    incident_id: Mapped[int | None] = mapped_column(sa.BigInteger, sa.ForeignKey("incidents.id", ondelete="CASCADE"))
    repair_id: Mapped[int | None] = mapped_column(sa.BigInteger,
                                                  sa.ForeignKey("patrol_repairs.id", ondelete="CASCADE"))  # fmt: skip
    content_type: Mapped[str] = mapped_column(sa.Text)
    size: Mapped[int] = mapped_column(sa.Integer)
    sha256: Mapped[str] = mapped_column(sa.Text)
    width: Mapped[int] = mapped_column(sa.Integer)
    height: Mapped[int] = mapped_column(sa.Integer)
    data: Mapped[bytes] = mapped_column(sa.LargeBinary)
    thumb: Mapped[bytes] = mapped_column(sa.LargeBinary)
    taken_at: Mapped[datetime | None] = _tstz(nullable=True)
    geom = mapped_column(Geometry("POINT", srid=SRID, spatial_index=True), nullable=True)
    note: Mapped[str] = mapped_column(sa.Text, server_default="")
    uploaded_by: Mapped[str] = mapped_column(sa.Text)
    uploaded_at: Mapped[datetime] = _tstz(server_default=sa.func.now())

    __table_args__ = (
        sa.CheckConstraint("(incident_id IS NULL) <> (repair_id IS NULL)", name="one_owner"),
        sa.CheckConstraint(_in("content_type", PHOTO_TYPES), name="type_known"),
        sa.Index("ix_photos_incident_id", "incident_id", postgresql_where=sa.text("incident_id IS NOT NULL")),
        sa.Index("ix_photos_repair_id", "repair_id", postgresql_where=sa.text("repair_id IS NOT NULL")),
    )


class AuditLog(Base):
    """One statement's changes to one table: when, by whom, how many rows, the first 100 keys.

    Written by triggers on every table of record (migration 0007); append-only.
    """

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(always=True), primary_key=True)
    at: Mapped[datetime] = _tstz(server_default=sa.func.clock_timestamp())
    #: The signed-in user (API), ``cli:<os user>`` (CLI) or ``db:<role>`` (straight SQL).
    actor: Mapped[str] = mapped_column(sa.Text)
    table_name: Mapped[str] = mapped_column(sa.Text)
    operation: Mapped[str] = mapped_column(sa.Text)
    #: NULL for a TRUNCATE (the count is not known).
    row_count: Mapped[int | None] = mapped_column(sa.BigInteger)
    keys: Mapped[list[str]] = mapped_column(ARRAY(sa.Text), server_default=sa.text("'{}'::text[]"))

    __table_args__ = (
        sa.CheckConstraint(_in("operation", ("INSERT", "UPDATE", "DELETE", "TRUNCATE")), name="operation_known"),
        sa.Index("ix_audit_log_at", "at"),
        sa.Index("ix_audit_log_actor", "actor", "at"),
    )


class User(Base):
    """Someone who logs in. Workers are tied to a person, whose assignments bound what they see."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    name: Mapped[str] = mapped_column(sa.Text, unique=True)
    role: Mapped[str] = mapped_column(sa.Text)
    person_id: Mapped[int | None] = mapped_column(sa.BigInteger, sa.ForeignKey("people.id"))
    password_hash: Mapped[str | None] = mapped_column(sa.Text)
    active: Mapped[bool] = mapped_column(sa.Boolean, server_default=sa.true())
    #: Pages and messages in this language (``zh_CN``, ``en``); NULL: the browser's, else the default.
    language: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = _tstz(server_default=sa.func.now())

    __table_args__ = (
        sa.CheckConstraint(_in("role", ROLES), name="role_known"),
        sa.CheckConstraint(r"name ~ '^[A-Za-z0-9_.@-]{1,64}$'", name="name_format"),
        sa.CheckConstraint("role <> 'worker' OR person_id IS NOT NULL", name="worker_is_person"),
        sa.CheckConstraint("language IS NULL OR language IN ('zh_CN', 'en')", name="language_known"),
    )


#: What happened at the sign-in form (and at sign-out).
SIGN_IN_EVENTS = ("signed_in", "failed", "locked", "signed_out")


class Session(Base):
    """A page session, kept server-side: signing out, a new password or disabling the user ends it."""

    __tablename__ = "sessions"

    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    #: Only the SHA-256 of the session token (the cookie carries the token).
    token_sha256: Mapped[str] = mapped_column(sa.Text, unique=True)
    user_id: Mapped[int] = mapped_column(sa.BigInteger, sa.ForeignKey("users.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = _tstz(server_default=sa.func.now())
    last_seen_at: Mapped[datetime] = _tstz(server_default=sa.func.now())
    ended_at: Mapped[datetime | None] = _tstz()
    ended_reason: Mapped[str | None] = mapped_column(sa.Text)
    address: Mapped[str | None] = mapped_column(sa.Text)

    __table_args__ = (
        sa.CheckConstraint("token_sha256 ~ '^[0-9a-f]{64}$'", name="sha256_hex"),
        sa.Index("ix_sessions_user_id", "user_id", postgresql_where=sa.text("ended_at IS NULL")),
    )


class SignInEvent(Base):
    """One sign-in, failed attempt, lockout or sign-out: the name tried and the address (audited)."""

    __tablename__ = "sign_in_events"

    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    at: Mapped[datetime] = _tstz(server_default=sa.func.now())
    name: Mapped[str] = mapped_column(sa.Text)
    address: Mapped[str | None] = mapped_column(sa.Text)
    event: Mapped[str] = mapped_column(sa.Text)

    __table_args__ = (
        sa.CheckConstraint(_in("event", SIGN_IN_EVENTS), name="event_known"),
        sa.Index("ix_sign_in_events_name", "name", "at"),
        sa.Index("ix_sign_in_events_address", "address", "at"),
    )


class ApiToken(Base):
    """A bearer token; only its SHA-256 is stored, the token itself is shown once."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.BigInteger, sa.ForeignKey("users.id", ondelete="CASCADE"))
    token_sha256: Mapped[str] = mapped_column(sa.Text, unique=True)
    label: Mapped[str] = mapped_column(sa.Text, server_default="")
    created_at: Mapped[datetime] = _tstz(server_default=sa.func.now())
    revoked_at: Mapped[datetime | None] = _tstz()

    __table_args__ = (
        sa.CheckConstraint("token_sha256 ~ '^[0-9a-f]{64}$'", name="sha256_hex"),
        sa.Index("ix_api_tokens_user_id", "user_id"),
    )
