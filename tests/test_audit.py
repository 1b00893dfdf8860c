"""The audit trail: every change to a record of the center is there, with who made it."""

from __future__ import annotations

import getpass
from pathlib import Path

import pytest
import sqlalchemy as sa

from geogrid.audit import AUDITED_TABLES
from tests.conftest import bearer
from tests.test_cli import run

GPX = Path(__file__).parent / "data" / "gpx" / "togeojson-strava.gpx"
IN_XWZ002002 = (115.275, 37.772)
#: Tables that are not records of the center: derived (coverage and its uncovered parts are
#: recomputed from the audited tracks and boundaries), PostGIS's and Alembic's own, the trail
#: itself, and the sessions (touched every minute of use; their starts and ends are in sign_in_events).
NOT_AUDITED = {"coverage", "coverage_gaps", "spatial_ref_sys", "alembic_version", "audit_log", "sessions"}


def entries(conn, **where) -> list[dict]:
    sql = "SELECT actor, table_name, operation, row_count, keys FROM audit_log"
    if where:
        sql += " WHERE " + " AND ".join(f"{k} = :{k}" for k in where)
    return [dict(r) for r in conn.execute(sa.text(sql + " ORDER BY id"), where).mappings()]


def test_every_table_of_record_is_audited_for_every_kind_of_change(conn):
    tables = set(
        conn.execute(
            sa.text(
                "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition"
            )
        ).scalars()
    )
    assert tables - NOT_AUDITED == set(AUDITED_TABLES)
    triggers = conn.execute(
        sa.text(
            "SELECT tgrelid::regclass::text, count(*) FROM pg_trigger "
            "WHERE tgname LIKE '%\\_audit\\_%' AND NOT tgisinternal GROUP BY 1"
        )
    ).all()
    assert dict(triggers) == {t: 4 for t in AUDITED_TABLES}


def test_api_changes_are_recorded_with_the_signed_in_user(client, conn, make_user, demo_grids):
    _, op = make_user("operator", name="op.wang")
    _, planner = make_user("planner", name="plan.li")
    _, admin = make_user("admin", name="admin.zhao")
    worker, worker_token = make_user("worker", name="worker.chen")
    before = conn.execute(sa.text("SELECT coalesce(max(id), 0) FROM audit_log")).scalar_one()

    created = client.post("/api/incidents", headers=bearer(op), json={
        "lon": IN_XWZ002002[0], "lat": IN_XWZ002002[1], "category": "water", "source": "hotline"})  # fmt: skip
    assert created.status_code == 201
    incident = created.json["id"]
    assert client.post(f"/api/incidents/{incident}/transition", json={"to": "dispatched"},
                       headers=bearer(op)).status_code == 200  # fmt: skip
    line = {"type": "LineString", "coordinates": [[115.257, 37.76], [115.258, 37.79]]}
    assert client.post("/api/grids/XWZ001002/split", json={"line": line}, headers=bearer(planner)).status_code == 200
    assert client.post("/api/users", json={"name": "new.user", "role": "supervisor"},
                       headers=bearer(admin)).status_code == 201  # fmt: skip
    upload = client.post("/api/patrols?format=gpx", data=GPX.read_bytes(), headers=bearer(worker_token))
    assert upload.status_code == 201

    got = conn.execute(
        sa.text("SELECT actor, table_name, operation, row_count, keys FROM audit_log WHERE id > :b ORDER BY id"),
        {"b": before},
    ).all()
    by = {(actor, table, operation) for actor, table, operation, _, _ in got}
    assert ("op.wang", "incidents", "INSERT") in by
    assert ("op.wang", "incident_events", "INSERT") in by
    assert ("op.wang", "incidents", "UPDATE") in by
    assert {("plan.li", "grids", "UPDATE"), ("plan.li", "grids", "INSERT")} <= by  # old version closed, pieces added
    assert ("admin.zhao", "users", "INSERT") in by and ("admin.zhao", "api_tokens", "INSERT") in by
    assert {("worker.chen", "patrol_tracks", "INSERT"), ("worker.chen", "gps_fixes", "INSERT")} <= by
    # The rows are named: the incident's id, the new user's name, the split grid's pieces.
    assert any(t == "incidents" and str(incident) in keys for _, t, _, _, keys in got)
    assert any(t == "users" and keys == ["new.user"] for _, t, _, _, keys in got)
    pieces = [n for _, t, op_, n, _ in got if t == "grids" and op_ == "INSERT"]
    assert sum(pieces) == 2
    # Reading leaves nothing.
    after = conn.execute(sa.text("SELECT max(id) FROM audit_log")).scalar_one()
    assert client.get(f"/api/incidents/{incident}", headers=bearer(op)).status_code == 200
    assert client.get("/api/grids", headers=bearer(planner)).status_code == 200
    assert conn.execute(sa.text("SELECT max(id) FROM audit_log")).scalar_one() == after


