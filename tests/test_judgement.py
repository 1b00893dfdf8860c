"""The daily judgement (每天汇总研判) on a hand-computed day: its cases by category and area, the day's bounds
in the center's zone, new early warnings, cases common to many places (just inside and outside the threshold),
the overdue list, and the same as a workbook."""

from __future__ import annotations

import datetime as dt
import io
from zoneinfo import ZoneInfo

import openpyxl
import pytest
import sqlalchemy as sa

from geogrid.incidents import judgement
from geogrid.incidents.intake import NewIncident, register
from geogrid.incidents.taxonomy import categories
from geogrid.incidents.workflow import transition
from tests.conftest import bearer

Z = ZoneInfo("Asia/Shanghai")
DAY = dt.date(2026, 11, 24)


def at(day: int, hour: float) -> dt.datetime:
    return dt.datetime(2026, 11, day, tzinfo=Z) + dt.timedelta(hours=hour)


@pytest.fixture
def day(conn, settings, demo_grids):
    spots = dict(conn.execute(sa.text(
        "SELECT code, ST_AsText(ST_PointOnSurface(geom)) FROM grids WHERE level = 'grid' AND valid_to IS NULL"
    )).all())  # fmt: skip

    def case(code: str, category: str, when: dt.datetime) -> int:
        x, y = (float(v) for v in spots[code][6:-1].split())
        return register(conn, settings, NewIncident(lon=x, lat=y, category=category, source="hotline",
                                                    reported_at=when), actor="12345")["id"]  # fmt: skip

    ids = {
        "before": case("XWZ001001", "garbage", at(23, 23.99)),  # the evening before: not the day's
        "midnight": case("XWZ001001", "garbage", at(24, 0)),  # the day's first moment: the day's
        "g1": case("XWZ001001", "garbage", at(24, 9)),
        "g2": case("XWZ001001", "garbage", at(24, 10)),
        "g3": case("XWZ001002", "garbage", at(24, 9)),
        "g4": case("XWZ002001", "garbage", at(24, 9)),
        "p1": case("XWZ001001", "illegal_parking", at(24, 9)),
        "p2": case("XWZ002002", "illegal_parking", at(24, 9)),
        "after": case("XWZ002002", "garbage", at(25, 0)),  # the next day's first moment: not the day's
    }
    for to, hour in (("accepted", 9.5), ("dispatched", 10), ("resolved", 11), ("closed", 12)):
        transition(conn, settings, ids["p2"], to, actor="中心", at=at(24, hour), department="城管")
    return ids


def test_the_days_cases_by_category_and_area_within_its_bounds(conn, settings, day):
    report = judgement.daily(conn, day=DAY, zone="Asia/Shanghai", level="village")
    assert report["totals"]["received"] == 7 and report["totals"]["closed"] == 1
    assert [(r["category"], r["count"]) for r in report["by_category"]] == [("garbage", 5), ("illegal_parking", 2)]
    assert report["by_category"][0]["class"] == "01"
    assert [(r["code"], r["count"], r["done"]) for r in report["by_area"]] == [("XWZ001", 5, 0), ("XWZ002", 2, 1)]


def test_common_to_many_places_counts_areas_of_the_level_just_inside_and_outside(conn, day):
    # Garbage in 3 grids (the threshold), parking in 2 (one short).
    grids = judgement.daily(conn, day=DAY, zone="Asia/Shanghai", level="grid")
    assert [(r["category"], r["areas"], r["count"]) for r in grids["common"]] == [("garbage", 3, 5)]
    assert sorted(grids["common"][0]["codes"]) == ["XWZ001001", "XWZ001002", "XWZ002001"]
    # By village there are only two areas: nothing is common to 3 of them.
    assert judgement.daily(conn, day=DAY, zone="Asia/Shanghai", level="village")["common"] == []
    assert [r["category"] for r in judgement.daily(conn, day=DAY, zone="Asia/Shanghai", level="village",
                                                  min_areas=2)["common"]] == ["garbage", "illegal_parking"]  # fmt: skip


def test_new_warnings_are_those_raised_during_the_day(conn, day):
    # XWZ001001 garbage: 1 case in the 7 days before the day's start (not flagged), 4 at its end: P(X >= 4 | 0.5)
    # = 0.0018 < 0.01, flagged. 3 (P = 0.014) would not be.
    report = judgement.daily(conn, day=DAY, zone="Asia/Shanghai", level="village")
    assert [(w["grid_code"], w["category"], w["last_7_days"]) for w in report["new_warnings"]] == [
        ("XWZ001001", "garbage", 4)]  # fmt: skip
    # The next day the warning is no longer new (it was already flagged at that day's start).
    assert judgement.daily(conn, day=DAY + dt.timedelta(days=1), zone="Asia/Shanghai",
                           level="village")["new_warnings"] == []  # fmt: skip


