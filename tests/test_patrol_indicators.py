"""Patrol indicators (docs/kpis.md) on two hand-computed days: the cell R (80 m x 300 m), a helper who walks it
north twice five hours apart on the first day and east once on the second, and a manager who never comes."""

from __future__ import annotations

import datetime as dt

import pytest

from geogrid.patrols import indicators
from geogrid.patrols.ingest import import_patrol
from tests.conftest import bearer
from tests.test_patrols_coverage import DAY, at, make_cell, on_duty, walk_east, walk_north


@pytest.fixture
def two_days(conn, settings):
    make_cell(conn)
    walker = on_duty(conn, "孙七")
    idle = on_duty(conn, "周八", "grid_manager")
    import_patrol(conn, settings, walker, "am.csv", walk_north(at(1)))  # 09:00: 35 x 14 m, 350 s
    import_patrol(conn, settings, walker, "pm.csv", walk_north(at(6)))  # 14:00: the rule is met
    import_patrol(conn, settings, walker, "d2.csv", walk_east(at(25)))  # the next day: 20 x 14 m, 200 s, once
    return walker, idle


def test_per_worker_by_hand(conn, settings, two_days):
    walker, idle = two_days
    units = {u["key"]: u for u in indicators.indicators(conn, settings, start=DAY, end=DAY + dt.timedelta(days=1))}
    w, i = units[walker], units[idle]
    # Two cell-days each: the walker met the rule on the first, not on the second (one visit).
    assert (w["cell_days"], w["met"], w["coverage_rate"]) == (2, 1, 0.5)
    assert (w["missed_days"], w["patrol_days"]) == (0, 2)
    assert w["km"] == pytest.approx((2 * 35 * 14 + 20 * 14) / 1000, rel=0.02)  # 1.26 km
    assert w["hours"] == pytest.approx((2 * 350 + 200) / 3600, abs=0.01)  # 0.25 h
    # The manager never came: on duty both days, nothing met, both days missed, nothing walked.
    assert (i["cell_days"], i["met"], i["coverage_rate"], i["missed_days"], i["km"]) == (2, 0, 0.0, 2, 0.0)


def test_per_grid_and_days_without_any_patrol_data(conn, settings, two_days):
    (r,) = indicators.indicators(conn, settings, start=DAY, end=DAY + dt.timedelta(days=2), by="grid",
                                 level="township")  # fmt: skip
    # The third day nobody uploaded anything: it is not judged (2 days, not 3).
    assert (r["key"], r["days"], r["cell_days"], r["met"], r["coverage_rate"]) == ("R", 2, 2, 1, 0.5)
    assert r["missed_cell_days"] == 0  # someone on duty walked it both days
    # Just outside the longest run of days.
    with pytest.raises(indicators.InvalidInput, match="at most"):
        indicators.indicators(conn, settings, start=DAY - dt.timedelta(days=indicators.MAX_DAYS), end=DAY)


def test_the_api(client, make_user, two_days):
    walker, _ = two_days
    _, token = make_user("supervisor")
    body = client.get(f"/api/patrols/indicators?from={DAY}&to={DAY + dt.timedelta(days=1)}", headers=bearer(token))
    assert body.status_code == 200
    (mine,) = [u for u in body.json["units"] if u["key"] == walker]
    assert mine["coverage_rate"] == 0.5 and mine["name"] == "孙七"
    grid = client.get(f"/api/patrols/indicators?by=grid&level=township&from={DAY}&to={DAY}", headers=bearer(token))
    assert [(u["key"], u["coverage_rate"]) for u in grid.json["units"]] == [("R", 1.0)]
    assert client.get("/api/patrols/indicators?by=cell", headers=bearer(token)).status_code == 422


def test_the_workbook_has_the_patrol_sheets(conn, settings, two_days):
    import io

    import openpyxl

    from geogrid.api.labels import in_chinese
    from geogrid.incidents import export
    from tests.test_kpis import Z

    walker, _ = two_days
    start = dt.datetime.combine(DAY, dt.time.min, tzinfo=Z)
    data = export.indicator_workbook(conn, settings, start, start + dt.timedelta(days=2),
                                     lambda level: in_chinese("level", level))  # fmt: skip
    sheet = openpyxl.load_workbook(io.BytesIO(data))["巡查（人员）"]
    headers = [c.value for c in sheet[2]]
    assert headers[:4] == ["人员", "应巡单元日", "达标单元日", "巡查覆盖率"]
    rows = {r[0].value: {h: c.value for h, c in zip(headers, r, strict=True)} for r in sheet.iter_rows(min_row=3)}
    assert rows["孙七"]["巡查覆盖率"] == 0.5 and rows["孙七"]["巡查里程（公里）"] == pytest.approx(1.26, rel=0.02)
    assert rows["周八"]["漏巡天数"] == 2
