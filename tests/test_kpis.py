"""docs/kpis.md on a hand-computed week: twelve cases, each counted as it stood at the week's end."""

from __future__ import annotations

import datetime as dt
import io
from zoneinfo import ZoneInfo

import openpyxl
import pytest

from geogrid.incidents import kpis
from geogrid.incidents.intake import NewIncident, register
from geogrid.incidents.workflow import decide_delay, request_delay, return_visit, transition
from tests.conftest import bearer

Z = ZoneInfo("Asia/Shanghai")
START, END = dt.datetime(2026, 11, 2, tzinfo=Z), dt.datetime(2026, 11, 9, tzinfo=Z)


def t(day: int, hour: float) -> dt.datetime:
    return dt.datetime(2026, 11, day, tzinfo=Z) + dt.timedelta(hours=hour)


@pytest.fixture
def week(conn, settings, demo_grids):
    """Cases A-L (garbage: 48 hours) in cell XWZ001001; see docs/kpis.md for what each one is."""

    def case(day: int, hour: float) -> int:
        return register(conn, settings, NewIncident(lon=115.255, lat=37.755, category="garbage", source="hotline",
                                                    reported_at=t(day, hour)), actor="12345")["id"]  # fmt: skip

    def go(i: int, *steps) -> None:
        for to, when, extra in steps:
            transition(conn, settings, i, to, actor="中心", at=when, **extra)

    dep = {"department": "环卫"}
    a = case(2, 8)  # closed on time, visited: satisfied
    go(a, ("accepted", t(2, 8.2), {}), ("dispatched", t(2, 9), dep), ("in_progress", t(2, 10), {}),
       ("resolved", t(3, 10), {}), ("closed", t(3, 12), {}))  # fmt: skip
    return_visit(conn, a, actor="回访", method="phone", satisfied=True, at=t(3, 15))
    b = case(2, 9)  # closed late; its return visit comes after the week
    go(b, ("accepted", t(2, 9.5), {}), ("dispatched", t(2, 10), dep), ("resolved", t(5, 10), {}),
       ("closed", t(5, 12), {}))  # fmt: skip
    return_visit(conn, b, actor="回访", method="phone", satisfied=True, at=t(10, 9))
    c = case(3, 8)  # reworked once, closed in time, then reopened by an unsatisfied resident
    go(c, ("accepted", t(3, 8.5), {}), ("dispatched", t(3, 9), dep), ("resolved", t(4, 9), {}),
       ("rework", t(4, 10), {"note": "现场未清理"}), ("resolved", t(4, 18), {}), ("closed", t(5, 8), {}))  # fmt: skip
    return_visit(conn, c, actor="回访", method="visit", satisfied=False, at=t(5, 10))
    d = case(3, 8.5)  # a 48-hour extension approved, closed inside the new deadline
    go(d, ("accepted", t(3, 8.7), {}), ("dispatched", t(3, 9), dep))
    request_delay(conn, d, actor="环卫", kind="extend", hours=48, reason="等待车辆", at=t(4, 9))
    decide_delay(conn, d, actor="中心", approve=True, at=t(4, 10))
    go(d, ("resolved", t(6, 9), {}), ("closed", t(6, 12), {}))
    e = case(4, 8)  # postponed (缓办) past its deadline
    go(e, ("accepted", t(4, 8.5), {}), ("dispatched", t(4, 9), dep), ("in_progress", t(4, 10), {}))
    request_delay(conn, e, actor="环卫", kind="postpone", until=dt.datetime(2026, 12, 31, tzinfo=Z), reason="雨季",
                  at=t(5, 8))  # fmt: skip
    decide_delay(conn, e, actor="中心", approve=True, at=t(5, 9))
    f = case(5, 8)  # on the pending list (挂账)
    go(
        f,
        ("accepted", t(5, 8.5), {}),
        ("pending", t(5, 9), {"note": "超出职权", "review_at": dt.datetime(2026, 12, 31, tzinfo=Z)}),
    )
    g = case(5, 9)  # not accepted
    go(g, ("rejected", t(5, 9.5), {"note": "重复上报"}))
    h = case(6, 8)  # handled on the spot, checked, visited: satisfied
    go(h, ("handled_on_spot", t(6, 9), {}), ("closed", t(6, 10), {}))
    return_visit(conn, h, actor="回访", method="phone", satisfied=True, at=t(6, 12))
    i = case(7, 20)  # dispatched, still inside its deadline at the week's end
    go(i, ("accepted", t(7, 20.5), {}), ("dispatched", t(8, 9), {"department": "城管"}))
    j = case(8, 8)  # dispatched without 立案 (before it existed): taken on all the same
    go(j, ("dispatched", t(8, 9), {"department": "城管"}))
    case(1, 8)  # K: received the week before
    lost = case(2, 7)  # L: dispatched, never handled, overdue
    go(lost, ("accepted", t(2, 7.5), {}), ("dispatched", t(2, 9), dep))
    # After the week: E comes back and is closed; the week's figures must not change.
    go(e, ("dispatched", t(10, 9), dep), ("resolved", t(10, 12), {}), ("closed", t(10, 13), {}))
    return {"a": a, "e": e, "f": f}


