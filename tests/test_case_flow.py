"""The standard case flow through the API: 信息采集 -> 立案 -> 派遣 -> 处置 -> 反馈 -> 核查 (返工 or 结案)
-> 回访, and 不予立案, 挂账, 延期 / 缓办 asked for and decided, 督办 on overdue cases."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from geogrid.cli import main
from geogrid.incidents.intake import NewIncident, register
from tests.conftest import bearer


@pytest.fixture
def center(client, conn, settings, make_user, demo_grids):
    """An operator's token, a handler on duty in the case's cell with a manager above, and a new case."""
    _, token = make_user("operator")
    handler = conn.execute(sa.text("INSERT INTO people (name, phone) VALUES ('赵处置', '13900000001') RETURNING id"))
    handler = handler.scalar_one()
    chief = conn.execute(sa.text("INSERT INTO people (name, phone) VALUES ('钱站长', '13900000002') RETURNING id"))
    chief = chief.scalar_one()
    conn.execute(sa.text("INSERT INTO assignments (person_id, grid_code, duty) VALUES (:p, 'XWZ001001', "
                         "'grid_helper'), (:c, 'XWZ001', 'grid_manager')"), {"p": handler, "c": chief})  # fmt: skip
    case = register(conn, settings, NewIncident(lon=115.255, lat=37.755, category="illegal_parking", source="hotline"),
                    actor="12345")["id"]  # fmt: skip

    def step(path: str, body: dict, expect: int = 200) -> dict:
        response = client.post(f"/api/incidents/{case}/{path}", json=body, headers=bearer(token))
        assert response.status_code == expect, response.json
        return response.json

    return {"case": case, "step": step, "handler": handler, "chief": chief, "token": token}


def status(conn, case: int) -> str:
    return conn.execute(sa.text("SELECT status FROM incidents WHERE id = :i"), {"i": case}).scalar_one()


def test_one_case_from_report_to_return_visit_with_a_rework(center, conn):
    step, case = center["step"], center["case"]
    step("transition", {"to": "accepted", "note": "属实，立案"})
    dispatched = step("transition", {"to": "dispatched", "person_id": center["handler"], "department": "城管"})
    # The clock starts at 派遣: the category's 24 hours from now.
    deadline = dt.datetime.fromisoformat(dispatched["details"]["deadline"])
    assert dispatched["details"]["person"]["name"] == "赵处置"
    assert abs((deadline - dt.datetime.fromisoformat(dispatched["at"])).total_seconds() - 24 * 3600) < 1
    step("transition", {"to": "in_progress"})
    step("transition", {"to": "resolved", "note": "车辆已挪走"})
    step("transition", {"to": "rework"}, expect=422)  # 返工 needs the reason
    failed = step("transition", {"to": "rework", "note": "现场仍有车辆"})
    assert failed["details"] == {"check": "failed"}
    step("transition", {"to": "resolved", "note": "已清理"})
    closed = step("transition", {"to": "closed"})
    assert closed["details"] == {"check": "passed"}
    assert conn.execute(sa.text("SELECT closed_at FROM incidents WHERE id = :i"), {"i": case}).scalar_one()
    step("transition", {"to": "dispatched"}, expect=409)  # 结案 is the end of the handling
    unhappy = step("visit", {"method": "phone", "satisfied": False, "note": "又停回来了"})
    assert unhappy["to"] == "reopened" and status(conn, case) == "reopened"
    for to in ("dispatched", "in_progress", "resolved", "closed"):
        step("transition", {"to": to})
    happy = step("visit", {"method": "visit", "satisfied": True})
    assert (happy["from"], happy["to"]) == ("closed", "closed") and happy["details"]["satisfied"] is True
    steps = conn.execute(sa.text("SELECT to_status FROM incident_events WHERE incident_id = :i ORDER BY id"),
                         {"i": case}).scalars().all()  # fmt: skip
    assert steps == ["reported", "accepted", "dispatched", "in_progress", "resolved", "rework", "resolved", "closed",
                     "reopened", "dispatched", "in_progress", "resolved", "closed", "closed"]  # fmt: skip


def test_not_accepted_needs_a_reason_and_ends_the_case(center, conn):
    center["step"]("transition", {"to": "rejected"}, expect=422)
    center["step"]("transition", {"to": "rejected", "note": "重复上报"})
    conflict = center["step"]("transition", {"to": "dispatched"}, expect=409)
    assert conflict["current_status"] == "rejected"


def test_the_pending_list_needs_a_reason_and_a_review_date(center, conn):
    step, case = center["step"], center["case"]
    step("transition", {"to": "accepted"})
    step("transition", {"to": "pending", "note": "涉及多部门，超出职权"}, expect=422)
    step("transition", {"to": "pending", "note": "涉及多部门，超出职权", "review_at": "2026-12-15"})
    review = conn.execute(sa.text("SELECT review_at FROM incidents WHERE id = :i"), {"i": case}).scalar_one()
    assert review.date() == dt.date(2026, 12, 15)
    step("transition", {"to": "accepted", "note": "复核后恢复"})
    assert conn.execute(sa.text("SELECT review_at FROM incidents WHERE id = :i"), {"i": case}).scalar_one() is None


def test_more_time_is_asked_for_then_decided(center, conn):
    step, case = center["step"], center["case"]
    step("delay", {"kind": "extend", "hours": 24, "reason": "等待配件"}, expect=409)  # not yet being handled
    step("transition", {"to": "dispatched"})
    before = conn.execute(sa.text("SELECT deadline FROM incidents WHERE id = :i"), {"i": case}).scalar_one()
    for hours in (0, 8760.5):  # just outside: nothing, and more than a year
        step("delay", {"kind": "extend", "hours": hours, "reason": "等待配件"}, expect=422)
    step("delay", {"kind": "extend", "hours": 8760, "reason": "等待配件"}, expect=201)  # a year: just inside
    step("delay", {"kind": "extend", "hours": 1, "reason": "又一次"}, expect=409)  # one request at a time
    step("delay/decision", {"approve": False, "note": "按期处置"})
    assert conn.execute(sa.text("SELECT deadline FROM incidents WHERE id = :i"), {"i": case}).scalar_one() == before
    step("delay/decision", {"approve": True}, expect=409)  # nothing left to decide
    step("delay", {"kind": "extend", "hours": 48, "reason": "等待配件"}, expect=201)
    approved = step("delay/decision", {"approve": True})
    after = conn.execute(sa.text("SELECT deadline FROM incidents WHERE id = :i"), {"i": case}).scalar_one()
    assert after - before == dt.timedelta(hours=48) and approved["details"]["step"] == "delay_approved"
    # 缓办: off the clock until a date, then back to the handler.
    step("delay", {"kind": "postpone", "until": "2020-01-01", "reason": "雨季"}, expect=422)  # in the past
    step("delay", {"kind": "postpone", "until": "2099-04-01", "reason": "雨季施工受限"}, expect=201)
    postponed = step("delay/decision", {"approve": True})
    assert postponed["to"] == "postponed" and status(conn, case) == "postponed"
    step("transition", {"to": "dispatched"})
    assert status(conn, case) == "dispatched"


def test_supervision_is_for_overdue_cases_and_reaches_the_handler_and_their_superior(center, conn):
    step, case = center["step"], center["case"]
    step("transition", {"to": "dispatched", "person_id": center["handler"]})
    step("supervise", {}, expect=409)  # not overdue
    conn.execute(sa.text("UPDATE incidents SET deadline = now() + interval '1 minute' WHERE id = :i"), {"i": case})
    step("supervise", {}, expect=409)  # just inside its deadline
    conn.execute(sa.text("UPDATE incidents SET deadline = now() - interval '1 second' WHERE id = :i"), {"i": case})
    notice = step("supervise", {"note": "请今日内处置"}, expect=201)  # just past it
    assert [p["name"] for p in notice["details"]["to"]] == ["赵处置", "钱站长"]
    assert notice["from"] == notice["to"] == "dispatched" and notice["details"]["step"] == "supervised"


def test_the_cli_asks_for_time_decides_and_supervises(scratch_url, settings):
    engine = sa.create_engine(scratch_url)
    from geogrid import demo

    with engine.begin() as conn:
        demo.load(conn)
        case = register(conn, settings, NewIncident(lon=115.255, lat=37.755, category="garbage", source="app"),
                        actor="app")["id"]  # fmt: skip
    engine.dispose()

    def run(*args: str):
        return CliRunner().invoke(main, list(args), env={"GEOGRID_DATABASE_URL": scratch_url})

    assert run("incidents", "transition", str(case), "dispatched", "--department", "环卫").exit_code == 0
    both = run("incidents", "delay", str(case), "--extend", "5", "--postpone", "2099-01-01", "--reason", "x")
    assert both.exit_code == 2 and "give --extend HOURS or --postpone DATE" in both.output
    assert run("incidents", "delay", str(case), "--extend", "12", "--reason", "设备维修").exit_code == 0
    decided = run("incidents", "decide", str(case), "--approve")
    assert decided.exit_code == 0 and "delay_approved" in decided.output
    early = run("incidents", "supervise", str(case))
    assert early.exit_code == 1 and "is not overdue" in early.output
    pending = run("incidents", "transition", str(case), "pending", "--note", "超出职权")
    assert pending.exit_code == 2 and "review date" in pending.output
