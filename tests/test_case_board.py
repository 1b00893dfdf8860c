"""The case board: each case waits in one queue, overdue first; filters by grid, category, department
and person."""

from __future__ import annotations

import sqlalchemy as sa

from geogrid.incidents.intake import NewIncident, register
from geogrid.incidents.workflow import decide_delay, request_delay, return_visit, transition
from tests.conftest import bearer


def test_queues_counts_order_and_filters(client, conn, settings, make_user, demo_grids):
    _, token = make_user("operator")
    person = conn.execute(sa.text("INSERT INTO people (name) VALUES ('孙处置') RETURNING id")).scalar_one()

    def case(category: str, *steps, lon: float = 115.255) -> int:
        i = register(conn, settings, NewIncident(lon=lon, lat=37.755, category=category, source="hotline"),
                     actor="12345")["id"]  # fmt: skip
        for to, extra in steps:
            transition(conn, settings, i, to, actor="中心", **extra)
        return i

    fresh = case("garbage")
    accepted = case("garbage", ("accepted", {}))
    late = case("illegal_parking", ("dispatched", {"department": "城管", "person_id": person}))
    soon = case("street_vending", ("dispatched", {"department": "城管"}))
    conn.execute(sa.text("UPDATE incidents SET deadline = now() - interval '2 hours' WHERE id = :i"), {"i": late})
    replied = case("water", ("dispatched", {"department": "水务"}), ("resolved", {}))
    closed = case("garbage", ("handled_on_spot", {}), ("closed", {}))
    visited = case("garbage", ("handled_on_spot", {}), ("closed", {}))
    return_visit(conn, visited, actor="回访", method="phone", satisfied=True)

    def board(query: str = "") -> dict:
        answer = client.get("/api/cases/board" + query, headers=bearer(token))
        assert answer.status_code == 200, answer.json
        return answer.json

    first = board()
    counts = {q["queue"]: (q["count"], q["overdue"]) for q in first["queues"]}
    assert counts == {"to_accept": (1, 0), "to_dispatch": (1, 0), "handling": (2, 1), "to_check": (1, 0),
                      "to_visit": (1, 0), "pending": (0, 0), "postponed": (0, 0), "approvals": (0, 0)}  # fmt: skip
    assert first["queue"] == "to_accept" and [c["id"] for c in first["cases"]] == [fresh]
    handling = board("?queue=handling")["cases"]
    assert [c["id"] for c in handling] == [late, soon]  # overdue first
    assert handling[0]["overdue"] and handling[0]["seconds_left"] < 0 and handling[0]["handler"] == "孙处置"
    assert handling[1]["seconds_left"] > 0
    assert [c["id"] for c in board("?queue=to_visit")["cases"]] == [closed]  # the visited one has left
    assert [c["id"] for c in board("?queue=to_check")["cases"]] == [replied]
    assert [c["id"] for c in board("?queue=to_dispatch")["cases"]] == [accepted]
    # Filters: department, person, a category class (05 街面秩序), a grid with nothing in it.
    assert [c["id"] for c in board(f"?queue=handling&department=城管&person={person}")["cases"]] == [late]
    assert [c["id"] for c in board("?queue=handling&category=05")["cases"]] == [late, soon]
    assert sum(q["count"] for q in board("?grid=XWZ002")["queues"]) == 0
    assert "城管" in first["departments"]
    bad = client.get("/api/cases/board?queue=done", headers=bearer(token))
    assert bad.status_code == 422 and "unknown queue" in bad.json["detail"]


def test_requests_for_more_time_wait_in_their_own_queue_until_decided(client, conn, settings, make_user, demo_grids):
    _, token = make_user("operator")
    ids = []
    for _ in range(3):
        i = register(conn, settings, NewIncident(lon=115.255, lat=37.755, category="garbage", source="hotline"),
                     actor="12345")["id"]  # fmt: skip
        transition(conn, settings, i, "dispatched", actor="中心", department="环卫")
        ids.append(i)
    asked, decided, _quiet = ids
    request_delay(conn, asked, actor="环卫", kind="extend", hours=24, reason="等待车辆")
    request_delay(conn, decided, actor="环卫", kind="extend", hours=24, reason="等待车辆")
    decide_delay(conn, decided, actor="中心", approve=False, note="请按时办结")

    def board(query: str = "") -> dict:
        return client.get("/api/cases/board" + query, headers=bearer(token)).json

    first = board()
    counts = {q["queue"]: q["count"] for q in first["queues"]}
    assert counts["approvals"] == 1 and counts["handling"] == 3  # also still in its stage's queue
    # The board opens on the decisions waiting.
    assert first["queue"] == "approvals" and [c["id"] for c in first["cases"]] == [asked]
    decide_delay(conn, asked, actor="中心", approve=True)
    assert {q["queue"]: q["count"] for q in board()["queues"]}["approvals"] == 0
    assert board("?queue=approvals")["cases"] == []