def test_every_count_and_rate_of_the_week_by_hand(conn, settings, week):
    (township,) = kpis.indicators(conn, start=START, end=END, by="grid", level="township")
    assert township["key"] == "XWZ"
    counts = {k: township[k] for k in kpis.COUNTS}
    assert counts == {
        "received": 11,  # A-J and L (K was the week before)
        "accepted": 10,  # all but G (rejected); J without 立案 counts
        "rejected": 1,
        "dispatched": 9,  # accepted and dispatched or handled on the spot: not F (pending)
        "pending": 1,  # F
        "postponed": 1,  # E
        "due": 7,  # A B C D E H L: closed or past the deadline; not F (pending), not I J (inside it)
        "closed": 4,  # A B D H (C was reopened by its return visit)
        "closed_on_time": 3,  # A D (thanks to its extension) H; not B
        "reworked": 1,  # C
        "extended": 1,  # D
        "handled": 5,  # A B C D H
        "visited": 3,  # A C H (B's visit came after the week)
        "satisfied": 2,  # A H
    }
    assert {k: township[k] for k in kpis.RATES} == {
        "acceptance_rate": round(10 / 11, 4), "dispatch_rate": 0.9, "closure_rate": round(4 / 6, 4),
        "on_time_rate": 0.5, "rework_rate": round(1 / 7, 4), "extension_rate": round(1 / 7, 4),
        "handling_rate": 0.5, "satisfaction_rate": round(2 / 3, 4), "completion_rate": 0.4,
    }  # fmt: skip


def test_postponed_and_pending_cases_are_kept_out_as_the_rules_say(conn, settings, week):
    (before,) = kpis.indicators(conn, start=START, end=END, level="township")
    # 缓办 E is due but out of the closure rates' denominator (7 - 1); 挂账 F is not due at all.
    assert before["due"] == 7 and before["closure_rate"] == round(before["closed"] / (before["due"] - 1), 4)
    # The same week read after E came back and was closed (the period runs past it): E now counts.
    (later,) = kpis.indicators(conn, start=START, end=t(11, 0), level="township")
    assert later["postponed"] == 0 and later["closed"] == before["closed"] + 1
    assert later["pending"] == 1 and later["due"] == before["due"] + 2  # + I and J, whose deadlines passed


def test_by_department_and_by_person(conn, settings, week):
    by_department = {u["key"]: u for u in kpis.indicators(conn, start=START, end=END, by="department")}
    assert set(by_department) == {"环卫", "城管", None}
    assert by_department["环卫"]["received"] == 6 and by_department["城管"]["due"] == 0
    with pytest.raises(Exception, match="by grid, department or person"):
        kpis.indicators(conn, start=START, end=END, by="village")


def test_the_ranking_weights_rates_and_leaves_small_units_unranked():
    units = [
        {"key": "a", "due": 10, "closure_rate": 1.0, "on_time_rate": 1.0, "satisfaction_rate": 1.0,
         "rework_rate": 0.0, "extension_rate": 0.0},
        {"key": "b", "due": 10, "closure_rate": 0.5, "on_time_rate": 0.5, "satisfaction_rate": None,
         "rework_rate": 0.5, "extension_rate": 0.0},
        {"key": "c", "due": 4, "closure_rate": 1.0, "on_time_rate": 1.0, "satisfaction_rate": 1.0,
         "rework_rate": 0.0, "extension_rate": 0.0},
    ]  # fmt: skip
    ranked = kpis.ranking(units, min_cases=5)
    assert [(u["key"], u["rank"], u["score"]) for u in ranked] == [
        ("a", 1, 100.0),
        # b: (30*50 + 30*50 + 10*50 + 10*100) / 80 (no satisfaction: its weight left out) = 56.25
        ("b", 2, 56.2),
        ("c", None, None),  # 4 due cases: one fewer than min_cases
    ]


