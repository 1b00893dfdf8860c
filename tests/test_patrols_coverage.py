"""Coverage with answers known by construction: a 80 m x 300 m cell and straight walks across it."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from geogrid.patrols.compute import compute_coverage, ensure_coverage, prepare_day
from geogrid.patrols.ingest import import_patrol
from geogrid.patrols.queries import coverage_gaps, coverage_report
from tests.conftest import bearer

DEG = 1 / 111_320
COS = 0.79016  # cos(37.8 degrees)
X0, Y0 = 115.30, 37.80
W_DEG, H_DEG = 80 * DEG / COS, 300 * DEG  # 80 m east-west, 300 m north-south
DAY = dt.date(2026, 11, 20)  # Asia/Shanghai; 01:00 UTC is 09:00 there
#: The cell and the duties on it stand from well before DAY (a past day uses that day's boundaries and duties).
SINCE = "2026-01-01T00:00:00+08:00"


@pytest.fixture
def cell(conn):
    return make_cell(conn)


def make_cell(conn) -> str:
    """The cell R: 80 m x 300 m at (X0, Y0), a township of its own, from SINCE."""
    conn.execute(
        sa.text("INSERT INTO grids (code, name, level, geom, valid_from) "
                "VALUES ('R', 'rect', 'township', ST_Multi(ST_MakeEnvelope(:a, :b, :c, :d, 4326)), :since)"),
        {"a": X0, "b": Y0, "c": X0 + W_DEG, "d": Y0 + H_DEG, "since": SINCE},
    )  # fmt: skip
    return "R"


def on_duty(conn, name: str, duty: str = "grid_helper") -> int:
    """A new person with *duty* on the cell R; their id."""
    person = conn.execute(sa.text("INSERT INTO people (name) VALUES (:n) RETURNING id"), {"n": name}).scalar_one()
    conn.execute(sa.text("INSERT INTO assignments (person_id, grid_code, duty, valid_from) VALUES (:p, 'R', :d, :s)"),
                 {"p": person, "d": duty, "s": SINCE})  # fmt: skip
    return person


@pytest.fixture
def worker(conn, cell):
    return on_duty(conn, "孙七")


def walk_east(start: dt.datetime) -> bytes:
    """West to east through the middle, from 100 m outside to 100 m outside, 1.4 m/s, a fix every 10 s."""
    rows = ["time,lon,lat"]
    for i in range(21):
        rows.append(f"{(start + dt.timedelta(seconds=10 * i)).isoformat()},{X0 - 100 * DEG / COS + i * 14 * DEG / COS},"
                    f"{Y0 + H_DEG / 2}")  # fmt: skip
    return "\n".join(rows).encode()


def walk_north(start: dt.datetime) -> bytes:
    """South to north along the middle, through all 300 m."""
    rows = ["time,lon,lat"]
    for i in range(36):
        rows.append(
            f"{(start + dt.timedelta(seconds=10 * i)).isoformat()},{X0 + W_DEG / 2},{Y0 - 100 * DEG + i * 14 * DEG}"
        )
    return "\n".join(rows).encode()


def at(hour: float) -> dt.datetime:
    return dt.datetime(2026, 11, 20, 0, 0, tzinfo=dt.UTC) + dt.timedelta(hours=hour)


def rows(conn):
    return conn.execute(sa.text("SELECT * FROM coverage ORDER BY person_id")).mappings().all()


def test_a_straight_walk_covers_twice_the_sight_radius_times_its_length(conn, settings, worker):
    import_patrol(conn, settings, worker, "a.csv", walk_east(at(1)))
    compute_coverage(conn, settings, DAY)
    (row,) = rows(conn)
    assert row["covered_m2"] == pytest.approx(2 * 30 * 80, rel=0.01)
    assert row["cell_m2"] == pytest.approx(80 * 300, rel=0.01)
    assert row["visit_count"] == 1 and row["visits"][0]["dwell_s"] > 0


def test_the_computation_leaves_the_callers_settings_as_they_were(conn, settings, worker):
    names = ("jit", "work_mem", "parallel_setup_cost", "parallel_tuple_cost", "min_parallel_table_scan_size")

    def current():
        return {n: conn.execute(sa.text("SELECT current_setting(:n)"), {"n": n}).scalar() for n in names}

    before = current()
    import_patrol(conn, settings, worker, "a.csv", walk_east(at(1)))
    compute_coverage(conn, settings, DAY)
    assert current() == before


def test_two_passes_five_hours_apart_are_two_visits_and_meet_the_rule(conn, settings, worker):
    import_patrol(conn, settings, worker, "am.csv", walk_north(at(1)))
    import_patrol(conn, settings, worker, "pm.csv", walk_north(at(6)))
    compute_coverage(conn, settings, DAY)
    (row,) = rows(conn)
    assert row["fraction"] == pytest.approx(60 / 80, rel=0.01)  # a 60 m strip along an 80 m wide cell
    assert (row["visit_count"], row["rule_visits"], row["compliant"], row["reasons"]) == (2, 2, True, [])


def test_two_passes_one_hour_apart_count_once_under_the_default_rule(conn, settings, worker):
    import_patrol(conn, settings, worker, "a.csv", walk_north(at(1)))
    import_patrol(conn, settings, worker, "b.csv", walk_north(at(2)))
    compute_coverage(conn, settings, DAY)
    (row,) = rows(conn)
    assert (row["visit_count"], row["rule_visits"], row["compliant"]) == (2, 1, False)
    assert "too_close:4" in row["reasons"]


def test_thin_visits_do_not_count_and_missed_cells_are_recorded(conn, settings, worker):
    idle = on_duty(conn, "周八", "grid_manager")
    import_patrol(conn, settings, worker, "a.csv", walk_east(at(1)))
    import_patrol(conn, settings, worker, "b.csv", walk_east(at(7)))
    compute_coverage(conn, settings, DAY)
    walked, missed = rows(conn)
    assert walked["rule_visits"] == 0 and "thin_visits:2:60" in walked["reasons"]
    assert (missed["person_id"], missed["visit_count"], missed["reasons"]) == (idle, 0, ["not_patrolled"])


def test_gaps_are_the_cell_minus_what_was_seen(conn, settings, worker):
    import_patrol(conn, settings, worker, "a.csv", walk_east(at(1)))
    assert prepare_day(conn, settings, DAY) is None
    (gap,) = coverage_gaps(conn, settings, DAY)["features"]
    assert gap["properties"]["uncovered_m2"] == pytest.approx(80 * 300 - 4800, rel=0.01)
    assert gap["geometry"]["type"] == "MultiPolygon"  # the strip cuts the cell in two


def test_gaps_are_stored_with_the_coverage_and_follow_a_new_track(conn, settings, worker):
    import_patrol(conn, settings, worker, "a.csv", walk_east(at(1)))
    prepare_day(conn, settings, DAY)
    stored = conn.execute(sa.text("SELECT grid_code, uncovered_m2, computed_at FROM coverage_gaps WHERE day = :d"),
                          {"d": DAY}).one()  # fmt: skip
    assert stored.grid_code == "R" and stored.uncovered_m2 == pytest.approx(80 * 300 - 4800, rel=0.01)
    # Reading computes nothing: a new track shows only once the day is brought up to date.
    import_patrol(conn, settings, worker, "b.csv", walk_north(at(6)))
    # (One transaction has one now(): the new track is made to come in after the day was computed.)
    conn.execute(sa.text("UPDATE patrol_tracks SET updated_at = updated_at + interval '1 second' "
                         "WHERE started_at >= :t"), {"t": at(6)})  # fmt: skip
    (before,) = coverage_gaps(conn, settings, DAY)["features"]
    assert before["properties"]["uncovered_m2"] == pytest.approx(80 * 300 - 4800, rel=0.01)
    assert ensure_coverage(conn, settings, DAY) == [worker]  # the worker's rows only
    (after,) = coverage_gaps(conn, settings, DAY)["features"]
    # The north walk's 60 m strip along the 300 m cell, less where it crosses the east walk's (60 x 60 m).
    assert after["properties"]["uncovered_m2"] == pytest.approx(80 * 300 - 4800 - (60 * 300 - 3600), rel=0.02)


def test_the_day_is_brought_up_to_date_when_tracks_change(conn, settings, worker):
    import_patrol(conn, settings, worker, "am.csv", walk_north(at(1)))
    prepare_day(conn, settings, DAY)
    first = coverage_report(conn, settings, DAY, level="township")
    assert first["cells"][0]["visit_count"] == 1 and first["rollup"][0]["compliance_rate"] == 0.0
    conn.execute(sa.text("UPDATE coverage SET computed_at = computed_at - interval '1 minute'"))
    import_patrol(conn, settings, worker, "pm.csv", walk_north(at(6)))
    prepare_day(conn, settings, DAY)
    second = coverage_report(conn, settings, DAY, level="township")
    assert second["cells"][0]["visit_count"] == 2 and second["rollup"][0]["compliance_rate"] == 1.0
    (w,) = second["workers"]
    assert w["assigned"] == ["R"] and w["compliant"] == ["R"] and w["missed"] == []


def test_coverage_api(client, make_user, conn, settings, worker):
    import_patrol(conn, settings, worker, "a.csv", walk_east(at(1)))
    _, token = make_user("supervisor")
    body = client.get(f"/api/coverage?date={DAY}", headers=bearer(token)).json
    assert body["cells"][0]["grid_code"] == "R" and body["cells"][0]["visit_count"] == 1
    assert client.get("/api/coverage", headers=bearer(token)).status_code == 422
    assert client.get("/api/coverage?date=yesterday", headers=bearer(token)).status_code == 422
    gaps = client.get(f"/api/coverage/gaps?date={DAY}&grid=R", headers=bearer(token))
    assert gaps.status_code == 200 and len(gaps.json["features"]) == 1
    # One worker's tracks, as the coverage page fetches them when there are many workers.
    idle = on_duty(conn, "周八", "grid_manager")
    mine = client.get(f"/api/coverage/tracks?date={DAY}&person={worker}", headers=bearer(token)).json
    assert [f["properties"]["person_id"] for f in mine["features"]] == [worker]
    assert client.get(f"/api/coverage/tracks?date={DAY}&person={idle}", headers=bearer(token)).json["features"] == []
    assert client.get(f"/api/coverage/tracks?date={DAY}&person=me", headers=bearer(token)).status_code == 422


def route(start: dt.datetime, legs: list[tuple[float, float, float]]) -> bytes:
    """A walk through points given as (east m, north m, minutes to wait there) from the cell's corner.

    1.4 m/s, a fix every 10 s, one track (no gap in the fixes).
    """
    rows, t = ["time,lon,lat"], start
    here = legs[0][:2]

    def fix(e, n):
        rows.append(f"{t.isoformat()},{X0 + e * DEG / COS},{Y0 + n * DEG}")

    for east, north, wait in legs:
        steps = max(1, round(((east - here[0]) ** 2 + (north - here[1]) ** 2) ** 0.5 / 14))
        for k in range(1, steps + 1):
            fix(here[0] + (east - here[0]) * k / steps, here[1] + (north - here[1]) * k / steps)
            t += dt.timedelta(seconds=10)
        for _ in range(int(wait * 6)):
            fix(east, north)
            t += dt.timedelta(seconds=10)
        here = (east, north)
    return "\n".join(rows).encode()


def test_each_visit_is_measured_on_its_own_stretch_of_one_track(conn, settings, worker):
    # North along the middle (a 60 m strip, 75%), away for 40 min, then east across (60 m x 80 m, 20%).
    day = route(at(1), [(40, -100, 0), (40, 400, 0), (-100, 400, 40), (-100, 150, 0), (180, 150, 0)])
    import_patrol(conn, settings, worker, "day.csv", day)
    compute_coverage(conn, settings, DAY)
    (row,) = rows(conn)
    assert [v["fraction"] for v in row["visits"]] == [pytest.approx(0.75, rel=0.01), pytest.approx(0.2, rel=0.01)]
    assert row["fraction"] == pytest.approx((18_000 + 4_800 - 3_600) / 24_000, rel=0.01)  # the union, all day
    assert conn.execute(sa.text("SELECT count(*) FROM patrol_tracks")).scalar_one() == 1


def test_a_new_track_recomputes_its_worker_only_and_matches_a_full_recomputation(conn, settings, worker):

    other = on_duty(conn, "吴九", "grid_manager")
    import_patrol(conn, settings, worker, "am.csv", walk_north(at(1)))
    import_patrol(conn, settings, other, "b.csv", walk_east(at(2)))
    assert ensure_coverage(conn, settings, DAY) is None  # never computed: all of the day
    # One transaction here, so one now(): age what is there, as if computed a minute ago.
    for table, column in (("patrol_tracks", "updated_at"), ("grids", "recorded_at"), ("assignments", "recorded_at")):
        conn.execute(sa.text(f"UPDATE {table} SET {column} = {column} - interval '2 minutes'"))
    conn.execute(sa.text("UPDATE coverage SET computed_at = computed_at - interval '1 minute'"))
    assert ensure_coverage(conn, settings, DAY) == []
    import_patrol(conn, settings, worker, "pm.csv", walk_north(at(6)))
    assert ensure_coverage(conn, settings, DAY) == [worker]
    fresh = conn.execute(sa.text("SELECT person_id, computed_at = now() FROM coverage ORDER BY person_id")).all()
    assert fresh == sorted([(worker, True), (other, False)])
    assert ensure_coverage(conn, settings, DAY) == []

    def snapshot():
        return conn.execute(
            sa.text(
                "SELECT grid_code, person_id, covered_m2, visits, rule_visits, compliant, reasons, assigned "
                "FROM coverage ORDER BY person_id"
            )  # fmt: skip
        ).all()

    partial = snapshot()
    assert partial[[p for _, p, *_ in partial].index(worker)][4] == 2  # both passes count now
    compute_coverage(conn, settings, DAY)
    assert snapshot() == partial


def test_a_duty_change_recomputes_that_person_only_and_only_days_it_was_in_effect(conn, settings, worker):
    from geogrid.people import add_person, assign_duty, end_duty

    other = on_duty(conn, "郑十", "grid_manager")
    import_patrol(conn, settings, worker, "am.csv", walk_north(at(1)))
    assert ensure_coverage(conn, settings, DAY) is None
    for table, column in (("patrol_tracks", "updated_at"), ("grids", "recorded_at"), ("assignments", "recorded_at")):
        conn.execute(sa.text(f"UPDATE {table} SET {column} = {column} - interval '2 minutes'"))
    conn.execute(sa.text("UPDATE coverage SET computed_at = computed_at - interval '1 minute'"))
    assert {r["person_id"]: r["reasons"] for r in rows(conn)}[other] == ["not_patrolled"]
    # Ended today: DAY is past and stays as it was.
    end_duty(conn, other, "R")
    assert ensure_coverage(conn, settings, DAY) == []
    assert sorted(r["person_id"] for r in rows(conn)) == sorted([worker, other])
    # A duty entered today but in effect since the morning of DAY: that person's rows only.
    new = add_person(conn, "冯一")["id"]
    assign_duty(conn, new, "R", "grid_helper", since=at(0))
    assert ensure_coverage(conn, settings, DAY) == [new]
    assert {r["person_id"]: r["reasons"] for r in rows(conn)}[new] == ["not_patrolled"]


def test_two_requests_at_once_recompute_a_day_once(scratch_url, settings):
    import threading
    import time

    engine = sa.create_engine(scratch_url)
    with engine.begin() as conn:
        conn.execute(
            sa.text("INSERT INTO grids (code, name, level, geom, valid_from) "
                    "VALUES ('R', 'rect', 'township', ST_Multi(ST_MakeEnvelope(:a, :b, :c, :d, 4326)), :since)"),
            {"a": X0, "b": Y0, "c": X0 + W_DEG, "d": Y0 + H_DEG, "since": SINCE},
        )  # fmt: skip
        import_patrol(conn, settings, on_duty(conn, "孙七"), "am.csv", walk_north(at(1)))
    answers, holding = {}, threading.Event()

    def first():
        with engine.begin() as conn:
            answers["first"] = ensure_coverage(conn, settings, DAY)
            holding.set()
            time.sleep(1.0)  # the transaction, and the day's rows, stay uncommitted a while

    def second():
        holding.wait()
        try:
            with engine.begin() as conn:
                answers["second"] = ensure_coverage(conn, settings, DAY)
        except Exception as err:  # without the lock: a duplicate key when the first commits
            answers["second"] = err

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert answers == {"first": None, "second": []}
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM coverage")).scalar() == 1
    engine.dispose()
