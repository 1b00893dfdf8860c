"""The migrations build the schema the models describe, with its indexes and constraints."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from geogrid.store.migrate import current_revision, head_revision, include_object
from geogrid.store.models import Base

TABLES = {
    "grids", "people", "assignments", "incidents", "incident_events",
    "patrol_tracks", "gps_fixes", "users", "api_tokens",
}  # fmt: skip
CELL = "MULTIPOLYGON(((115 37, 115.01 37, 115.01 37.01, 115 37.01, 115 37)))"


def _insert_grid(conn, code="T1", wkt=CELL, **extra):
    values = {"code": code, "name": "t", "level": "township", "wkt": wkt, **extra}
    cols = ", ".join(k for k in values if k != "wkt")
    params = ", ".join(f":{k}" for k in values if k != "wkt")
    conn.execute(
        sa.text(f"INSERT INTO grids ({cols}, geom) VALUES ({params}, ST_GeomFromText(:wkt, 4326))"),
        values,
    )


def test_migrations_create_every_table_at_head(conn):
    tables = set(sa.inspect(conn).get_table_names())
    assert TABLES <= tables
    assert current_revision(conn) == head_revision()


def test_models_and_migrations_agree(conn):
    context = MigrationContext.configure(conn, opts={"include_object": include_object, "compare_type": True})
    diffs = compare_metadata(context, Base.metadata)
    assert diffs == []


def test_every_geometry_column_has_a_gist_index(conn):
    geometry_columns = conn.execute(
        sa.text("SELECT f_table_name, f_geometry_column FROM geometry_columns "
                "WHERE f_table_schema = 'public' AND f_table_name NOT LIKE 'gps_fixes_%'")
    ).all()  # fmt: skip
    assert {t for t, _ in geometry_columns} == {
        "grids",
        "incidents",
        "patrol_tracks",
        "gps_fixes",
        "coverage_gaps",
        "photos",
    }
    for table, column in geometry_columns:
        gist = conn.execute(
            sa.text(
                """
                SELECT count(*) FROM pg_index i
                  JOIN pg_class t ON t.oid = i.indrelid
                  JOIN pg_class ix ON ix.oid = i.indexrelid
                  JOIN pg_am am ON am.oid = ix.relam
                  JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = ANY(i.indkey)
                 WHERE t.relname = :t AND a.attname = :c AND am.amname = 'gist'
                """
            ),
            {"t": table, "c": column},
        ).scalar_one()
        assert gist == 1, f"{table}.{column} has no GiST index"


def test_geometry_columns_are_typed_wgs84(conn):
    rows = dict(
        conn.execute(
            sa.text("SELECT f_table_name || '.' || f_geometry_column, type || ':' || srid "
                    "FROM geometry_columns WHERE f_table_name NOT LIKE 'gps_fixes_%'")
        ).all()
    )  # fmt: skip
    assert rows == {
        "grids.geom": "MULTIPOLYGON:4326",
        "incidents.location": "POINT:4326",
        "patrol_tracks.geom": "MULTILINESTRING:4326",
        "gps_fixes.geom": "POINT:4326",
        "coverage_gaps.geom": "MULTIPOLYGON:4326",
        "photos.geom": "POINT:4326",
    }


def test_gps_fixes_is_partitioned_by_time_with_a_default_partition(conn):
    strategy = conn.execute(
        sa.text("SELECT partstrat FROM pg_partitioned_table WHERE partrelid = 'gps_fixes'::regclass")
    ).scalar_one()
    assert strategy == "r"
    partitions = (
        conn.execute(
            sa.text("SELECT inhrelid::regclass::text FROM pg_inherits WHERE inhparent = 'gps_fixes'::regclass")
        )
        .scalars()
        .all()
    )
    assert partitions == ["gps_fixes_default"]


def test_one_current_version_per_code(conn):
    _insert_grid(conn)
    with pytest.raises(sa.exc.IntegrityError, match="uq_grids_current_code|ex_grids_one_version_at_a_time"):
        with conn.begin_nested():
            _insert_grid(conn, version=2)


def test_versions_of_a_code_never_overlap_in_time(conn):
    _insert_grid(conn, valid_from="2025-01-01", valid_to="2025-06-01")
    _insert_grid(conn, version=2, valid_from="2025-06-01")  # adjoining is fine
    with pytest.raises(sa.exc.IntegrityError, match="ex_grids_one_version_at_a_time"):
        with conn.begin_nested():
            _insert_grid(conn, version=3, valid_from="2025-03-01", valid_to="2025-04-01")


@pytest.mark.parametrize(
    ("wkt", "constraint"),
    [
        ("MULTIPOLYGON(((0 0, 1 1, 1 0, 0 1, 0 0)))", "ck_grids_geom_valid"),  # bow-tie
        ("MULTIPOLYGON EMPTY", "ck_grids_geom_valid"),
    ],
)
def test_invalid_or_empty_boundaries_are_refused(conn, wkt, constraint):
    with pytest.raises(sa.exc.IntegrityError, match=constraint):
        _insert_grid(conn, wkt=wkt)


def test_grid_code_format_and_geometry_type_are_enforced(conn):
    with pytest.raises(sa.exc.IntegrityError, match="ck_grids_code_format"):
        with conn.begin_nested():
            _insert_grid(conn, code="bad code; DROP TABLE grids")
    with pytest.raises(sa.exc.DataError):
        with conn.begin_nested():
            _insert_grid(conn, code="P1", wkt="POINT(115 37)")


def _incident(conn, **extra):
    values = {"category": "garbage", "source": "patrol", "lon": 115.0, "lat": 37.0, **extra}
    return conn.execute(
        sa.text(
            "INSERT INTO incidents (category, source, reported_at, location) "
            "VALUES (:category, :source, now(), ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)) "
            "RETURNING id"
        ),
        values,
    ).scalar_one()


def test_incident_events_are_append_only(conn):
    incident = _incident(conn)
    conn.execute(
        sa.text("INSERT INTO incident_events (incident_id, actor, to_status) VALUES (:i, 'op', 'reported')"),
        {"i": incident},
    )
    for statement in ["UPDATE incident_events SET note = 'changed'", "DELETE FROM incident_events",
                      "TRUNCATE incident_events CASCADE"]:  # fmt: skip
        with pytest.raises(sa.exc.DBAPIError, match="append-only"):
            with conn.begin_nested():
                conn.execute(sa.text(statement))


def test_incident_rules(conn):
    with pytest.raises(sa.exc.IntegrityError, match="ck_incidents_source_known"):
        with conn.begin_nested():
            _incident(conn, source="rumour")
    with pytest.raises(sa.exc.IntegrityError, match="ck_incidents_location_in_range"):
        with conn.begin_nested():
            _incident(conn, lon=200.0)
    incident = _incident(conn)
    # A cell assignment names its grid version; "unassigned" has none.
    with pytest.raises(sa.exc.IntegrityError, match="assignment_matches_grid"):
        with conn.begin_nested():
            conn.execute(sa.text("UPDATE incidents SET assignment = 'inside' WHERE id = :i"), {"i": incident})


def test_gps_fix_stored_once_per_person_and_time(conn):
    person = conn.execute(sa.text("INSERT INTO people (name) VALUES ('张三') RETURNING id")).scalar_one()
    fix = sa.text(
        "INSERT INTO gps_fixes (person_id, fixed_at, geom) "
        "VALUES (:p, '2026-11-01 08:00+08', ST_SetSRID(ST_MakePoint(115, 37), 4326))"
    )
    conn.execute(fix, {"p": person})
    with pytest.raises(sa.exc.IntegrityError, match="gps_fixes_default_pkey|pk_gps_fixes"):
        with conn.begin_nested():
            conn.execute(fix, {"p": person})


def test_workers_must_be_people_and_roles_are_known(conn):
    with pytest.raises(sa.exc.IntegrityError, match="ck_users_worker_is_person"):
        with conn.begin_nested():
            conn.execute(sa.text("INSERT INTO users (name, role) VALUES ('w', 'worker')"))
    with pytest.raises(sa.exc.IntegrityError, match="ck_users_role_known"):
        with conn.begin_nested():
            conn.execute(sa.text("INSERT INTO users (name, role) VALUES ('x', 'superuser')"))