def test_a_refused_change_leaves_no_entry(client, conn, make_user, demo_grids):
    _, worker = make_user("worker", name="worker.far")
    before = conn.execute(sa.text("SELECT coalesce(max(id), 0) FROM audit_log")).scalar_one()
    # The worker has no grid: reporting is refused and rolled back, trail included.
    response = client.post("/api/incidents", headers=bearer(worker), json={
        "lon": IN_XWZ002002[0], "lat": IN_XWZ002002[1], "category": "water", "source": "app"})  # fmt: skip
    assert response.status_code == 403
    assert conn.execute(sa.text("SELECT count(*) FROM audit_log WHERE id > :b"), {"b": before}).scalar_one() == 0


def test_a_bulk_statement_is_one_entry_with_its_count(conn, settings, demo_grids):
    from geogrid.incidents.intake import NewIncident, import_incidents
    from geogrid.store.db import set_actor

    set_actor(conn, "importer")
    rows = [(n, {}, NewIncident(lon=IN_XWZ002002[0], lat=IN_XWZ002002[1], category="water", source="hotline",
                                external_id=f"B{n}")) for n in range(250)]  # fmt: skip
    import_incidents(conn, settings, iter(rows), actor="importer", reject=lambda *a: None)
    (entry,) = entries(conn, actor="importer", table_name="incidents")
    assert entry["operation"] == "INSERT" and entry["row_count"] == 250 and len(entry["keys"]) == 100


def test_plain_sql_is_recorded_as_the_database_role_and_the_trail_is_append_only(conn):
    conn.execute(sa.text("INSERT INTO people (name) VALUES ('by hand')"))
    (entry,) = entries(conn, table_name="people")
    assert entry["actor"].startswith("db:") and entry["row_count"] == 1
    with pytest.raises(sa.exc.DBAPIError, match="append-only"):
        with conn.begin_nested():
            conn.execute(sa.text("UPDATE audit_log SET actor = 'someone else'"))
    with pytest.raises(sa.exc.DBAPIError, match="append-only"):
        with conn.begin_nested():
            conn.execute(sa.text("DELETE FROM audit_log"))
    with pytest.raises(sa.exc.DBAPIError, match="append-only"):
        with conn.begin_nested():
            conn.execute(sa.text("TRUNCATE audit_log"))


def test_cli_changes_name_the_os_user_and_the_trail_is_readable(scratch_url, client, make_user, conn):
    assert run(scratch_url, "users", "add", "made.by.cli", "--role", "operator").exit_code == 0
    listed = run(scratch_url, "audit", "--table", "users", "--json")
    assert listed.exit_code == 0, listed.output
    import json

    (entry,) = json.loads(listed.stdout)
    assert entry["actor"] == f"cli:{getpass.getuser()}" and entry["keys"] == ["made.by.cli"]
    text = run(scratch_url, "audit", "--actor", f"cli:{getpass.getuser()}")
    assert "INSERT" in text.stdout and "users" in text.stdout
    assert run(scratch_url, "audit", "--table", "nope").exit_code == 2

    # Over HTTP, for admins only.
    _, admin = make_user("admin", name="admin.qian")
    _, supervisor = make_user("supervisor")
    conn.execute(sa.text("INSERT INTO people (name) VALUES ('x')"))
    answer = client.get("/api/audit?table=people&limit=5", headers=bearer(admin))
    assert answer.status_code == 200 and answer.json[0]["table"] == "people" and answer.json[0]["row_count"] == 1
    assert client.get("/api/audit", headers=bearer(supervisor)).status_code == 403
    assert client.get("/api/audit?table=nope", headers=bearer(admin)).status_code == 422