def test_the_api_and_the_workbook_give_the_same_figures(client, conn, settings, make_user, week):
    _, token = make_user("supervisor")
    answer = client.get("/api/indicators?from=2026-11-02&to=2026-11-08&by=grid&level=village",
                        headers=bearer(token)).json  # fmt: skip
    (village,) = [u for u in answer["units"] if u["received"]]
    assert (village["key"], village["received"], village["closure_rate"]) == ("XWZ001", 11, round(4 / 6, 4))
    assert answer["to"].startswith("2026-11-09T00:00:00+08") and village["rank"] == 1  # 7 due cases: ranked
    workbook = client.get("/api/indicators.xlsx?from=2026-11-02&to=2026-11-08", headers=bearer(token))
    assert workbook.status_code == 200 and "indicators-2026-11-02-2026-11-08.xlsx" in workbook.headers[
        "Content-Disposition"]  # fmt: skip
    book = openpyxl.load_workbook(io.BytesIO(workbook.data))
    assert book.sheetnames == ["乡镇", "村（社区）", "网格", "单元网格", "部门", "人员", "巡查（人员）", "巡查（乡镇）",
                               "巡查（村（社区））", "巡查（网格）", "巡查（单元网格）"]  # fmt: skip
    sheet = book["乡镇"]
    assert sheet["A1"].value == "案件指标 2026-11-02 至 2026-11-08（乡镇）"
    headers = [c.value for c in sheet[2]]
    assert headers[:4] == ["编码", "名称", "受理数", "立案数"] and "按期结案率" in headers
    row = {h: c for h, c in zip(headers, sheet[3], strict=True)}
    assert row["编码"].value == "XWZ" and row["应结案数"].value == 7 and row["结案率"].number_format == "0.0%"
    assert row["结案率"].value == pytest.approx(4 / 6, abs=1e-4)
    departments = [r[0].value for r in book["部门"].iter_rows(min_row=3)]
    assert set(departments) == {"环卫", "城管", "（未派遣部门）"}
    # Too few cases due to be ranked: said in words, not left blank.
    ranks = {r[0].value: r[-1].value for r in book["部门"].iter_rows(min_row=3)}
    assert ranks["城管"] == "不参与排名"
    assert [r[0].value for r in book["人员"].iter_rows(min_row=3)] == ["（未派遣到人）"]


def test_the_cli_prints_the_ranking_and_writes_the_workbook(scratch_url, settings, tmp_path):
    import json

    import sqlalchemy as sa
    from click.testing import CliRunner

    from geogrid import demo
    from geogrid.cli import main

    engine = sa.create_engine(scratch_url)
    with engine.begin() as conn:
        demo.load(conn)
        register(conn, settings, NewIncident(lon=115.255, lat=37.755, category="garbage", source="app",
                                             reported_at=t(3, 9)), actor="app")  # fmt: skip
    engine.dispose()
    out = tmp_path / "周报.xlsx"
    result = CliRunner().invoke(main, ["incidents", "indicators", "--from", "2026-11-02", "--to", "2026-11-08",
                                       "--by", "grid", "--level", "village", "--json", "--xlsx", str(out)],
                                env={"GEOGRID_DATABASE_URL": scratch_url})  # fmt: skip
    assert result.exit_code == 0, result.output
    units = json.loads(result.stdout)
    assert [(u["key"], u["received"], u["rank"]) for u in units if u["received"]] == [("XWZ001", 1, None)]
    assert openpyxl.load_workbook(out).sheetnames[4:7] == ["部门", "人员", "巡查（人员）"]


