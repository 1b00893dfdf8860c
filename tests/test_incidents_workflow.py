"""The workflow: transitions, escalation up the hierarchy, return visits, deadlines, queries, metrics, warnings."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from geogrid.errors import Conflict
from geogrid.incidents import workflow
from geogrid.incidents.intake import NewIncident, register
from geogrid.incidents.metrics import early_warnings, metrics, poisson_tail
from geogrid.incidents.queries import incident_detail, list_incidents
from tests.conftest import bearer

IN_XWZ002002 = (115.275, 37.772)
IN_XWZ001001 = (115.255, 37.755)


def new(conn, settings, where=IN_XWZ002002, **kw):
    values = {"category": "garbage", "source": "patrol", **kw}
    return register(conn, settings, NewIncident(lon=where[0], lat=where[1], **values), actor="op")["id"]


def status(conn, incident_id):
    return conn.execute(sa.text("SELECT status FROM incidents WHERE id = :i"), {"i": incident_id}).scalar_one()


def test_the_full_loop_with_an_unsatisfied_resident(conn, settings, demo_grids):
    i = new(conn, settings)
    for to in ("dispatched", "in_progress", "resolved"):
        workflow.transition(conn, settings, i, to, actor="op")
    workflow.return_visit(conn, i, actor="op", method="phone", satisfied=False, note="still dirty")
    assert status(conn, i) == "reopened"
    for to in ("in_progress", "resolved"):
        workflow.transition(conn, settings, i, to, actor="op")
    event = workflow.return_visit(conn, i, actor="op", method="visit", satisfied=True)
    assert event["to"] == "closed" and status(conn, i) == "closed"
    history = [(e["from_status"], e["to_status"]) for e in incident_detail(conn, i)["events"]]
    assert history == [(None, "reported"), ("reported", "dispatched"), ("dispatched", "in_progress"),
                       ("in_progress", "resolved"), ("resolved", "reopened"), ("reopened", "in_progress"),
                       ("in_progress", "resolved"), ("resolved", "closed")]  # fmt: skip


@pytest.mark.parametrize(
    ("path", "to"),
    [((), "closed"), ((), "resolved"), (("dispatched",), "handled_on_spot"), (("handled_on_spot",), "in_progress")],
)
def test_invalid_transitions_are_409(conn, settings, demo_grids, path, to):
    i = new(conn, settings)
    for step in path:
        workflow.transition(conn, settings, i, step, actor="op")
    with pytest.raises(Conflict):
        workflow.transition(conn, settings, i, to, actor="op")


def test_return_visit_only_after_resolution(conn, settings, demo_grids):
    i = new(conn, settings)
    with pytest.raises(Conflict, match="follows closed, resolved"):
        workflow.return_visit(conn, i, actor="op", method="phone", satisfied=True)
    workflow.transition(conn, settings, i, "handled_on_spot", actor="op")
    assert workflow.return_visit(conn, i, actor="op", method="phone", satisfied=True)["to"] == "closed"


def test_escalation_climbs_the_hierarchy_to_the_city_with_new_deadlines(conn, settings, demo_grids):
    i = new(conn, settings, category="illegal_construction")  # reported in a grid: grid -> village -> township -> city
    levels = []
    for _ in range(3):
        levels.append(
            workflow.transition(conn, settings, i, "escalated", actor="op", department="城管")["details"]["level"]
        )
    assert levels == ["village", "township", "city"]
    with pytest.raises(Conflict, match="already at the city"):
        workflow.transition(conn, settings, i, "escalated", actor="op")
    row = conn.execute(sa.text("SELECT department, deadline - now() FROM incidents WHERE id = :i"), {"i": i}).one()
    assert row[0] == "城管" and row[1] == dt.timedelta(hours=48)


def test_detail_has_cell_chain_people_and_overdue(conn, settings, demo_grids):
    person = conn.execute(sa.text("INSERT INTO people (name, phone) VALUES ('李娜', '138') RETURNING id")).scalar()
    for code, duty in (("XWZ002002", "grid_helper"), ("XWZ002", "grid_manager"), ("XWZ", "grid_chief")):
        conn.execute(sa.text("INSERT INTO assignments (person_id, grid_code, duty) VALUES (:p, :c, :d)"),
                     {"p": person, "c": code, "d": duty})  # fmt: skip
    old = dt.datetime.now(dt.UTC) - dt.timedelta(days=10)
    i = new(conn, settings, reported_at=old)
    detail = incident_detail(conn, i)
    assert detail["cell"]["code"] == "XWZ002002" and detail["cell"]["geometry"]["type"] == "MultiPolygon"
    assert [p["code"] for p in detail["parents"]] == ["XWZ002", "XWZ"]
    assert [(p["grid_code"], p["duty"]) for p in detail["responsible"]] == [
        ("XWZ002002", "grid_helper"), ("XWZ002", "grid_manager"), ("XWZ", "grid_chief")]  # fmt: skip
    assert detail["overdue"] is True
    workflow.transition(conn, settings, i, "handled_on_spot", actor="op")
    assert incident_detail(conn, i)["overdue"] is False


def test_list_filters_and_pages(conn, settings, demo_grids):
    ids = [new(conn, settings, where=IN_XWZ001001 if n % 2 else IN_XWZ002002, description=f"n{n}",
               reported_at=dt.datetime(2026, 11, 1 + n, tzinfo=dt.UTC)) for n in range(6)]  # fmt: skip
    workflow.transition(conn, settings, ids[0], "dispatched", actor="op")
    page = list_incidents(conn, limit=4)
    assert page["numberMatched"] == 6 and page["numberReturned"] == 4 and page["next_offset"] == 4
    assert [f["id"] for f in page["features"]] == ids[::-1][:4]
    assert list_incidents(conn, offset=4)["next_offset"] is None
    assert {f["id"] for f in list_incidents(conn, grid="XWZ001")["features"]} == set(ids[1::2])
    assert [f["id"] for f in list_incidents(conn, statuses=["dispatched"])["features"]] == [ids[0]]
    window = list_incidents(
        conn, start=dt.datetime(2026, 11, 2, tzinfo=dt.UTC), end=dt.datetime(2026, 11, 4, tzinfo=dt.UTC)
    )
    assert {f["id"] for f in window["features"]} == {ids[1], ids[2]}
    assert list_incidents(conn, bbox=(115.26, 37.76, 115.29, 37.78))["numberMatched"] == 3


def test_api_workflow_and_queries(client, make_user, demo_grids):
    _, op = make_user("operator")
    created = client.post("/api/incidents", headers=bearer(op), json={
        "lon": IN_XWZ002002[0], "lat": IN_XWZ002002[1], "category": "water", "source": "hotline"}).json  # fmt: skip
    i = created["id"]
    assert client.post(f"/api/incidents/{i}/transition", json={"to": "closed"}, headers=bearer(op)).status_code == 409
    assert (
        client.post(f"/api/incidents/{i}/transition", json={"to": "handled_on_spot"}, headers=bearer(op)).status_code
        == 200
    )
    visit = client.post(f"/api/incidents/{i}/visit", json={"method": "phone", "satisfied": True}, headers=bearer(op))
    assert visit.status_code == 200 and visit.json["to"] == "closed"
    listed = client.get("/api/incidents?status=closed&grid=XWZ", headers=bearer(op)).json
    assert [f["id"] for f in listed["features"]] == [i]
    assert client.get("/api/incidents?status=lost", headers=bearer(op)).status_code == 422
    detail = client.get(f"/api/incidents/{i}", headers=bearer(op)).json
    assert [e["to_status"] for e in detail["events"]] == ["reported", "handled_on_spot", "closed"]
    rows = client.get("/api/metrics?level=village", headers=bearer(op)).json
    assert rows == [{**rows[0], "code": "XWZ002", "registered": 1, "handled_on_spot": 1, "closed": 1,
                     "closure_rate": 1.0, "return_visit_rate": 1.0, "satisfaction_rate": 1.0}]  # fmt: skip


def test_metrics_roll_up_the_hierarchy(conn, settings, demo_grids):
    a = new(conn, settings, where=IN_XWZ001001)
    b = new(conn, settings, where=IN_XWZ002002)
    c = new(conn, settings, where=IN_XWZ002002)
    workflow.transition(conn, settings, a, "handled_on_spot", actor="op")
    workflow.return_visit(conn, a, actor="op", method="phone", satisfied=True)
    workflow.transition(conn, settings, b, "escalated", actor="op")
    workflow.transition(conn, settings, b, "resolved", actor="op")
    workflow.return_visit(conn, b, actor="op", method="visit", satisfied=False)
    by_village = {r["code"]: r for r in metrics(conn, level="village")}
    assert by_village["XWZ001"]["closed"] == 1 and by_village["XWZ001"]["closure_rate"] == 1.0
    assert by_village["XWZ002"]["registered"] == 2 and by_village["XWZ002"]["escalated"] == 1
    assert by_village["XWZ002"]["satisfaction_rate"] == 0.0 and by_village["XWZ002"]["return_visit_rate"] == 1.0
    (township,) = metrics(conn, level="township")
    assert (township["registered"], township["closed"], township["visited"], township["satisfied"]) == (3, 1, 2, 1)
    assert township["on_time_rate"] == 1.0 and township["closure_rate"] == pytest.approx(1 / 3, abs=1e-4)
    assert [r["code"] for r in metrics(conn, level="grid", within="XWZ002")] == ["XWZ002002"]
    assert c  # the third one is open: registered only


def test_poisson_tail():
    assert poisson_tail(0, 3.0) == 1.0
    assert poisson_tail(1, 2.0) == pytest.approx(1 - 0.1353352832, rel=1e-9)
    assert poisson_tail(10, 1.0) == pytest.approx(1.1142547e-7, rel=1e-6)


def test_early_warning_flags_a_rising_cell_and_a_widespread_category(conn, settings, demo_grids):
    now = dt.datetime(2026, 11, 23, tzinfo=dt.UTC)
    cells = {"XWZ001001": IN_XWZ001001, "XWZ002002": IN_XWZ002002, "XWZ001002": (115.256, 37.772),
             "XWZ002001": (115.275, 37.756)}  # fmt: skip
    for where in cells.values():
        for week in range(1, 9):  # a steady baseline of one garbage report a week
            new(conn, settings, where=where, reported_at=now - dt.timedelta(days=7 * week + 2))
        for day in range(6):  # then six in the last week
            new(conn, settings, where=where, reported_at=now - dt.timedelta(days=day, hours=1))
    # Water: steady at 6 a week in one cell: not a rise.
    for week in range(9):
        for k in range(6):
            new(
                conn,
                settings,
                where=IN_XWZ001001,
                category="water",
                reported_at=now - dt.timedelta(days=7 * week + k % 5 + 1),
            )
    found = early_warnings(conn, now=now)
    assert {(w["grid_code"], w["category"]) for w in found["cells"]} == {(c, "garbage") for c in cells}
    assert found["widespread"] == [{"category": "garbage", "cells": sorted(cells)}]
    assert all(w["p_value"] < 0.01 for w in found["cells"])