def test_the_overdue_list_is_every_open_case_past_its_deadline_most_overdue_first(conn, day):
    report = judgement.daily(conn, day=DAY, zone="Asia/Shanghai", level="village")
    overdue = [r["id"] for r in report["overdue"]]
    assert day["p2"] not in overdue  # closed
    assert len(overdue) == report["totals"]["overdue"] == 8
    # Parking has a shorter deadline than garbage: the parking case is the most overdue.
    assert overdue[0] == day["p1"] and overdue[-1] == day["after"]
    assert overdue.index(day["before"]) < overdue.index(day["midnight"]) < overdue.index(day["g1"])
    seconds = [r["seconds_over"] for r in report["overdue"]]
    assert seconds == sorted(seconds, reverse=True) and seconds[-1] > 0
    assert report["overdue"][0]["deadline"].endswith("+08:00")


def test_the_workbook_has_a_sheet_per_part_with_chinese_headers(conn, day):
    report = judgement.daily(conn, day=DAY, zone="Asia/Shanghai", level="grid")
    names = categories()
    book = openpyxl.load_workbook(io.BytesIO(judgement.workbook(report, lambda c: names[c].zh, str)))
    assert book.sheetnames == ["概况", "分类统计", "区域统计", "新增预警", "普遍性问题", "超期案件"]
    assert [c.value for c in book["概况"]["A"]][1:] == ["受理案件", "当日结案", "当前超期案件", "新增预警",
                                                      "普遍性问题（多处同类）"]  # fmt: skip
    assert [c.value for c in book["概况"]["B"]][1:] == [7, 1, 8, 1, 1]
    assert [c.value for c in book["分类统计"][2]] == [names["garbage"].zh, "01", 5]
    assert book["超期案件"]["A1"].value == "案件号" and book["超期案件"].max_row == 9
    assert book["普遍性问题"]["D2"].value == "XWZ001001、XWZ001002、XWZ002001"


def test_the_api_and_its_workbook(client, make_user, day):
    _, token = make_user("operator")
    answer = client.get("/api/judgement?date=2026-11-24&level=grid", headers=bearer(token))
    assert answer.status_code == 200 and answer.get_json()["totals"]["received"] == 7
    assert answer.get_json()["level"] == "grid"
    xlsx = client.get("/api/judgement.xlsx?date=2026-11-24", headers=bearer(token))
    assert xlsx.status_code == 200 and xlsx.headers["Content-Type"].startswith("application/vnd.openxmlformats")
    assert 'filename="judgement-2026-11-24.xlsx"' in xlsx.headers["Content-Disposition"]
    assert client.get("/api/judgement?date=2026-13-01", headers=bearer(token)).status_code == 422
    assert client.get("/api/judgement?level=street", headers=bearer(token)).status_code == 422
    # Without a day: yesterday in the center's zone.
    yesterday = dt.datetime.now(Z).date() - dt.timedelta(days=1)
    assert client.get("/api/judgement", headers=bearer(token)).get_json()["day"] == yesterday.isoformat()


def test_the_cli_prints_the_judgement_and_writes_the_workbook(scratch_url, settings, tmp_path):
    from click.testing import CliRunner

    from geogrid import demo
    from geogrid.cli import main

    engine = sa.create_engine(scratch_url)
    with engine.begin() as conn:
        demo.load(conn)
        x, y = conn.execute(sa.text("SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) p FROM grids "
                                    "WHERE code = 'XWZ001001' AND valid_to IS NULL) s")).one()  # fmt: skip
        for hour in (9, 10):
            register(conn, settings, NewIncident(lon=x, lat=y, category="garbage", source="hotline",
                                                 reported_at=at(24, hour)), actor="12345")  # fmt: skip
    engine.dispose()
    book = tmp_path / "研判.xlsx"
    out = CliRunner().invoke(main, ["incidents", "judgement", "--date", "2026-11-24", "--xlsx", str(book)],
                             env={"GEOGRID_DATABASE_URL": scratch_url}, catch_exceptions=False)  # fmt: skip
    assert out.exit_code == 0, out.output
    assert "2026-11-24: 2 received, 0 closed; 2 overdue now" in out.output
    assert "by village: XWZ001 2" in out.output and "overdue #" in out.output
    assert openpyxl.load_workbook(book)["分类统计"]["C2"].value == 2
    bad = CliRunner().invoke(main, ["incidents", "judgement", "--date", "24/11/2026"],
                             env={"GEOGRID_DATABASE_URL": scratch_url})  # fmt: skip
    assert bad.exit_code == 2 and "YYYY-MM-DD" in bad.output