def test_periods_cut_days_weeks_from_monday_and_months_in_the_zone():
    start, end = dt.datetime(2026, 11, 4, 15, tzinfo=Z), dt.datetime(2026, 12, 2, tzinfo=Z)
    weeks = kpis.periods(start, end, "week")
    assert weeks[0] == (start, dt.datetime(2026, 11, 9, tzinfo=Z))  # a partial first week, to the next Monday
    assert all(b[0].weekday() == 0 and b[0].hour == 0 for b in weeks[1:]) and weeks[-1][1] == end
    months = kpis.periods(start, end, "month")
    assert months == [(start, dt.datetime(2026, 12, 1, tzinfo=Z)), (dt.datetime(2026, 12, 1, tzinfo=Z), end)]
    assert len(kpis.periods(START, END, "day")) == 7
    # Just inside and outside the limit of periods.
    assert len(kpis.periods(START, START + dt.timedelta(days=kpis.MAX_PERIODS), "day")) == kpis.MAX_PERIODS
    with pytest.raises(kpis.InvalidInput, match="at most"):
        kpis.periods(START, START + dt.timedelta(days=kpis.MAX_PERIODS + 1), "day")
    with pytest.raises(kpis.InvalidInput, match="step"):
        kpis.periods(START, END, "hour")


def test_the_trend_counts_each_period_as_the_week_by_hand(conn, week):
    days = kpis.trend(conn, start=START, end=END, step="day")
    # Received per day (docs/kpis.md's cases A-L; K was received the week before).
    assert [p["received"] for p in days] == [3, 2, 1, 2, 1, 1, 1]
    # Nov 2's cases (A, B, L) as they stood at Nov 3 00:00: none due yet, so no closure rate.
    assert days[0]["due"] == 0 and days[0]["closure_rate"] is None
    # One week, cut as one period, gives exactly the week's figures.
    (whole,) = kpis.trend(conn, start=START, end=END, step="week")
    (total,) = kpis.indicators(conn, start=START, end=END, by="total")
    assert {k: whole[k] for k in kpis.COUNTS} == {k: total[k] for k in kpis.COUNTS}
    assert whole["on_time_rate"] == total["on_time_rate"] is not None


def test_the_trend_api(client, make_user, week):
    _, token = make_user("supervisor")
    body = client.get("/api/indicators/trend?from=2026-11-02&to=2026-11-08&step=day", headers=bearer(token)).get_json()
    assert [p["received"] for p in body["periods"]] == [3, 2, 1, 2, 1, 1, 1]
    assert body["periods"][0]["from"] == "2026-11-02T00:00:00+08:00"
    assert client.get("/api/indicators/trend?step=hour", headers=bearer(token)).status_code == 422
    # Without a start: the 8 weeks before the end.
    weeks = client.get("/api/indicators/trend?to=2026-11-08", headers=bearer(token)).get_json()["periods"]
    assert weeks[0]["from"] == "2026-09-14T00:00:00+08:00" and len(weeks) == 8
    total = client.get("/api/indicators?by=total&from=2026-11-02&to=2026-11-08", headers=bearer(token)).get_json()
    assert [u["key"] for u in total["units"]] == ["all"] and total["units"][0]["received"] == 11


def test_the_api_gives_the_total_and_the_first_units_of_the_ranking(client, make_user, week):
    _, token = make_user("operator")
    url = "/api/indicators?by=department&from=2026-11-02&to=2026-11-08"
    whole = client.get(url, headers=bearer(token)).get_json()
    first = client.get(url + "&limit=1", headers=bearer(token)).get_json()
    assert whole["count"] == first["count"] == len(whole["units"]) >= 2
    assert first["units"] == whole["units"][:1]
    assert first["total"] == whole["total"] and whole["total"]["received"] == 11
    assert whole["total"]["received"] == sum(u["received"] for u in whole["units"])
    assert client.get(url + "&limit=0", headers=bearer(token)).status_code == 422


def test_every_grid_of_the_level_is_a_unit_even_without_cases(conn, week):
    units = {u["key"]: u for u in kpis.indicators(conn, start=START, end=END, by="grid", level="village")}
    assert units["XWZ001"]["received"] == 11
    assert units["XWZ002"]["received"] == 0 and units["XWZ002"]["closure_rate"] is None
    assert units["XWZ002"]["name"] == "第2村"
    ranked = kpis.ranking(list(units.values()))
    assert ranked[-1]["key"] == "XWZ002" and ranked[-1]["rank"] is None
