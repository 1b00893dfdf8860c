"""补签: a worker asks that a missed patrol be counted; the supervisor approves or refuses. An approved repair
counts for the rule and is marked, never as a visit or in the covered fraction; a monthly limit per worker."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
import sqlalchemy as sa

from geogrid.errors import Conflict, InvalidInput
from geogrid.patrols import repairs
from geogrid.patrols.compute import ensure_coverage, prepare_day
from geogrid.patrols.ingest import import_patrol
from tests.conftest import bearer
from tests.test_patrols_coverage import DAY, at, make_cell, on_duty, walk_north


@pytest.fixture
def once(conn, settings):
    """The cell R, its helper walking it once on DAY (one visit: short of the two-a-day rule)."""
    make_cell(conn)
    walker = on_duty(conn, "孙七")
    import_patrol(conn, settings, walker, "am.csv", walk_north(at(1)))
    prepare_day(conn, settings, DAY)
    return walker


def row(conn, person):
    return conn.execute(sa.text("SELECT * FROM coverage WHERE day = :d AND person_id = :p"),
                        {"d": DAY, "p": person}).mappings().one()  # fmt: skip


def ask(conn, settings, person, day=DAY, hour=7.0):
    return repairs.request_repair(conn, settings, person_id=person, grid_code="R", day=day,
                                  claimed_at=dt.datetime.combine(day, dt.time(), dt.UTC) + dt.timedelta(hours=hour),
                                  reason="终端没电，下午补巡", actor="孙七")  # fmt: skip


def test_an_approved_repair_counts_for_the_rule_and_never_as_a_visit(conn, settings, once):
    before = row(conn, once)
    assert (before["visit_count"], before["rule_visits"], before["compliant"]) == (1, 1, False)
    made = ask(conn, settings, once)
    assert made["status"] == "pending"
    assert ensure_coverage(conn, settings, DAY) == []  # a pending request changes nothing
    repairs.decide_repair(conn, made["id"], approve=True, note="核实属实", actor="站长")
    assert ensure_coverage(conn, settings, DAY) == [once]  # the decision brings the worker's rows up to date
    after = row(conn, once)
    assert (after["rule_visits"], after["repairs"], after["compliant"], after["reasons"]) == (2, 1, True, [])
    # Never a visit, never covered ground.
    assert (after["visit_count"], after["covered_m2"], after["fraction"]) == (
        before["visit_count"], before["covered_m2"], before["fraction"])  # fmt: skip
    gap = conn.execute(sa.text("SELECT uncovered_m2 FROM coverage_gaps WHERE day = :d"), {"d": DAY}).scalar_one()
    assert gap == pytest.approx(80 * 300 - 60 * 300, rel=0.02)  # only the walked strip is covered
    with pytest.raises(Conflict, match="approved already"):
        repairs.decide_repair(conn, made["id"], approve=False, note="", actor="站长")


def test_a_refused_repair_counts_for_nothing(conn, settings, once):
    made = ask(conn, settings, once)
    refused = repairs.decide_repair(conn, made["id"], approve=False, note="无佐证", actor="站长")
    assert refused["status"] == "refused" and refused["note"] == "无佐证"
    ensure_coverage(conn, settings, DAY)
    after = row(conn, once)
    assert (after["rule_visits"], after["repairs"], after["compliant"]) == (1, 0, False)
    assert after["reasons"] == ["visits_counted:1:2"]
    # Both are listed, for the worker and their supervisor alike.
    assert [(r["id"], r["status"]) for r in repairs.list_repairs(conn, person_id=once)] == [(made["id"], "refused")]


def test_the_monthly_limit_just_inside_and_outside(conn, settings, once):
    limited = dataclasses.replace(settings, repair_limit=2)
    ask(conn, limited, once, DAY)
    ask(conn, limited, once, DAY - dt.timedelta(days=1))  # the second of the month's two: allowed
    with pytest.raises(Conflict, match="limit is 2 a month"):
        ask(conn, limited, once, DAY - dt.timedelta(days=2))
    # A refused one frees its place; another month has its own.
    first = repairs.list_repairs(conn, person_id=once)[-1]
    repairs.decide_repair(conn, first["id"], approve=False, note="", actor="站长")
    ask(conn, limited, once, DAY - dt.timedelta(days=2))
    ask(conn, limited, once, dt.date(2026, 10, 30))


def test_bad_requests(conn, settings, once):
    with pytest.raises(InvalidInput, match="needs a reason"):
        repairs.request_repair(conn, settings, person_id=once, grid_code="R", day=DAY, claimed_at=at(3),
                               reason="  ", actor="孙七")  # fmt: skip
    with pytest.raises(InvalidInput, match="must be on"):
        ask(conn, settings, once, hour=30)
    other = on_duty(conn, "周八")
    conn.execute(sa.text("DELETE FROM assignments WHERE person_id = :p"), {"p": other})
    with pytest.raises(InvalidInput, match="not one of this worker's cells"):
        ask(conn, settings, other)
    ask(conn, settings, once)
    with pytest.raises(Conflict, match="already asked for"):
        ask(conn, settings, once)


def test_the_api_workers_ask_supervisors_decide(client, conn, settings, make_user, once):
    _, worker_token = make_user("worker", person_id=once)
    _, supervisor_token = make_user("supervisor")
    asked = client.post("/api/patrols/repairs", headers=bearer(worker_token),
                        json={"grid_code": "R", "date": str(DAY), "at": "2026-11-20T15:00:00+08:00",
                              "reason": "终端没电"})  # fmt: skip
    assert asked.status_code == 201 and asked.json["person_id"] == once
    repair = asked.json["id"]
    decide = f"/api/patrols/repairs/{repair}/decision"
    assert client.post(decide, headers=bearer(worker_token), json={"approve": True}).status_code == 403
    assert client.get("/api/patrols/repairs?status=pending", headers=bearer(worker_token)).json[0]["id"] == repair
    decided = client.post(decide, headers=bearer(supervisor_token), json={"approve": True, "note": "同意"})
    assert decided.status_code == 200 and decided.json["status"] == "approved"
    assert client.post(decide, headers=bearer(supervisor_token), json={"approve": True}).status_code == 409
    # The coverage report marks it: the rule met with one repair.
    report = client.get(f"/api/coverage?date={DAY}", headers=bearer(supervisor_token)).json
    (cell,) = [c for c in report["cells"] if c["person_id"] == once]
    assert (cell["compliant"], cell["repairs"], cell["visit_count"]) == (True, 1, 1)
    # Wild values are refused, not a server error.
    for bad in (
        {"person_id": 10**30},
        {"date": "9999-12-31", "at": "9999-12-31T10:00:00"},
        {"date": "0001-01-01", "at": "0001-01-01T10:00:00"},
        {"at": "yesterday"},
    ):
        body = {
            "person_id": once,
            "grid_code": "R",
            "date": str(DAY),
            "at": "2026-11-20T15:00:00+08:00",
            "reason": "x",
            **bad,
        }
        answer = client.post("/api/patrols/repairs", headers=bearer(supervisor_token), json=body)
        assert answer.status_code in (404, 422), (bad, answer.status_code, answer.json)
    # Audited, every step.
    steps = conn.execute(sa.text("SELECT operation FROM audit_log WHERE table_name = 'patrol_repairs' ORDER BY id"))
    assert steps.scalars().all() == ["INSERT", "UPDATE"]
